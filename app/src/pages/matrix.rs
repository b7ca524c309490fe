//! A run's version matrix on its page: each figure per mite build and
//! concurrency, median and spread over its repeats, as a table (with each
//! build's change from the first) and as charts. Refreshed as scenarios end.

use leptos::prelude::*;

use super::compare::spread_text;
use crate::api::{get_matrix, RunView};
use crate::charts;
use domain::matrix::RunMatrix;
use domain::model::ScenarioStatus;

/// Whether a run's page shows a matrix: it measured several builds,
/// repeated its scenarios, or scaled (several concurrencies or runners);
/// otherwise its one scenario's card says it all.
pub fn has_matrix(run: &RunView) -> bool {
    run.params.builds().len() > 1
        || run.params.repeats > 1
        || run.params.concurrencies.len() > 1
        || run.params.runners > 1
}

#[component]
pub fn BuildMatrix(run: RwSignal<RunView>) -> impl IntoView {
    let run_id = run.with_untracked(|r| r.id);
    let finished = Memo::new(move |_| {
        run.with(|r| {
            r.scenarios
                .iter()
                .filter(|s| s.status == ScenarioStatus::Done)
                .count()
        })
    });
    let matrix = Resource::new(
        move || finished.get(),
        move |finished| async move {
            if finished == 0 {
                Ok(None)
            } else {
                get_matrix(run_id).await.map(Some)
            }
        },
    );
    // Drawn in the browser once the matrix is there, and again when it grows.
    Effect::new(move |_| {
        if let Some(Ok(Some(m))) = matrix.get() {
            request_animation_frame(move || {
                for spec in &m.charts {
                    charts::render(
                        &charts::matrix_chart_id(spec.slot),
                        &spec.option_json,
                        &spec.group,
                    );
                }
            });
        }
    });
    let (builds, repeats, runners) =
        run.with_untracked(|r| (r.params.builds().len(), r.params.repeats, r.params.runners));
    let heading = if builds > 1 {
        "Figures per build".to_string()
    } else if repeats > 1 {
        "Figures over repeats".to_string()
    } else {
        format!(
            "Scaling: figures against concurrency, {runners} runner{}",
            if runners == 1 { "" } else { "s" }
        )
    };
    view! {
        <section class="card matrix">
            <h2>{heading}</h2>
            <p class="hint">"Each figure's median over the repeats (IQR, min–max), and how each build differs from b1. "
                <a href=format!("/runs/{run_id}/figures.csv") download>"figures.csv"</a></p>
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || matrix.get().map(|m| match m {
                    Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                    Ok(None) => view! { <p class="empty">"No scenario has finished yet."</p> }.into_any(),
                    Ok(Some(m)) => view! { <MatrixTable matrix=m/> }.into_any(),
                })}
            </Transition>
        </section>
    }
}

#[component]
fn MatrixTable(matrix: RunMatrix) -> impl IntoView {
    let builds = matrix.builds.clone();
    let concurrencies = matrix.concurrencies();
    let rows: Vec<_> = matrix
        .figures()
        .into_iter()
        .flat_map(|f| concurrencies.iter().map(move |c| (f, *c)))
        .collect();
    let cell = {
        let matrix = matrix.clone();
        move |build: usize, concurrency: u32, figure| {
            let spread = matrix.cell(build, concurrency, figure).copied();
            let unstable = spread.is_some_and(|s| s.unstable());
            let mut text = spread_text(figure, &spread);
            if let Some(change) = matrix.change_from_first(build, concurrency, figure) {
                text.push_str(&format!(" {:+.1} %", change * 100.0));
            }
            if unstable {
                text.push_str(" unstable");
            }
            (text, unstable)
        }
    };
    view! {
        <table class="matrix-table">
            <thead><tr>
                <th>"Figure"</th><th class="num">"Journeys"</th>
                {builds.iter().enumerate().map(|(i, b)| view! { <th class="num build-name">{format!("b{} {b}", i + 1)}</th> }).collect_view()}
            </tr></thead>
            <tbody>
                {rows.into_iter().map(|(figure, concurrency)| {
                    let cell = cell.clone();
                    view! {
                        <tr data-figure=figure.key() data-concurrency=concurrency.to_string()>
                            <td>{format!("{} ({})", figure.name(), figure.unit())}</td>
                            <td class="num">{concurrency.to_string()}</td>
                            {(1..=builds.len()).map(|b| {
                                let (text, unstable) = cell(b, concurrency, figure);
                                view! { <td class="num" class:unstable=unstable data-build=b.to_string()>{text}</td> }
                            }).collect_view()}
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
        <div class="charts matrix-charts">
            {matrix.charts.iter().map(|spec| view! { <div class="chart" id=charts::matrix_chart_id(spec.slot)></div> }).collect_view()}
        </div>
    }
}
