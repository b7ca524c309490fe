//! `mite-perf trend` on a lab's history: runs of several mite releases
//! (stored out of order, three repeats each) on one machine, with the
//! runner's requests per CPU-second 10 % lower from one release on, and
//! runs of another machine class that must not join the series.

use std::process::Command;

use domain::provenance::{BuildProvenance, Provenance, ScenarioSource};
use mite_perf::figures::scenario_figures;
use mite_perf::model::{ProcessKind, RunParams, RunStatus, Sample, ScenarioStatus};
use mite_perf::store::Store;
use mite_perf::trend::synthetic::Noise;

const RELEASES: [&str; 10] = [
    "2.2.0", "2.3.0", "2.4.0", "2.5.0", "2.6.0", "2.7.0", "2.8.0", "2.9.0", "2.10.0", "2.11.0",
];

/// Finished scenario figures whose runner served `per_cpu_second` requests
/// per CPU-second (a constant 500 requests/s against a runner at a
/// constant CPU share).
fn figures_at(per_cpu_second: f64) -> domain::figures::ScenarioFigures {
    let cpu = 500.0 * 100.0 / per_cpu_second;
    let samples: Vec<Sample> = (1..=30i64)
        .flat_map(|tick| {
            let at_ms = 1_700_000_000_000 + tick * 1000;
            [
                Sample {
                    process: ProcessKind::Target,
                    pid: 2,
                    at_ms,
                    elapsed_ms: tick * 1000,
                    cpu: 8.0,
                    mem: 3 << 20,
                    requests: Some(tick * 500),
                    requests_in_interval: Some(500),
                    detail: None,
                },
                Sample {
                    process: ProcessKind::Runner,
                    pid: 1,
                    at_ms,
                    elapsed_ms: tick * 1000,
                    cpu,
                    mem: 50 << 20,
                    requests: None,
                    requests_in_interval: None,
                    detail: None,
                },
            ]
        })
        .collect();
    scenario_figures(&samples, 1000)
}

/// A finished run of `version` on a machine with `cpu_model`, whose
/// scenario of 10 journeys measured `per_cpu_second`.
async fn finished_run(store: &Store, version: &str, cpu_model: &str, per_cpu_second: f64) {
    let params = RunParams {
        concurrencies: vec![10],
        label: "nightly".into(),
        ..RunParams::default()
    };
    let run_id = store
        .create_run(&params, RunStatus::Running)
        .await
        .expect("run");
    store
        .start_run(run_id, &Default::default(), "/nowhere", 1)
        .await
        .expect("start");
    let provenance = Provenance {
        cpu_model: cpu_model.into(),
        cores: 2,
        memory_bytes: Some(8 << 30),
        kernel: "6.1.0-18-amd64".into(),
        builds: vec![BuildProvenance {
            asked: version.into(),
            mite_version: version.into(),
            python_version: "3.11.7".into(),
            ..BuildProvenance::default()
        }],
        target: "built-in".into(),
        scenario: ScenarioSource {
            name: "built-in".into(),
            dir: None,
            sha256: "5ce0a710".into(),
        },
        duration_ms: 30_000,
        ..Provenance::default()
    };
    store
        .save_provenance(run_id, &provenance)
        .await
        .expect("provenance");
    let scenario = store
        .create_scenario(run_id, 0, domain::builds::Slot::once(10), &params)
        .await
        .expect("scenario");
    store
        .finish_scenario(
            scenario,
            ScenarioStatus::Done,
            None,
            None,
            &figures_at(per_cpu_second),
        )
        .await
        .expect("finish");
    store
        .finish_run(run_id, RunStatus::Done, None)
        .await
        .expect("finish run");
}

fn trend(db_url: &str, args: &[&str]) -> std::process::Output {
    Command::new(crate::common::BIN)
        .arg("trend")
        .args(args)
        .env("MITE_PERF_DATABASE_URL", db_url)
        .output()
        .expect("mite-perf trend")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_releases_slowdown_is_found_in_its_series_and_other_machines_stay_apart() {
    let dir = crate::common::temp_dir("trend");
    let db_url = format!("sqlite://{}/lab.db", dir.display());
    let store = Store::connect(&db_url).await.expect("store");
    let mut noise = Noise::new(42);
    // Newest first, then the rest: the series is put in release order.
    let mut order: Vec<usize> = (0..RELEASES.len()).rev().collect();
    order.rotate_left(3);
    for repeat in 0..3 {
        for &i in &order {
            let level = if i >= 6 { 900.0 } else { 1000.0 };
            let value = noise.around(level, 0.01);
            finished_run(&store, RELEASES[i], "AMD EPYC 7B13", value).await;
            if repeat == 0 && i == 0 {
                // Another machine: its own series, however slow.
                finished_run(&store, RELEASES[i], "Intel Xeon", 400.0).await;
            }
        }
    }

    let out = trend(
        &db_url,
        &[
            "--figure",
            "requests_per_runner_cpu_second",
            "--format",
            "json",
        ],
    );
    assert!(out.status.success(), "{}", crate::common::text(&out));
    let series: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let series = series.as_array().expect("a list");
    assert_eq!(series.len(), 2, "one series per machine class: {series:#?}");
    let epyc = series
        .iter()
        .find(|s| {
            s["key"]["machine"]
                .as_str()
                .is_some_and(|m| m.contains("EPYC"))
        })
        .expect("the EPYC series");
    assert_eq!(
        epyc["key"]["machine"],
        "AMD EPYC 7B13 · 2 cores · 8 GiB · Linux 6.1 · Python 3.11"
    );
    let builds: Vec<&str> = epyc["points"]
        .as_array()
        .expect("points")
        .iter()
        .map(|p| p["build"].as_str().expect("build"))
        .collect();
    assert_eq!(builds, RELEASES, "release order");
    for point in epyc["points"].as_array().expect("points") {
        assert_eq!(point["values"].as_array().map(Vec::len), Some(3), "{point}");
        assert!(point["interval"].is_array(), "{point}");
    }
    let steps = epyc["analysis"]["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 1, "{steps:#?}");
    let step = &steps[0];
    assert_eq!(step["index"], 6, "the step is at 2.8.0: {step}");
    assert_eq!(step["flagged"], true);
    assert_eq!(step["worse"], true);
    assert_eq!(step["confidence"], "Confirmed");
    let change = step["change"].as_f64().expect("change");
    assert!((change + 0.10).abs() < 0.02, "{change}");

    // For people: the step named by its release, the points with --points.
    let out = trend(
        &db_url,
        &[
            "--figure",
            "requests_per_runner_cpu_second",
            "--machine",
            "epyc",
            "--points",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", crate::common::text(&out));
    assert!(text.contains("change at 2.8.0: -"), "{text}");
    assert!(text.contains("(worse, confirmed"), "{text}");
    assert!(!text.contains("Intel"), "{text}");
    assert!(text.contains("(release, step)"), "{text}");

    // Bad input: a clear error, exit 2.
    let out = trend(&db_url, &["--figure", "speed"]);
    assert_eq!(out.status.code(), Some(2), "{}", crate::common::text(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("`speed` is no figure") && said.contains("mib_per_journey"),
        "{said}"
    );
    let out = trend(&db_url, &["--floor", "200%"]);
    assert_eq!(out.status.code(), Some(2), "{}", crate::common::text(&out));
    let _ = std::fs::remove_dir_all(dir);
}
