//! A comparison as text (a terminal), markdown (a pull-request comment),
//! JSON (a program) and CSV (a spreadsheet).

use std::fmt::Write as _;

use domain::compare::{
    Comparison, ComparisonReport, Figure, FigureRow, SideFlags, Spread, Verdict,
};

/// The formats `mite-perf compare --format` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Markdown,
    Csv,
}

pub fn render(report: &ComparisonReport, format: Format) -> String {
    match format {
        Format::Text => terminal_safe(&text(report)),
        Format::Json => serde_json::to_string_pretty(report).unwrap_or_default() + "\n",
        Format::Markdown => markdown(report),
        Format::Csv => csv(report),
    }
}

pub(crate) fn spread(figure: Figure, s: &Option<Spread>) -> String {
    match s {
        None => "–".to_string(),
        Some(s) if s.repeats == 1 => figure.format(s.median),
        Some(s) => format!(
            "{} ({}–{})",
            figure.format(s.median),
            figure.format(s.min),
            figure.format(s.max)
        ),
    }
}

fn change(c: &Option<Comparison>) -> String {
    match c {
        Some(c) => format!("{:+.1} %", c.change * 100.0),
        None => "–".to_string(),
    }
}

/// `worse (p 0.001; ratio 0.70, 99 % CI 0.68–0.72; could see 2.1 % or
/// more)`.
fn verdict(c: &Option<Comparison>, threshold: f64) -> String {
    let Some(c) = c else {
        return "not measured on both sides".to_string();
    };
    let mut text = c.verdict.as_str().to_string();
    let mut details = Vec::new();
    if let Some(p) = c.p_value {
        let looks = if c.looks > 1 {
            format!(" over {} looks", c.looks)
        } else {
            String::new()
        };
        details.push(if p < 0.001 {
            format!("p < 0.001{looks}")
        } else {
            format!("p {p:.3}{looks}")
        });
    }
    if matches!(
        c.verdict,
        Verdict::Inconclusive | Verdict::Worse | Verdict::Better
    ) {
        match c.ratio_interval {
            Some((low, high)) => details.push(format!(
                "ratio {:.3}, {:.0} % CI {low:.3}–{high:.3}",
                c.ratio,
                domain::compare::CONFIDENCE_PERCENT
            )),
            None => details.push("one repeat: no test".to_string()),
        }
    }
    if let Some(floor) = &c.floor {
        let past = if floor.change > threshold {
            ": not the threshold"
        } else {
            ""
        };
        details.push(format!("could see {} or more{past}", floor.text()));
    }
    if !details.is_empty() {
        let _ = write!(text, " ({})", details.join("; "));
    }
    text
}

/// Text for a terminal: no control character but the line break (a label
/// holding an escape sequence cannot move the cursor, retitle the window
/// or hide a line).
pub fn terminal_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\n' {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect()
}

/// A run's own words on one line of a terminal: every control character
/// (line breaks too) shown as U+FFFD.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

/// Text put in markdown, inside a line, as written: every character
/// markdown (or the HTML it may hold) would read as markup there is
/// escaped, line breaks become spaces.
pub(crate) fn markdown_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '!' | '|' | '~' | '&' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A code span holding `text` as written: fenced by more backticks than any
/// run inside it, with `|` escaped for the table it sits in.
pub(crate) fn markdown_code(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .replace('|', "\\|");
    if longest == 0 {
        format!("{fence}{text}{fence}")
    } else {
        format!("{fence} {text} {fence}")
    }
}

/// The title with the runs' own words (labels, build names) passed through
/// `escape`.
fn title_with(report: &ComparisonReport, escape: impl Fn(&str) -> String) -> String {
    let side = |s: &domain::compare::Side| {
        let build = if s.build > 0 {
            format!(" build {}", s.build + 1)
        } else {
            String::new()
        };
        let label = if s.label.is_empty() {
            String::new()
        } else {
            format!("{}, ", escape(&s.label))
        };
        format!(
            "run {}{build} ({label}mite {})",
            s.run_id,
            escape(&s.build_name)
        )
    };
    format!("{} against {}", side(&report.new), side(&report.base))
}

fn summary(report: &ComparisonReport) -> String {
    format!(
        "{} worse, {} better, {} inconclusive, {} no significant change (threshold {:.0} %)",
        report.count(Verdict::Worse),
        report.count(Verdict::Better),
        report.count(Verdict::Inconclusive),
        report.count(Verdict::NoSignificantChange),
        report.threshold * 100.0
    )
}

pub(crate) fn notes(report: &ComparisonReport) -> Vec<String> {
    let mut notes = report.warnings.clone();
    notes.extend(report.blind_note());
    if report.rests_on_single_repeats() {
        notes.push(
            "some scenarios ran once on a side: no test was possible, a change past the \
             threshold is inconclusive (use --repeat 3 or more)"
                .to_string(),
        );
    }
    if !report.unmatched.is_empty() {
        let list: Vec<String> = report.unmatched.iter().map(u32::to_string).collect();
        notes.push(format!(
            "concurrency {} finished on one side only: not compared",
            list.join(", ")
        ));
    }
    notes.extend(report.validity.iter().flat_map(SideFlags::lines));
    notes
}

fn text(report: &ComparisonReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", title_with(report, one_line));
    for note in notes(report) {
        let _ = writeln!(out, "warning: {note}");
    }
    let _ = writeln!(
        out,
        "\n{:<12} {:<28} {:>26} {:>26} {:>9}  verdict",
        "concurrency", "figure", "base median (min–max)", "new median (min–max)", "change"
    );
    for row in &report.rows {
        let _ = writeln!(
            out,
            "{:<12} {:<28} {:>26} {:>26} {:>9}  {}",
            row.concurrency,
            format!("{} [{}]", row.figure.name(), row.figure.unit()),
            spread(row.figure, &row.base_spread),
            spread(row.figure, &row.new_spread),
            change(&row.comparison),
            verdict(&row.comparison, report.threshold)
        );
    }
    let _ = writeln!(out, "\n{}", summary(report));
    for p in &report.profiles {
        let _ = writeln!(
            out,
            "\nwhere the runners' time per request moved at {} journeys (own stack samples \
             per 1,000 requests; * past the noise: moved by 5 % of the base's samples per request \
             and its share of the samples beyond chance):",
            p.concurrency
        );
        for f in &p.frames {
            let _ = writeln!(
                out,
                "  {:>9} {:>9} {:>9}{} {}",
                per_thousand(f.base_per_thousand),
                per_thousand(f.new_per_thousand),
                format!("{:+.2}", f.change()),
                if f.notable { "*" } else { " " },
                f.frame
            );
        }
    }
    out
}

fn per_thousand(value: f64) -> String {
    format!("{value:.2}")
}

/// The frame tables of a markdown comparison.
fn markdown_profiles(report: &ComparisonReport, out: &mut String) {
    for p in &report.profiles {
        let _ = writeln!(
            out,
            "\n#### Where the runners' time per request moved at {} journeys\n\n\
             Own stack samples per 1,000 requests ({} samples over {} requests against {} over \
             {}); **bold**: past the noise (moved by 5 % of the base's samples per request, and its share \
             of the samples beyond chance).\n\n\
             | frame | base | new | change |\n|---|---:|---:|---:|",
            p.concurrency, p.new_samples, p.new_requests, p.base_samples, p.base_requests
        );
        for f in &p.frames {
            let frame = markdown_code(&f.frame);
            let change = format!("{:+.2}", f.change());
            let change = if f.notable {
                format!("**{change}**")
            } else {
                change
            };
            let _ = writeln!(
                out,
                "| {frame} | {} | {} | {change} |",
                per_thousand(f.base_per_thousand),
                per_thousand(f.new_per_thousand)
            );
        }
    }
}

fn markdown(report: &ComparisonReport) -> String {
    let mut out = String::new();
    let worst = if report.count(Verdict::Worse) > 0 {
        "🔴"
    } else if report.count(Verdict::Inconclusive) > 0 {
        "🟡"
    } else {
        "🟢"
    };
    let _ = writeln!(
        out,
        "### {worst} mite perf: {}\n",
        title_with(report, markdown_text)
    );
    let _ = writeln!(out, "**{}**\n", summary(report));
    for note in notes(report) {
        let _ = writeln!(out, "> ⚠️ {}", markdown_text(&note));
    }
    let _ = writeln!(
        out,
        "\n| concurrency | figure | base | new | change | verdict |\n|---:|---|---:|---:|---:|---|"
    );
    // Changes first: the rows a reviewer needs, then the rest folded.
    let (changed, steady): (Vec<&FigureRow>, Vec<&FigureRow>) = report.rows.iter().partition(|r| {
        r.comparison
            .as_ref()
            .is_none_or(|c| c.verdict != Verdict::NoSignificantChange)
    });
    let line = |row: &FigureRow| {
        let verdict_text = verdict(&row.comparison, report.threshold);
        let verdict_text = match row.comparison.as_ref().map(|c| c.verdict) {
            Some(Verdict::Worse) => format!("**{verdict_text}**"),
            _ => verdict_text,
        };
        format!(
            "| {} | {} ({}) | {} | {} | {} | {} |\n",
            row.concurrency,
            row.figure.name(),
            row.figure.unit(),
            spread(row.figure, &row.base_spread),
            spread(row.figure, &row.new_spread),
            change(&row.comparison),
            verdict_text
        )
    };
    for row in &changed {
        out.push_str(&line(row));
    }
    if !steady.is_empty() {
        let _ = writeln!(
            out,
            "\n<details><summary>{} figures with no significant change</summary>\n\n\
             | concurrency | figure | base | new | change | verdict |\n|---:|---|---:|---:|---:|---|",
            steady.len()
        );
        for row in &steady {
            out.push_str(&line(row));
        }
        out.push_str("\n</details>\n");
    }
    markdown_profiles(report, &mut out);
    out
}

/// One row per side × concurrency × figure, then the verdicts.
fn csv(report: &ComparisonReport) -> String {
    let mut out = String::from(
        "run,build,concurrency,figure,median,q1,q3,min,max,repeats,change,p_value,floor,verdict\n",
    );
    for row in &report.rows {
        for (side, spread, is_new) in [
            (&report.base, &row.base_spread, false),
            (&report.new, &row.new_spread, true),
        ] {
            let Some(s) = spread else { continue };
            let (change, p, floor, verdict) = match (&row.comparison, is_new) {
                (Some(c), true) => (
                    format!("{:.6}", c.change),
                    c.p_value.map(|p| format!("{p:.6}")).unwrap_or_default(),
                    c.floor
                        .map(|f| format!("{:.6}", f.change))
                        .unwrap_or_default(),
                    c.verdict.as_str().to_string(),
                ),
                _ => (String::new(), String::new(), String::new(), String::new()),
            };
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{},{},{},{change},{p},{floor},{verdict}",
                side.run_id,
                side.build + 1,
                row.concurrency,
                row.figure.key(),
                s.median,
                s.q1,
                s.q3,
                s.min,
                s.max,
                s.repeats
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use domain::compare::{Side, Spread};

    use super::*;

    fn report(verdict: Verdict) -> ComparisonReport {
        let side = |run_id| Side {
            run_id,
            build: 0,
            label: "main".into(),
            build_name: "2.11.0".into(),
        };
        ComparisonReport {
            base: side(1),
            new: side(2),
            threshold: 0.05,
            rows: vec![FigureRow {
                concurrency: 10,
                figure: Figure::RequestsPerSecond,
                base: vec![11_600.0, 11_700.0, 11_650.0],
                new: vec![8_100.0, 8_200.0, 8_150.0],
                base_spread: Spread::of(&[11_600.0, 11_700.0, 11_650.0]),
                new_spread: Spread::of(&[8_100.0, 8_200.0, 8_150.0]),
                comparison: Some(Comparison {
                    base_median: 11_650.0,
                    new_median: 8_150.0,
                    change: 8_150.0 / 11_650.0 - 1.0,
                    ratio: 0.7,
                    ratio_interval: Some((0.68, 0.72)),
                    p_value: Some(0.0004),
                    verdict,
                    single_repeat: false,
                    looks: 1,
                    floor: None,
                }),
            }],
            warnings: vec!["the runs differ in host: a against b".into()],
            unmatched: vec![100],
            validity: vec![SideFlags {
                side: "run 2".into(),
                concurrency: 10,
                flags: vec![domain::validity::ValidityFlag {
                    issue: domain::validity::Issue::RunnerCpuBound,
                    sentence: "The runner was CPU-bound.".into(),
                }],
            }],
            profiles: vec![domain::profile::ProfileComparison {
                concurrency: 10,
                base_samples: 1200,
                new_samples: 1180,
                base_requests: 30_000,
                new_requests: 20_000,
                frames: vec![
                    domain::profile::FrameChange {
                        frame: "_spin (mite_http/__init__.py)".into(),
                        base_per_thousand: 0.0,
                        new_per_thousand: 21.5,
                        notable: true,
                    },
                    domain::profile::FrameChange {
                        frame: "send (mite/zmq.py)".into(),
                        base_per_thousand: 4.0,
                        new_per_thousand: 4.1,
                        notable: false,
                    },
                ],
            }],
            dependencies: None,
        }
    }

    #[test]
    fn text_names_sides_figures_and_the_verdict() {
        let out = render(&report(Verdict::Worse), Format::Text);
        assert!(
            out.starts_with("run 2 (main, mite 2.11.0) against run 1 (main, mite 2.11.0)\n"),
            "{out}"
        );
        assert!(out.contains("warning: the runs differ in host"), "{out}");
        assert!(
            out.contains(
                "warning: run 2 at 10 journeys, runner CPU-bound: The runner was CPU-bound."
            ),
            "{out}"
        );
        assert!(
            out.contains("concurrency 100 finished on one side only"),
            "{out}"
        );
        assert!(out.contains("11,650 (11,600–11,700)"), "{out}");
        assert!(
            out.contains("-30.0 %  worse (p < 0.001; ratio 0.700, 99 % CI 0.680–0.720)"),
            "{out}"
        );
        assert!(out.contains(
            "1 worse, 0 better, 0 inconclusive, 0 no significant change (threshold 5 %)"
        ));
        assert!(
            out.contains("      0.00     21.50    +21.50* _spin (mite_http/__init__.py)"),
            "{out}"
        );
    }

    #[test]
    fn markdown_puts_changes_first_and_folds_the_rest() {
        let out = render(&report(Verdict::Worse), Format::Markdown);
        assert!(out.starts_with("### 🔴 mite perf: run 2"), "{out}");
        assert!(out.contains("| 10 | requests/s (req/s) | 11,650 (11,600–11,700) | 8,150 (8,100–8,200) | -30.0 % | **worse"), "{out}");
        assert!(!out.contains("<details>"));
        assert!(
            out.contains("#### Where the runners' time per request moved at 10 journeys"),
            "{out}"
        );
        assert!(
            out.contains("| `_spin (mite_http/__init__.py)` | 0.00 | 21.50 | **+21.50** |"),
            "{out}"
        );
        assert!(
            out.contains("| `send (mite/zmq.py)` | 4.00 | 4.10 | +0.10 |"),
            "{out}"
        );
        let steady = render(&report(Verdict::NoSignificantChange), Format::Markdown);
        assert!(steady.starts_with("### 🟢"), "{steady}");
        assert!(
            steady.contains("<details><summary>1 figures with no significant change"),
            "{steady}"
        );
    }

    #[test]
    fn the_runs_own_words_cannot_mark_up_or_drive_a_terminal() {
        let mut hostile = report(Verdict::Worse);
        hostile.new.label = "x](http://evil.example) <img src=x onerror=alert(1)> | **".into();
        hostile.base.build_name = "\u{1b}]0;pwned\u{7}\u{1b}[2Jmain\nforged line".into();
        if let Some(p) = hostile.profiles.first_mut() {
            if let Some(f) = p.frames.first_mut() {
                f.frame = "a`b | c".into();
            }
        }
        let md = render(&hostile, Format::Markdown);
        let first = md.lines().next().unwrap_or_default();
        assert!(
            first.contains("x\\](http://evil.example) \\<img src=x onerror=alert(1)\\> \\| \\*\\*"),
            "{first}"
        );
        assert!(
            !md.contains('\u{1b}') && !md.contains("\nforged line"),
            "{md}"
        );
        assert!(md.contains("| `` a`b \\| c `` |"), "{md}");
        let text = render(&hostile, Format::Text);
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "{text}"
        );
        assert!(text.contains("\u{fffd}]0;pwned"), "{text}");
        assert!(!text.contains("\nforged line"), "{text}");
    }

    #[test]
    fn each_verdict_says_what_its_test_could_see() {
        let mut blind = report(Verdict::NoSignificantChange);
        let floor = |change: f64| domain::compare::Floor {
            change,
            at_most: None,
            alpha: 0.01,
            basis: domain::compare::FloorBasis {
                sd: 0.04,
                spread: domain::compare::SpreadSource::Own { df: 4 },
                base_repeats: 3,
                new_repeats: 3,
                share: 1.0,
                at_most: None,
            },
        };
        if let Some(c) = blind.rows[0].comparison.as_mut() {
            c.floor = Some(floor(0.123));
            c.p_value = Some(0.4);
            c.looks = 2;
        }
        let text = render(&blind, Format::Text);
        assert!(
            text.contains(
                "no significant change (p 0.400 over 2 looks; could see 12.3 % or more: not the \
                 threshold)"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "warning: 1 figure with no significant change could not have seen a change of 5 %"
            ),
            "{text}"
        );
        let markdown = render(&blind, Format::Markdown);
        assert!(markdown.contains("could see 12.3 % or more"), "{markdown}");
        let csv = render(&blind, Format::Csv);
        assert!(
            csv.contains(",0.400000,0.123000,no significant change\n"),
            "{csv}"
        );
        // A floor under the threshold: said, and no warning.
        if let Some(c) = blind.rows[0].comparison.as_mut() {
            c.floor = Some(floor(0.021));
        }
        let text = render(&blind, Format::Text);
        assert!(text.contains("could see 2.1 % or more)"), "{text}");
        assert!(!text.contains("could not have seen"), "{text}");
    }

    #[test]
    fn json_and_csv_carry_every_number() {
        let report = report(Verdict::Worse);
        let json: ComparisonReport =
            serde_json::from_str(&render(&report, Format::Json)).expect("json reads back");
        assert_eq!(json, report);
        let csv = render(&report, Format::Csv);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 3, "{csv}");
        assert_eq!(
            lines[1],
            "1,1,10,requests_per_second,11650,11625,11675,11600,11700,3,,,,"
        );
        assert!(
            lines[2].starts_with("2,1,10,requests_per_second,8150,"),
            "{csv}"
        );
        assert!(lines[2].ends_with(",-0.300429,0.000400,,worse"), "{csv}");
    }
}
