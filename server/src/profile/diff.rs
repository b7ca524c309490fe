//! Two profiles of the same scenario compared per request: where a mite
//! build spends more (or less) of its time for each request it serves.
//! Both sides' stacks are scaled to samples per request before they are
//! compared, so a build that serves more requests in the same time is not
//! mistaken for one that costs more.

use std::collections::{BTreeMap, BTreeSet};

use domain::profile::FrameChange;

use super::folded::{self, Stacks};
use super::ProfileError;

/// A side's stacks (its repeats added up) and the requests served while
/// they were sampled.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sampled {
    pub stacks: Stacks,
    pub requests: i64,
}

impl Sampled {
    /// Adds a repeat's stacks and requests.
    pub fn add(&mut self, stacks: &Stacks, requests: i64) {
        for (stack, count) in stacks {
            *self.stacks.entry(stack.clone()).or_default() += count;
        }
        self.requests += requests;
    }

    fn per_thousand(&self, samples: u64) -> f64 {
        if self.requests <= 0 {
            return 0.0;
        }
        samples as f64 * 1000.0 / self.requests as f64
    }

    /// All samples per 1,000 requests.
    pub fn total_per_thousand(&self) -> f64 {
        self.per_thousand(folded::total(&self.stacks))
    }

    /// Each frame's own samples (where it was the innermost frame) per
    /// 1,000 requests.
    pub fn self_per_thousand(&self) -> BTreeMap<&str, f64> {
        self.self_samples()
            .into_iter()
            .map(|(frame, n)| (frame, self.per_thousand(n)))
            .collect()
    }

    /// Each frame's own samples (where it was the innermost frame).
    fn self_samples(&self) -> BTreeMap<&str, u64> {
        let mut leaves: BTreeMap<&str, u64> = BTreeMap::new();
        for (stack, count) in &self.stacks {
            let leaf = stack.rsplit(';').next().unwrap_or(stack);
            *leaves.entry(leaf).or_default() += count;
        }
        leaves
    }
}

/// How many standard errors apart two shares of samples are: `a` of
/// `a_total` against `b` of `b_total`, pooled (0 when either side has no
/// samples or the pooled share is 0 or 1).
fn share_z(a: u64, a_total: u64, b: u64, b_total: u64) -> f64 {
    if a_total == 0 || b_total == 0 {
        return 0.0;
    }
    let (a_total, b_total) = (a_total as f64, b_total as f64);
    let pooled = (a + b) as f64 / (a_total + b_total);
    let se = (pooled * (1.0 - pooled) * (1.0 / a_total + 1.0 / b_total)).sqrt();
    if se == 0.0 {
        return 0.0;
    }
    (a as f64 / a_total - b as f64 / b_total) / se
}

/// A frame's change counts as notable past this share of the base's
/// samples per request...
pub const NOTABLE_SHARE: f64 = 0.05;
/// ...and when its share of all samples moved this many standard errors
/// (a two-proportion z test). Per request alone is not enough: when the
/// machine is busier, one build serves fewer requests in the same samples
/// and every frame looks costlier per request although none took a larger
/// part of the time (seen in CI: the same build against itself, its largest
/// frame 17 % up per request, its share of the samples 40 % against 38 %).
/// Stack samples are not independent draws, so the bar is high.
pub const NOTABLE_Z: f64 = 4.0;
/// Frames listed in a comparison.
pub const TOP_FRAMES: usize = 10;

/// The frames whose own samples per 1,000 requests changed most, largest
/// change (grown or shrunk) first.
pub fn frame_changes(base: &Sampled, new: &Sampled) -> Vec<FrameChange> {
    let before = base.self_samples();
    let after = new.self_samples();
    let (base_total, new_total) = (folded::total(&base.stacks), folded::total(&new.stacks));
    let notable_from = base.total_per_thousand() * NOTABLE_SHARE;
    let frames: BTreeSet<&str> = before.keys().chain(after.keys()).copied().collect();
    let mut changes: Vec<FrameChange> = frames
        .into_iter()
        .map(|frame| {
            let b = before.get(frame).copied().unwrap_or(0);
            let a = after.get(frame).copied().unwrap_or(0);
            let (b_per, a_per) = (base.per_thousand(b), new.per_thousand(a));
            let moved = (a_per - b_per).abs() >= notable_from && notable_from > 0.0;
            let beyond_chance = share_z(a, new_total, b, base_total).abs() >= NOTABLE_Z;
            FrameChange {
                frame: frame.to_string(),
                base_per_thousand: b_per,
                new_per_thousand: a_per,
                notable: moved && beyond_chance,
            }
        })
        .collect();
    changes.sort_by(|x, y| {
        let dx = (x.new_per_thousand - x.base_per_thousand).abs();
        let dy = (y.new_per_thousand - y.base_per_thousand).abs();
        dy.total_cmp(&dx).then_with(|| x.frame.cmp(&y.frame))
    });
    changes.truncate(TOP_FRAMES);
    changes
}

/// Samples per million requests, as whole numbers for a flame graph.
fn per_million(count: u64, requests: i64) -> u64 {
    if requests <= 0 {
        return 0;
    }
    (count as f64 * 1_000_000.0 / requests as f64).round() as u64
}

/// A differential flame graph: frames as wide as the new side's samples per
/// million requests, red where they grew from the base's, blue where they
/// shrank. `None` when either side has no sample or no request.
pub fn differential_svg(
    title: &str,
    base: &Sampled,
    new: &Sampled,
) -> Result<Option<Vec<u8>>, ProfileError> {
    if base.requests <= 0
        || new.requests <= 0
        || folded::total(&base.stacks) == 0
        || folded::total(&new.stacks) == 0
    {
        return Ok(None);
    }
    let stacks: BTreeSet<&String> = base.stacks.keys().chain(new.stacks.keys()).collect();
    let lines: Vec<String> = stacks
        .into_iter()
        .map(|stack| {
            let b = per_million(base.stacks.get(stack).copied().unwrap_or(0), base.requests);
            let a = per_million(new.stacks.get(stack).copied().unwrap_or(0), new.requests);
            format!("{stack} {b} {a}")
        })
        .collect();
    let mut options = inferno::flamegraph::Options::default();
    options.title = title.to_string();
    options.subtitle = Some(
        "Width: the new build's samples per million requests. Red: more than the base's, blue: fewer."
            .to_string(),
    );
    options.count_name = "samples per million requests".to_string();
    let mut svg = Vec::new();
    inferno::flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), &mut svg)
        .map_err(ProfileError::Draw)?;
    Ok(Some(svg))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sampled(text: &str, requests: i64) -> Sampled {
        Sampled {
            stacks: folded::parse(text).expect("folded"),
            requests,
        }
    }

    #[test]
    fn a_frame_that_costs_more_per_request_tops_the_changes() {
        // The base serves 2,000 requests; the new build half as many in the
        // same samples, and spends 30 of them in _spin.
        let base = sampled("main;serve;send 60\nmain;serve 40\n", 2000);
        let new = sampled(
            "main;serve;send 30\nmain;serve 20\nmain;serve;_spin 30\n",
            1000,
        );
        let changes = frame_changes(&base, &new);
        assert_eq!(changes[0].frame, "_spin");
        assert_eq!(changes[0].base_per_thousand, 0.0);
        assert_eq!(changes[0].new_per_thousand, 30.0);
        assert!(changes[0].notable);
        // send: 30 per 1,000 both times, per request nothing changed.
        let send = changes.iter().find(|c| c.frame == "send").expect("send");
        assert_eq!(
            (send.base_per_thousand, send.new_per_thousand),
            (30.0, 30.0)
        );
        assert!(!send.notable);
    }

    #[test]
    fn the_same_profile_twice_has_nothing_notable() {
        let a = sampled("main;serve;send 60\nmain;serve 40\n", 2000);
        let mut b = Sampled::default();
        b.add(
            &folded::parse("main;serve;send 31\nmain;serve 19\n").expect("one"),
            1000,
        );
        b.add(
            &folded::parse("main;serve;send 29\nmain;serve 21\n").expect("two"),
            1000,
        );
        assert!(frame_changes(&a, &b).iter().all(|c| !c.notable));
    }

    #[test]
    fn a_busier_machine_serving_fewer_requests_is_not_a_frame_that_moved() {
        // CI's figures: one build against itself, the second side served
        // 10 % fewer requests in 11 % more samples; its largest frame 17 %
        // up per request, its share of the samples 39.5 % and 37.7 %.
        let base = sampled("main;runner 266\nmain;send 96\nmain;work 311\n", 43_906);
        let new = sampled("main;runner 282\nmain;send 100\nmain;work 366\n", 39_683);
        let changes = frame_changes(&base, &new);
        let runner = changes
            .iter()
            .find(|c| c.frame == "runner")
            .expect("runner");
        assert!(
            runner.change() > base.total_per_thousand() * NOTABLE_SHARE,
            "{runner:?}"
        );
        assert!(changes.iter().all(|c| !c.notable), "{changes:?}");
    }

    #[test]
    fn shares_far_apart_are_many_standard_errors_apart() {
        assert_eq!(share_z(0, 0, 5, 10), 0.0);
        assert_eq!(share_z(0, 10, 0, 10), 0.0);
        assert!((share_z(50, 100, 50, 100)).abs() < 1e-9);
        // 30 % against 10 % of 700 samples each: about 9.4 standard errors.
        let z = share_z(210, 700, 70, 700);
        assert!((9.0..10.0).contains(&z), "{z}");
        assert!(share_z(70, 700, 210, 700) < -9.0);
    }

    #[test]
    fn the_differential_graph_colours_by_change() {
        let base = sampled("main;serve;send 60\nmain;serve 40\n", 2000);
        let new = sampled("main;serve;send 30\nmain;serve;_spin 30\n", 1000);
        let svg = differential_svg("runner", &base, &new)
            .expect("drawn")
            .expect("svg");
        let svg = String::from_utf8(svg).expect("utf-8");
        assert!(svg.contains("_spin"), "the new frame is drawn");
        assert!(svg.contains("samples per million requests"));
        assert!(matches!(
            differential_svg("x", &base, &Sampled::default()),
            Ok(None)
        ));
    }
}
