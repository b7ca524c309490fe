//! The CI gate's summary in markdown, fit for a pull-request comment and
//! `$GITHUB_STEP_SUMMARY`: the headline counts, a table of regressions,
//! improvements and inconclusive figures (change, interval, corrected p),
//! links to the compare page, the differential flame graphs and the trends,
//! then every figure folded; never over [`MAX_SUMMARY_BYTES`].

use std::fmt::Write as _;

use domain::compare::{percent, ComparisonReport, FigureRow, CONFIDENCE_PERCENT};

use super::format::{markdown_code, markdown_text, notes, spread};
use super::gate::{floor_meaning, p_text, Call, GateRow, GateVerdict};

/// GitHub takes comments of up to 65,536 characters; a step summary up to
/// 1 MiB. The summary stays under both, with room to spare.
pub const MAX_SUMMARY_BYTES: usize = 60 * 1024;

/// What the summary says besides the comparison.
#[derive(Debug, Clone, Default)]
pub struct SummaryContext {
    /// The lab's address, for links (no trailing `/`).
    pub lab_url: String,
    /// The comparison's sides as the compare page takes them (`12:1,12:2`).
    pub sides: String,
    /// How the two builds are named (`main (1a2b3c4)`, a wheel's name).
    pub base_name: String,
    pub head_name: String,
    /// The runs measured, one per round, the last judged.
    pub runs: Vec<i64>,
    /// The repeats a side asked for: the most, when the run stops adding
    /// repeats once every figure is decided.
    pub repeats: u32,
    /// The run stopped adding repeats once every figure was decided.
    pub until_decided: bool,
    /// The agent that measured the judged run.
    pub agent: Option<String>,
}

fn headline(verdict: &GateVerdict) -> String {
    let n = |call| verdict.count(call);
    let plural = |k: usize, one: &str, many: &str| {
        if k == 1 {
            format!("1 {one}")
        } else {
            format!("{k} {many}")
        }
    };
    let mut parts = vec![plural(n(Call::Regression), "regression", "regressions")];
    parts.push(plural(n(Call::Improvement), "improvement", "improvements"));
    if n(Call::Inconclusive) > 0 {
        parts.push(format!("{} inconclusive", n(Call::Inconclusive)));
    }
    parts.join(", ")
}

fn interval(row: &FigureRow) -> String {
    match row.comparison.as_ref().and_then(|c| c.ratio_interval) {
        Some((low, high)) => format!(
            "{:+.1} % … {:+.1} %",
            (low - 1.0) * 100.0,
            (high - 1.0) * 100.0
        ),
        None => "–".to_string(),
    }
}

fn change(row: &FigureRow) -> String {
    row.comparison
        .as_ref()
        .map_or("–".to_string(), |c| format!("{:+.1} %", c.change * 100.0))
}

fn line(report: &ComparisonReport, gate: &GateRow, context: &SummaryContext) -> String {
    let row = &report.rows[gate.row];
    let call = match gate.call {
        Call::Regression => "**regression**".to_string(),
        other => other.as_str().to_string(),
    };
    let why = gate
        .why
        .as_deref()
        .map(|w| format!(" ({})", markdown_text(w)))
        .unwrap_or_default();
    format!(
        "| {call}{why} | {} | {} ({}) | {} | {} | {} | {} | {} | {} | [trend]({}/trends?figure={}) |\n",
        row.concurrency,
        row.figure.name(),
        row.figure.unit(),
        spread(row.figure, &row.base_spread),
        spread(row.figure, &row.new_spread),
        change(row),
        interval(row),
        gate.adjusted_p.map_or("–".to_string(), p_text),
        gate.floor
            .map_or("–".to_string(), |f| format!("{} or more", f.text())),
        context.lab_url,
        row.figure.key(),
    )
}

fn table_head() -> String {
    format!(
        "| verdict | journeys | figure | base | head | change | {CONFIDENCE_PERCENT:.0} % interval \
         | p (corrected) | could see | |\n|---|---:|---|---:|---:|---:|---|---:|---:|---|\n"
    )
}

/// What the check could see, said out loud: the figures whose floor is at
/// or under the threshold, and the least sensitive ones by name
/// (`this check could see changes of 2.1 % or more in requests per
/// runner CPU-s at 10 journeys`).
fn sensitivity(report: &ComparisonReport, verdict: &GateVerdict) -> Option<String> {
    let mut floors: Vec<(&GateRow, f64)> = verdict
        .rows
        .iter()
        .filter_map(|g| Some((g, g.floor?.change)))
        .collect();
    if floors.is_empty() {
        return None;
    }
    floors.sort_by(|a, b| a.1.total_cmp(&b.1));
    let threshold = verdict.settings.threshold;
    let within = floors.iter().filter(|(_, f)| *f <= threshold).count();
    let say = |(g, f): &(&GateRow, f64)| {
        let row = &report.rows[g.row];
        format!(
            "{} in {} at {} journeys",
            percent(*f),
            row.figure.name(),
            row.concurrency
        )
    };
    let mut text = format!(
        "This check could see changes of {} or more (its most sensitive figure); {} of the {} \
         figures tested could see {:.0} % or less",
        say(&floors[0]),
        within,
        floors.len(),
        threshold * 100.0
    );
    let blind: Vec<String> = floors
        .iter()
        .rev()
        .filter(|(_, f)| *f > threshold)
        .take(3)
        .map(say)
        .collect();
    if !blind.is_empty() {
        text.push_str(&format!(
            "; the least sensitive: {} (a figure that could not have seen {:.0} % is never \
             called \"no change\": it is inconclusive)",
            blind.join(", "),
            threshold * 100.0
        ));
    }
    text.push_str(&format!(". \"Could see\": {}.", floor_meaning()));
    Some(text)
}

/// `5 repeats a side`, or for a run that stops once decided `2 to 5
/// repeats a side (up to 5: it stopped adding repeats once every figure
/// was decided)`.
fn repeats_text(report: &ComparisonReport, context: &SummaryContext) -> String {
    if !context.until_decided {
        return format!("{} repeats a side", context.repeats);
    }
    let counts = report
        .rows
        .iter()
        .flat_map(|r| [r.base.len(), r.new.len()])
        .filter(|n| *n > 0);
    let (least, most) = counts.fold((usize::MAX, 0), |(l, m), n| (l.min(n), m.max(n)));
    if most == 0 {
        return format!("up to {} repeats a side", context.repeats);
    }
    let took = if least == most {
        format!("{most}")
    } else {
        format!("{least} to {most}")
    };
    format!(
        "{took} repeats a side (up to {}: repeats stop once every figure is decided, by a \
         group-sequential test)",
        context.repeats
    )
}

/// The summary of `verdict` on `report`.
pub fn summary(
    report: &ComparisonReport,
    verdict: &GateVerdict,
    context: &SummaryContext,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### mite perf lab: {}\n\n{} against {}, {}, interleaved on one agent{}.\n",
        headline(verdict),
        markdown_code(&context.head_name),
        markdown_code(&context.base_name),
        repeats_text(report, context),
        context
            .agent
            .as_deref()
            .map(|a| format!(" ({})", markdown_code(a)))
            .unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "A regression is a figure at least {:.0} % worse with p below {} after the \
         Benjamini–Hochberg correction over the {} figures tested.\n",
        verdict.settings.threshold * 100.0,
        verdict.settings.alpha,
        verdict.tested
    );
    if let Some(text) = sensitivity(report, verdict) {
        let _ = writeln!(out, "{}\n", markdown_text(&text));
    }
    let compare = format!("{}/compare?runs={}", context.lab_url, context.sides);
    let mut links = vec![format!("[compare page]({compare})")];
    for p in &report.profiles {
        links.push(format!(
            "[differential flame graph, {} journeys]({}/compare/flamegraph.svg?runs={}&concurrency={})",
            p.concurrency, context.lab_url, context.sides, p.concurrency
        ));
    }
    for run in &context.runs {
        links.push(format!("[run {run}]({}/runs/{run})", context.lab_url));
    }
    links.push(format!("[trends]({}/trends)", context.lab_url));
    let _ = writeln!(out, "{}\n", links.join(" · "));
    if context.runs.len() > 1 {
        let _ = writeln!(
            out,
            "The first round was inconclusive; this is the second round's verdict.\n"
        );
    }
    let notable: Vec<&GateRow> = [Call::Regression, Call::Improvement, Call::Inconclusive]
        .iter()
        .flat_map(|call| verdict.with(*call))
        .collect();
    if !notable.is_empty() {
        out.push_str(&table_head());
        for gate in &notable {
            out.push_str(&line(report, gate, context));
        }
        out.push('\n');
    }
    let notes = notes(report);
    let tail = format!(
        "\n</details>\n\n<sub>Every figure of both builds: [the compare page]({compare}).</sub>\n"
    );
    let _ = writeln!(
        out,
        "<details><summary>Every figure ({})</summary>\n",
        verdict.rows.len()
    );
    for note in &notes {
        let _ = writeln!(out, "> {}\n", markdown_text(note));
    }
    out.push_str(&table_head());
    let mut left_out = 0;
    for gate in &verdict.rows {
        let text = line(report, gate, context);
        // Room for the tail and a line saying what was left out.
        if out.len() + text.len() + tail.len() + 200 > MAX_SUMMARY_BYTES {
            left_out += 1;
            continue;
        }
        out.push_str(&text);
    }
    if left_out > 0 {
        let _ = writeln!(
            out,
            "\n{left_out} more figures did not fit in a comment: see the compare page."
        );
    }
    out.push_str(&tail);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::gate::{judge, GateSettings};
    use domain::compare::{Comparison, Figure, Side, Verdict};

    fn report(rows: usize, warning: &str) -> ComparisonReport {
        let figures = Figure::all();
        ComparisonReport {
            base: Side {
                run_id: 7,
                build: 0,
                label: "ci".into(),
                build_name: "base".into(),
            },
            new: Side {
                run_id: 7,
                build: 1,
                label: "ci".into(),
                build_name: "head".into(),
            },
            threshold: 0.05,
            rows: (0..rows)
                .map(|i| FigureRow {
                    concurrency: 10 * (1 + i as u32 / figures.len() as u32),
                    figure: figures[i % figures.len()],
                    base: vec![100.0; 5],
                    new: vec![80.0; 5],
                    base_spread: None,
                    new_spread: None,
                    comparison: Some(Comparison {
                        base_median: 100.0,
                        new_median: if i == 1 { 70.0 } else { 100.5 },
                        change: if i == 1 { -0.30 } else { 0.005 },
                        ratio: if i == 1 { 0.7 } else { 1.005 },
                        ratio_interval: Some((0.68, 0.72)),
                        p_value: Some(if i == 1 { 1e-7 } else { 0.4 }),
                        verdict: Verdict::NoSignificantChange,
                        single_repeat: false,
                        looks: 1,
                        floor: None,
                    }),
                })
                .collect(),
            warnings: vec![warning.into()],
            unmatched: vec![],
            validity: vec![],
            profiles: vec![],
            dependencies: None,
        }
    }

    fn context() -> SummaryContext {
        SummaryContext {
            lab_url: "https://lab.example.com".into(),
            sides: "7:1,7:2".into(),
            base_name: "main (1a2b3c4)".into(),
            head_name: "HEAD (5d6e7f8)".into(),
            runs: vec![7],
            repeats: 5,
            until_decided: false,
            agent: Some("lab-1".into()),
        }
    }

    #[test]
    fn the_summary_says_what_the_check_could_see() {
        let mut report = report(4, "note");
        // Figure 0 steady (0.3 % spread), figure 3 noisy (8 %), 3 and 4
        // repeats a side: the run stopped early.
        for (i, row) in report.rows.iter_mut().enumerate() {
            let sd = if i == 3 { 0.08 } else { 0.003 };
            row.base.truncate(if i == 0 { 3 } else { 4 });
            let basis = domain::compare::FloorBasis {
                sd,
                spread: domain::compare::SpreadSource::Own { df: 6 },
                base_repeats: 4,
                new_repeats: 4,
                share: 1.0,
                at_most: None,
            };
            if let Some(c) = row.comparison.as_mut() {
                c.floor = crate::compare::stats::floor_at(&basis, 0.01);
            }
        }
        let verdict = judge(&report, GateSettings::default());
        let mut context = context();
        context.until_decided = true;
        let text = summary(&report, &verdict, &context);
        assert!(
            text.contains("3 to 5 repeats a side (up to 5: repeats stop once every figure"),
            "{text}"
        );
        let said = text
            .lines()
            .find(|l| l.starts_with("This check could see changes of "))
            .expect("the sensitivity line");
        let noisy = Figure::all()[3].name();
        assert!(
            said.contains("3 of the 4 figures tested could see 5 % or less")
                && said.contains("the least sensitive: ")
                && said.contains(&format!("in {} at 10 journeys", markdown_text(&noisy))),
            "{said}"
        );
        // The noisy figure is inconclusive, its floor in its row.
        let row = text
            .lines()
            .find(|l| l.starts_with("| inconclusive") && l.contains(&markdown_text(&noisy)))
            .expect("the noisy figure's row");
        assert!(row.contains("% or more |"), "{row}");
    }

    #[test]
    fn the_regression_leads_with_its_change_interval_p_and_links() {
        let report = report(11, "note");
        let verdict = judge(&report, GateSettings::default());
        let text = summary(&report, &verdict, &context());
        assert!(
            text.starts_with("### mite perf lab: 1 regression, 0 improvements"),
            "{text}"
        );
        let regression = text
            .lines()
            .find(|l| l.starts_with("| **regression**"))
            .expect("a regression row");
        assert!(
            regression.contains("requests per runner CPU-s")
                && regression.contains("-30.0 %")
                && regression.contains("-32.0 % … -28.0 %")
                && regression.contains("< 0.0001"),
            "{regression}"
        );
        assert!(text.contains("(https://lab.example.com/compare?runs=7:1,7:2)"));
        assert!(text.contains("(https://lab.example.com/runs/7)"));
        assert!(text.contains("<details><summary>Every figure (11)</summary>"));
    }

    #[test]
    fn a_huge_comparison_still_fits_a_comment_and_says_what_it_left_out() {
        let report = report(3000, &"a long warning ".repeat(20));
        let verdict = judge(&report, GateSettings::default());
        let text = summary(&report, &verdict, &context());
        assert!(text.len() <= MAX_SUMMARY_BYTES, "{}", text.len());
        assert!(
            text.contains("more figures did not fit"),
            "{}",
            &text[text.len() - 400..]
        );
        assert!(text.trim_end().ends_with("</sub>"));
    }

    #[test]
    fn the_builds_own_words_cannot_mark_up_the_comment() {
        let report = report(2, "x");
        let verdict = judge(&report, GateSettings::default());
        let mut context = context();
        context.head_name = "evil` <img src=x onerror=alert(1)> [x](javascript:1)".into();
        let text = summary(&report, &verdict, &context);
        assert!(text.contains("`` evil` <img"), "{text}");
        assert!(!text.contains("\n<img"), "{text}");
    }
}
