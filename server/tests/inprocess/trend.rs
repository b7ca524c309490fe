//! `mite-perf trend` on a lab's history: runs of several mite releases
//! (stored out of order, three repeats each) on one machine, with the
//! runner's requests per CPU-second 10 % lower from one release on, and
//! runs of another machine class that must not join the series.

use std::process::Command;

use crate::common::seed::RELEASES;
use mite_perf::store::Store;

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
    crate::common::seed::release_history(&store).await;

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
