//! Drawing ECharts charts in the browser from options the server built with
//! charming. ECharts itself is served by the lab (`/assets/echarts.min.js`).
//!
//! The server sends an overview (downsampled, peaks kept); when the user
//! zooms in, the charts of the scenario fetch the visible window at full
//! resolution and splice it into the overview.

#[cfg(feature = "hydrate")]
mod glue {
    use wasm_bindgen::prelude::*;

    #[wasm_bindgen(inline_js = r#"
export function render_chart(id, json, group) {
  const el = document.getElementById(id);
  if (!el || !window.echarts) return false;
  const chart = window.echarts.getInstanceByDom(el) || window.echarts.init(el);
  const option = JSON.parse(json);
  el._overview = (option.series || []).map(s => s.data);
  // Merge, so an update keeps the user's zoom and hidden series.
  chart.setOption(option);
  chart.group = group;
  window.echarts.connect(group);
  if (!el.dataset.resizeHooked) {
    el.dataset.resizeHooked = "1";
    window.addEventListener("resize", () => chart.resize());
  }
  el.dataset.rendered = "1";
  return true;
}

export function on_zoom(id, callback) {
  const el = document.getElementById(id);
  const chart = el && window.echarts && window.echarts.getInstanceByDom(el);
  if (!chart || el.dataset.zoomHooked) return;
  el.dataset.zoomHooked = "1";
  let timer = null;
  chart.on("datazoom", () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      const [from, to] = chart.getModel().getComponent("xAxis", 0).axis.scale.getExtent();
      callback(from, to);
    }, 300);
  });
}

export function append_points(id, json) {
  const el = document.getElementById(id);
  const chart = el && window.echarts && window.echarts.getInstanceByDom(el);
  if (!chart) return false;
  const option = chart.getOption();
  const names = (option.series || []).map(s => s.name);
  const data = (option.series || []).map(s => s.data || []);
  for (const update of JSON.parse(json)) {
    if (update.points.length === 0) continue;
    let i = names.indexOf(update.name);
    if (i < 0) { names.push(update.name); data.push([]); i = names.length - 1; }
    // The newest bucket may have grown since: the update replaces it.
    const first = update.points[0][0];
    data[i] = data[i].filter(p => p[0] < first).concat(update.points);
  }
  // Only the series change: the zoom and the legend's choices stay.
  chart.setOption({ series: names.map((name, i) => ({ name, type: "line", showSymbol: false, data: data[i] })) });
  el._overview = data;
  return true;
}

export function splice_window(id, json, from, to) {
  const el = document.getElementById(id);
  const chart = el && window.echarts && window.echarts.getInstanceByDom(el);
  if (!chart || !el._overview) return;
  const detail = (JSON.parse(json).series || []).map(s => s.data);
  const series = el._overview.map((points, i) => ({
    data: points.filter(p => p[0] < from)
      .concat(detail[i] || [])
      .concat(points.filter(p => p[0] > to)),
  }));
  chart.setOption({ series });
  el.dataset.detail = `${from}-${to}`;
}
"#)]
    extern "C" {
        pub fn render_chart(id: &str, json: &str, group: &str) -> bool;
        pub fn on_zoom(id: &str, callback: &Closure<dyn Fn(f64, f64)>);
        pub fn splice_window(id: &str, json: &str, from: f64, to: f64);
        pub fn append_points(id: &str, json: &str) -> bool;
    }
}

/// The element a scenario's chart `slot` is drawn in (the run page).
pub fn scenario_chart_id(scenario_id: i64, slot: usize) -> String {
    format!("chart-{scenario_id}-{slot}")
}

/// The element chart `slot` of mite's view of a scenario is drawn in.
pub fn mite_chart_id(scenario_id: i64, slot: usize) -> String {
    format!("mite-chart-{scenario_id}-{slot}")
}

/// The element an overlaid comparison chart is drawn in: its group (one
/// per concurrency, `compare-10`) and its number.
pub fn compare_chart_id(spec: &domain::chart_spec::ChartSpec) -> String {
    format!("{}-{}", spec.group, spec.slot)
}

/// The element a version matrix's chart `slot` is drawn in.
pub fn matrix_chart_id(slot: usize) -> String {
    format!("matrix-{slot}")
}

/// Draws (or updates) a chart in the element with id `dom_id`. Does nothing
/// on the server.
pub fn render(dom_id: &str, option_json: &str, group: &str) {
    #[cfg(feature = "hydrate")]
    {
        glue::render_chart(dom_id, option_json, group);
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = (dom_id, option_json, group);
    }
}

/// Appends new points to the chart in the element `dom_id`, keeping its
/// zoom and legend choices. Does nothing on the server.
pub fn append(dom_id: &str, series: &[crate::api::SeriesPoints]) {
    #[cfg(feature = "hydrate")]
    {
        if let Ok(json) = serde_json::to_string(series) {
            glue::append_points(dom_id, &json);
        }
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = (dom_id, series);
    }
}

/// After the user zooms the chart `dom_id`, fetches scenario `scenario_id`'s
/// samples in the visible window at full resolution and splices them into
/// the scenario's charts. Does nothing on the server.
pub fn follow_zoom(dom_id: &str, scenario_id: i64) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::prelude::Closure;
        let callback = Closure::<dyn Fn(f64, f64)>::new(move |from: f64, to: f64| {
            leptos::task::spawn_local(async move {
                let window = Some(((from * 1000.0) as i64, (to * 1000.0).ceil() as i64));
                if let Ok(found) = crate::api::get_charts(scenario_id, window).await {
                    for spec in found.charts {
                        glue::splice_window(
                            &scenario_chart_id(scenario_id, spec.slot),
                            &spec.option_json,
                            from,
                            to,
                        );
                    }
                }
            });
        });
        glue::on_zoom(dom_id, &callback);
        // The chart lives as long as the page: so does its listener.
        callback.forget();
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = (dom_id, scenario_id);
    }
}
