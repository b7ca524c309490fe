//! What the lab tells whoever hosts it, in the OpenMetrics text format
//! (`/metrics`): its queue and agents as the database says now, and what
//! this process counted since it started (HTTP requests and their latency
//! by route, database errors, how late the sampler's ticks came).
//!
//! The counters live in one process-wide [`LabMetrics`]; the gauges of the
//! database's state are read at each scrape ([`LabState`]).

use std::sync::OnceLock;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The content type of the OpenMetrics text format.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// An HTTP request, as counted: its method, the route it matched (its
/// pattern, not its path: `/runs/{id}`) and its status class (`2xx`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    pub route: String,
    pub status: String,
}

/// Runs counted by status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: String,
}

/// Request latencies' buckets, in seconds.
const REQUEST_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];
/// How late a sampler tick may come, in seconds.
const LAG_BUCKETS: [f64; 9] = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0];

fn request_histogram() -> Histogram {
    Histogram::new(REQUEST_BUCKETS)
}

/// What this process counted since it started.
#[derive(Debug)]
pub struct LabMetrics {
    requests: Family<RequestLabels, Counter>,
    request_seconds: Family<RequestLabels, Histogram, fn() -> Histogram>,
    database_errors: Counter,
    tick_lag: Histogram,
}

/// The database's state at a scrape.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabState {
    /// Runs by status (`queued`, `running`, `done`, `failed`, …).
    pub runs: Vec<(String, i64)>,
    /// Agents that beat within a lease.
    pub agents_alive: i64,
}

/// The process's metrics.
pub fn metrics() -> &'static LabMetrics {
    static METRICS: OnceLock<LabMetrics> = OnceLock::new();
    METRICS.get_or_init(|| LabMetrics {
        requests: Family::default(),
        request_seconds: Family::new_with_constructor(request_histogram),
        database_errors: Counter::default(),
        tick_lag: Histogram::new(LAG_BUCKETS),
    })
}

impl LabMetrics {
    /// An HTTP request answered with `status` after `seconds`.
    pub fn request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let labels = RequestLabels {
            method: method.to_string(),
            route: route.to_string(),
            status: format!("{}xx", status / 100),
        };
        self.requests.get_or_create(&labels).inc();
        self.request_seconds.get_or_create(&labels).observe(seconds);
    }

    /// The database failed a query.
    pub fn database_error(&self) {
        self.database_errors.inc();
    }

    /// A sampler tick came `seconds` after it was due.
    pub fn tick_lag(&self, seconds: f64) {
        self.tick_lag.observe(seconds);
    }

    /// The OpenMetrics text of these counters and of `state`.
    pub fn encode(&self, state: &LabState) -> Result<String, std::fmt::Error> {
        let mut registry = Registry::with_prefix("mite_perf");
        let runs = Family::<StatusLabels, Gauge>::default();
        for (status, count) in &state.runs {
            runs.get_or_create(&StatusLabels {
                status: status.clone(),
            })
            .set(*count);
        }
        registry.register("runs", "Runs in the database, by status", runs);
        let agents = Gauge::<i64>::default();
        agents.set(state.agents_alive);
        registry.register(
            "agents_alive",
            "Lab agents that beat within a lease",
            agents,
        );
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route and status class",
            self.requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "How long HTTP requests took to answer (to their first byte), by method, route and \
             status class",
            self.request_seconds.clone(),
        );
        registry.register(
            "database_errors",
            "Database queries that failed",
            self.database_errors.clone(),
        );
        registry.register(
            "sampler_tick_lag_seconds",
            "How late the sampler's ticks came",
            self.tick_lag.clone(),
        );
        let mut text = String::new();
        encode(&mut text, &registry)?;
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_is_openmetrics_with_every_family() {
        let m = metrics();
        m.request("GET", "/runs/{id}", 200, 0.012);
        m.tick_lag(0.003);
        let text = m
            .encode(&LabState {
                runs: vec![("queued".into(), 2), ("done".into(), 5)],
                agents_alive: 1,
            })
            .expect("text");
        for line in [
            "# TYPE mite_perf_runs gauge",
            "mite_perf_runs{status=\"queued\"} 2",
            "mite_perf_runs{status=\"done\"} 5",
            "mite_perf_agents_alive 1",
            "# TYPE mite_perf_http_requests counter",
            "# TYPE mite_perf_http_request_duration_seconds histogram",
            "# TYPE mite_perf_database_errors counter",
            "# TYPE mite_perf_sampler_tick_lag_seconds histogram",
        ] {
            assert!(text.contains(line), "{line} missing:\n{text}");
        }
        assert!(
            text.contains(
                "mite_perf_http_requests_total{method=\"GET\",route=\"/runs/{id}\",status=\"2xx\"}"
            ),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    /// deploy/grafana-dashboard.json and deploy/prometheus.yml read the
    /// metrics by these names: every name the dashboard uses is served.
    #[test]
    fn the_dashboard_reads_metrics_the_lab_serves() {
        let dashboard = include_str!("../../deploy/grafana-dashboard.json");
        metrics().request("GET", "/", 500, 0.001);
        let text = metrics()
            .encode(&LabState {
                runs: vec![("done".into(), 1)],
                agents_alive: 1,
            })
            .expect("text");
        let mut names: Vec<&str> = dashboard
            .match_indices("mite_perf_")
            .map(|(at, _)| {
                let rest = &dashboard[at..];
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                &rest[..end]
            })
            .collect();
        names.sort_unstable();
        names.dedup();
        assert!(names.len() >= 6, "{names:?}");
        for name in names {
            let family = name.trim_end_matches("_bucket").trim_end_matches("_total");
            assert!(
                text.contains(&format!("# TYPE {family} ")),
                "the dashboard reads {name}, which the lab does not serve:\n{text}"
            );
        }
    }
}
