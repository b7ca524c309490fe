//! Drawing ECharts charts in the browser from options the server built with
//! charming. ECharts itself is served by the lab (`/assets/echarts.min.js`).

#[cfg(feature = "hydrate")]
mod glue {
    use wasm_bindgen::prelude::*;

    #[wasm_bindgen(inline_js = r#"
export function render_chart(id, json, group) {
  const el = document.getElementById(id);
  if (!el || !window.echarts) return false;
  const chart = window.echarts.getInstanceByDom(el) || window.echarts.init(el);
  // Merge, so a live update keeps the user's zoom and hidden series.
  chart.setOption(JSON.parse(json));
  chart.group = group;
  window.echarts.connect(group);
  if (!el.dataset.resizeHooked) {
    el.dataset.resizeHooked = "1";
    window.addEventListener("resize", () => chart.resize());
  }
  el.dataset.rendered = "1";
  return true;
}
"#)]
    extern "C" {
        pub fn render_chart(id: &str, json: &str, group: &str) -> bool;
    }
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
