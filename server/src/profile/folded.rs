//! Folded stacks (`frame;frame;frame count` per line, as py-spy's `raw`
//! format and inferno read them): parsed, added up, and as speedscope JSON.

use std::collections::BTreeMap;

use super::ProfileError;

/// The frame samples without a readable stack are counted under.
pub const NO_STACK: &str = "(no Python stack)";

/// Stacks and their sample counts, in stack order.
pub type Stacks = BTreeMap<String, u64>;

/// Reads folded lines; the same stack twice is added up. A line that is not
/// `stack count` is an error naming it (stored stacks are not trusted).
pub fn parse(text: &str) -> Result<Stacks, ProfileError> {
    let mut stacks = Stacks::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end();
        if line.is_empty() {
            continue;
        }
        let (stack, count) = line
            .rsplit_once(' ')
            .ok_or(ProfileError::NoCount { line: n + 1 })?;
        // py-spy writes samples it could not read a stack for as ` N`.
        let stack = if stack.trim().is_empty() {
            NO_STACK
        } else {
            stack
        };
        let count: u64 = count.parse().map_err(|_| ProfileError::BadCount {
            line: n + 1,
            count: count.to_string(),
        })?;
        // Counts that add past u64 (never py-spy's; stored stacks are not
        // trusted) stay at the most there is, never wrap or panic.
        let sum = stacks.entry(stack.to_string()).or_default();
        *sum = sum.saturating_add(count);
    }
    Ok(stacks)
}

/// Samples in all (at most `u64::MAX`).
pub fn total(stacks: &Stacks) -> u64 {
    stacks.values().fold(0, |all, n| all.saturating_add(*n))
}

/// Back to folded lines.
pub fn to_text(stacks: &Stacks) -> String {
    let mut text = String::new();
    for (stack, count) in stacks {
        text.push_str(stack);
        text.push(' ');
        text.push_str(itoa::Buffer::new().format(*count));
        text.push('\n');
    }
    text
}

/// The stacks as a speedscope file (one sampled profile, weights in
/// samples): open it at speedscope.app or in the speedscope CLI.
pub fn speedscope(name: &str, stacks: &Stacks) -> serde_json::Value {
    let mut frames: Vec<&str> = Vec::new();
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    let mut samples = Vec::with_capacity(stacks.len());
    let mut weights = Vec::with_capacity(stacks.len());
    for (stack, count) in stacks {
        let ids: Vec<usize> = stack
            .split(';')
            .map(|frame| {
                *index.entry(frame).or_insert_with(|| {
                    frames.push(frame);
                    frames.len() - 1
                })
            })
            .collect();
        samples.push(ids);
        weights.push(*count);
    }
    serde_json::json!({
        "$schema": "https://www.speedscope.app/file-format-schema.json",
        "exporter": "mite-perf",
        "name": name,
        "activeProfileIndex": 0,
        "shared": { "frames": frames.iter().map(|f| serde_json::json!({ "name": f })).collect::<Vec<_>>() },
        "profiles": [{
            "type": "sampled",
            "name": name,
            "unit": "none",
            "startValue": 0,
            "endValue": total(stacks),
            "samples": samples,
            "weights": weights,
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_lines_add_up_and_round_trip() {
        let stacks = parse("a;b 3\n\na;c 2\na;b 1\n").expect("folded");
        assert_eq!(stacks.get("a;b"), Some(&4));
        assert_eq!(total(&stacks), 6);
        assert_eq!(to_text(&stacks), "a;b 4\na;c 2\n");
        // Frames may hold spaces: the count is after the last one.
        let spaced = parse("<module> (x.py);run (mite/runner.py) 7").expect("spaced");
        assert_eq!(spaced.get("<module> (x.py);run (mite/runner.py)"), Some(&7));
        assert_eq!(parse(" 3").expect("no stack").get(NO_STACK), Some(&3));
        for bad in ["a;b", "a;b many", "a;b 18446744073709551616"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        // Counts adding past u64 (a hostile stored profile): its most, not
        // a panic (a debug build's) or a wrap to a few samples (a release's).
        let most = parse("a 18446744073709551615\na 2\nb 1\n").expect("folded");
        assert_eq!(most.get("a"), Some(&u64::MAX));
        assert_eq!(total(&most), u64::MAX);
    }

    proptest::proptest! {
        /// Any text: parsed or refused with the line's number, never a
        /// panic; counts that add past u64 stay at its most.
        #[test]
        fn any_text_is_parsed_or_refused_by_line(text in "(([a-z;<> ()]{0,8} )?[0-9]{0,21}\n?){0,6}|.{0,60}") {
            match parse(&text) {
                Ok(stacks) => {
                    let counted: Vec<u128> = text
                        .lines()
                        .filter(|l| !l.trim_end().is_empty())
                        .filter_map(|l| l.trim_end().rsplit_once(' ')?.1.parse().ok())
                        .collect();
                    let sum: u128 = counted.iter().sum();
                    proptest::prop_assert_eq!(u128::from(total(&stacks)), sum.min(u128::from(u64::MAX)));
                }
                Err(e) => {
                    let said = e.to_string();
                    proptest::prop_assert!(said.contains("line"), "{}", said);
                }
            }
        }

        /// Stacks written out read back as themselves.
        #[test]
        fn stacks_round_trip(
            stacks in proptest::collection::btree_map("[a-z;<>()._]([a-z;<>() ._]{0,20}[a-z;<>()._])?", 0..u64::MAX / 16, 0..8)
        ) {
            proptest::prop_assert_eq!(parse(&to_text(&stacks)).expect("our own text"), stacks);
        }
    }

    #[test]
    fn speedscope_shares_frames_and_weighs_samples() {
        let stacks = parse("a;b 3\na;c 2\n").expect("folded");
        let json = speedscope("runner", &stacks);
        assert_eq!(
            json["shared"]["frames"],
            serde_json::json!([{"name": "a"}, {"name": "b"}, {"name": "c"}])
        );
        assert_eq!(
            json["profiles"][0]["samples"],
            serde_json::json!([[0, 1], [0, 2]])
        );
        assert_eq!(json["profiles"][0]["weights"], serde_json::json!([3, 2]));
        assert_eq!(json["profiles"][0]["endValue"], 5);
    }
}
