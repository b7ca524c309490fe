//! Two runs (or two builds of one run) compared: every figure side by side
//! with its change and verdict (`/compare?runs=12,15`).

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use super::answer_status;
use crate::api::{compare_runs, get_compare_charts, ChartSpec};
use crate::charts;
use domain::compare::{Comparison, ComparisonReport, Figure, FigureRow, Spread, Verdict};
use domain::format;

/// `runs` from the query: `runs=12,15`, or the history's checkboxes
/// (`runs=15&runs=12`, oldest taken as the base).
fn sides_from_query(values: Vec<String>) -> String {
    let mut parts: Vec<String> = values
        .iter()
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if values.len() > 1 && parts.iter().all(|p| p.parse::<i64>().is_ok()) {
        parts.sort_by_key(|p| p.parse::<i64>().unwrap_or(0));
    }
    parts.join(",")
}

#[component]
pub fn ComparePage() -> impl IntoView {
    let query = use_query_map();
    let sides = move || sides_from_query(query.read().get_all("runs").unwrap_or_default());
    let threshold = move || query.read().get("threshold");
    // `&across=1`: the sides ran on different machines, compared anyway.
    let across = move || {
        query
            .read()
            .get("across")
            .is_some_and(|a| a == "1" || a == "true")
    };
    let report = Resource::new(
        move || (sides(), threshold(), across()),
        |(sides, threshold, across)| async move {
            if sides.is_empty() {
                Ok(None)
            } else {
                compare_runs(sides, threshold, Some(across)).await.map(Some)
            }
        },
    );
    view! {
        <section class="card">
            <h1>"Compare"</h1>
            <Transition fallback=|| view! { <p>"Comparing…"</p> }>
                {move || report.get().map(|r| match r {
                    Err(e) => {
                        answer_status(e.status());
                        view! { <p class="error compare-error">{e.to_string()}</p> }.into_any()
                    }
                    Ok(None) => view! {
                        <p class="empty">"Tick two runs in " <a href="/runs">"the history"</a>
                            " and compare them, or open a run of several builds and compare its builds."</p>
                    }.into_any(),
                    Ok(Some(report)) => {
                        let csv = format!(
                            "/compare.csv?runs={}{}",
                            sides(),
                            if across() { "&across=1" } else { "" }
                        );
                        view! {
                            <ComparisonTable report=report.clone() changed_only=false/>
                            <p><a class="download" href=csv>"Download as CSV"</a></p>
                            <ProfileChanges report=report.clone() sides=sides()/>
                            <OverlayCharts sides=sides()/>
                        }.into_any()
                    }
                })}
            </Transition>
        </section>
    }
}

/// Where the runners' time per request moved: per concurrency both sides
/// profiled, a differential flame graph and the frames that changed most.
#[component]
fn ProfileChanges(report: ComparisonReport, sides: String) -> impl IntoView {
    report
        .profiles
        .into_iter()
        .map(|p| {
            let svg = format!("/compare/flamegraph.svg?runs={sides}&concurrency={}", p.concurrency);
            let rows = p.frames.iter().map(|f| {
                let change = format!("{:+.2}", f.change());
                view! {
                    <tr class:notable=f.notable data-frame=f.frame.clone()>
                        <td class="frame"><code>{f.frame.clone()}</code></td>
                        <td class="num">{format!("{:.2}", f.base_per_thousand)}</td>
                        <td class="num">{format!("{:.2}", f.new_per_thousand)}</td>
                        <td class="num change">{change}</td>
                    </tr>
                }
            }).collect_view();
            view! {
                <section class="profile-changes" data-concurrency=p.concurrency.to_string()>
                    <h2>{format!("Where the runners' time per request moved at {} journeys", p.concurrency)}</h2>
                    <p class="hint">{format!(
                        "Own stack samples per 1,000 requests (new: {} samples over {} requests; base: {} over {}). Bold rows moved past the noise: by 5 % of the base's samples per request, and their share of the samples beyond chance.",
                        format::count(p.new_samples as i64), format::count(p.new_requests), format::count(p.base_samples as i64), format::count(p.base_requests)
                    )}</p>
                    <table class="frames">
                        <thead><tr><th>"frame"</th><th class="num">"base"</th><th class="num">"new"</th><th class="num">"change"</th></tr></thead>
                        <tbody>{rows}</tbody>
                    </table>
                    <img class="flamegraph differential" src={svg.clone()} alt="differential flame graph"/>
                    <p><a href=svg target="_blank">"open the differential flame graph alone (search, zoom)"</a></p>
                </section>
            }
        })
        .collect_view()
}

/// The compared runs' charts, overlaid, drawn once fetched.
#[component]
fn OverlayCharts(sides: String) -> impl IntoView {
    let specs = RwSignal::new(Vec::<ChartSpec>::new());
    Effect::new(move |_| {
        let sides = sides.clone();
        leptos::task::spawn_local(async move {
            if let Ok(found) = get_compare_charts(sides).await {
                specs.set(found);
                request_animation_frame(move || {
                    for spec in specs.get_untracked() {
                        charts::render(
                            &charts::compare_chart_id(&spec),
                            &spec.option_json,
                            &spec.group,
                        );
                    }
                });
            }
        });
    });
    view! {
        <div class="charts overlay-charts">
            {move || specs.get().into_iter().map(|spec| view! { <div class="chart" id=charts::compare_chart_id(&spec)></div> }).collect_view()}
        </div>
    }
}

pub(super) fn spread_text(figure: Figure, s: &Option<Spread>) -> String {
    match s {
        None => "–".into(),
        Some(s) if s.repeats == 1 => figure.format(s.median),
        Some(s) => format!(
            "{} (IQR {}–{}, {}–{})",
            figure.format(s.median),
            figure.format(s.q1),
            figure.format(s.q3),
            figure.format(s.min),
            figure.format(s.max)
        ),
    }
}

/// What the figure's test could have seen: `2.1 %`, and whether that
/// misses the threshold.
fn floor_text(c: &Comparison, threshold: f64) -> String {
    match &c.floor {
        Some(f) if f.change > threshold => {
            format!("{} or more (not {:.0} %)", f.text(), threshold * 100.0)
        }
        Some(f) => format!("{} or more", f.text()),
        None => "–".into(),
    }
}

/// Where a figure's floor took its spread from, for the cell's title.
fn floor_title(c: &Comparison) -> String {
    c.floor
        .map(|f| {
            format!(
                "The smallest change this test finds {:.0} % of the time, at its level, with the repeats it had; from {}.",
                domain::compare::FLOOR_POWER * 100.0,
                f.basis.spread.describe()
            )
        })
        .unwrap_or_default()
}

fn verdict_text(c: &Comparison) -> String {
    let mut text = c.verdict.as_str().to_string();
    if c.verdict == Verdict::Inconclusive {
        match c.ratio_interval {
            Some((low, high)) => text.push_str(&format!(
                " (ratio {:.0} % CI {low:.3}–{high:.3})",
                domain::compare::CONFIDENCE_PERCENT
            )),
            None => text.push_str(" (one repeat: no test)"),
        }
    }
    text
}

/// The comparison's title, warnings, summary and table. `changed_only`
/// shows only the figures that moved (for a run's page).
#[component]
pub fn ComparisonTable(report: ComparisonReport, changed_only: bool) -> impl IntoView {
    let title = |s: &domain::compare::Side| {
        let label = if s.label.is_empty() {
            String::new()
        } else {
            format!(" · {}", s.label)
        };
        let build = if s.build > 0 {
            format!(" build {}", s.build + 1)
        } else {
            String::new()
        };
        (
            format!("/runs/{}", s.run_id),
            format!("run {}{build}", s.run_id),
            format!(" (mite {}{label})", s.build_name),
        )
    };
    let (base_href, base_name, base_more) = title(&report.base);
    let (new_href, new_name, new_more) = title(&report.new);
    let summary = format!(
        "{} worse · {} better · {} inconclusive · {} no significant change (threshold {:.0} %)",
        report.count(Verdict::Worse),
        report.count(Verdict::Better),
        report.count(Verdict::Inconclusive),
        report.count(Verdict::NoSignificantChange),
        report.threshold * 100.0
    );
    let mut notes = report.warnings.clone();
    notes.extend(report.blind_note());
    if report.rests_on_single_repeats() {
        notes.push(
            "some scenarios ran once on a side: no test was possible (launch with 3 repeats or more)"
                .into(),
        );
    }
    if !report.unmatched.is_empty() {
        let list: Vec<String> = report.unmatched.iter().map(u32::to_string).collect();
        notes.push(format!(
            "concurrency {} finished on one side only: not compared",
            list.join(", ")
        ));
    }
    let validity: Vec<String> = report
        .validity
        .iter()
        .flat_map(domain::compare::SideFlags::lines)
        .collect();
    let threshold = report.threshold;
    let rows: Vec<FigureRow> = report
        .rows
        .iter()
        .filter(|r| {
            !changed_only
                || r.comparison
                    .as_ref()
                    .is_some_and(|c| c.verdict != Verdict::NoSignificantChange)
        })
        .cloned()
        .collect();
    view! {
        <div class="comparison">
            <p class="compare-title">
                <a href=new_href>{new_name}</a>{new_more}" against "
                <a href=base_href>{base_name}</a>{base_more}
            </p>
            <p class="compare-summary"><strong>{summary}</strong></p>
            {notes.into_iter().map(|n| view! { <p class="warning">{n}</p> }).collect_view()}
            {validity.into_iter().map(|n| view! { <p class="warning validity">{n}</p> }).collect_view()}
            {if rows.is_empty() {
                view! { <p class="empty">"No figure moved past the threshold."</p> }.into_any()
            } else {
                view! {
                    <table class="compare-table">
                        <thead><tr>
                            <th class="num">"Concurrency"</th><th>"Figure"</th>
                            <th class="num">"Base: median (spread)"</th><th class="num">"New: median (spread)"</th>
                            <th class="num">"Change"</th><th>"Verdict"</th>
                            <th class="num" title="The smallest change each figure's test could have seen with the repeats it had (docs/MEASURING.md)">"Could see"</th>
                        </tr></thead>
                        <tbody>
                            {rows.into_iter().map(|row| {
                                let verdict = row.comparison.as_ref().map(|c| c.verdict.as_str().replace(' ', "-")).unwrap_or_default();
                                view! {
                                    <tr class=format!("verdict-{verdict}") data-figure=row.figure.key() data-concurrency=row.concurrency.to_string()>
                                        <td class="num">{row.concurrency.to_string()}</td>
                                        <td>{format!("{} ({})", row.figure.name(), row.figure.unit())}</td>
                                        <td class="num">{spread_text(row.figure, &row.base_spread)}</td>
                                        <td class="num">{spread_text(row.figure, &row.new_spread)}</td>
                                        <td class="num">{row.comparison.as_ref().map(|c| format!("{:+.1} %", c.change * 100.0)).unwrap_or_else(|| "–".into())}</td>
                                        <td class="verdict">{row.comparison.as_ref().map(verdict_text).unwrap_or_else(|| "not measured on both sides".into())}</td>
                                        <td class="num floor" title=row.comparison.as_ref().map(floor_title).unwrap_or_default()>{row.comparison.as_ref().map(|c| floor_text(c, threshold)).unwrap_or_else(|| "–".into())}</td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_history_checkboxes_compare_oldest_against_newest() {
        assert_eq!(sides_from_query(vec!["15".into(), "12".into()]), "12,15");
        assert_eq!(sides_from_query(vec!["12,15".into()]), "12,15");
        // Named builds keep the order given.
        assert_eq!(sides_from_query(vec!["12:2,12:1".into()]), "12:2,12:1");
        assert_eq!(sides_from_query(vec![]), "");
    }
}
