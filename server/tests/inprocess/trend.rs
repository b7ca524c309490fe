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

/// A run measuring commit X of mite as the lab saw it (a checkout), and
/// runs of uploaded wheels whose uploaders said they are commit X: one
/// recorded with its claimant, one from before claims were recorded (its
/// uploader read from the upload).
async fn claimed_history(store: &Store) {
    use domain::provenance::BuildProvenance;
    const X: &str = "0123456789abcdef0123456789abcdef01234567";
    let seen = |build: BuildProvenance| {
        let mut provenance = crate::common::seed::provenance("2.12.0.dev0", "seeded CPU");
        provenance.builds = vec![BuildProvenance {
            mite_version: "2.12.0.dev0".into(),
            python_version: "3.11.7".into(),
            git_commit: Some(X.into()),
            git_commit_time: Some(1_700_000_000),
            ..build
        }];
        provenance
    };
    for _ in 0..2 {
        let checkout = seen(BuildProvenance {
            asked: "../mite".into(),
            git_dirty: Some(false),
            ..BuildProvenance::default()
        });
        crate::common::seed::measured_run(store, "main", "", &checkout).await;
    }
    let ci_sha = "c".repeat(64);
    let claimed = seen(BuildProvenance {
        asked: format!("upload:{ci_sha}"),
        wheel_sha256: Some(ci_sha.clone()),
        claimed_by: Some("token:ci".into()),
        ..BuildProvenance::default()
    });
    crate::common::seed::measured_run(store, "pr-7", "token:ci", &claimed).await;
    let old_sha = "d".repeat(64);
    let commit = domain::builds::WheelCommit::parse(X, "1700000000", "").expect("a commit");
    store
        .put_wheel(
            &old_sha,
            "mite-2.12.0.dev0-py3-none-any.whl",
            b"PK",
            "token:old",
            Some(&commit),
        )
        .await
        .expect("an upload");
    let before_claims = seen(BuildProvenance {
        asked: format!("upload:{old_sha}"),
        wheel_sha256: Some(old_sha.clone()),
        ..BuildProvenance::default()
    });
    crate::common::seed::measured_run(store, "pr-8", "token:old", &before_claims).await;
}

/// FAULTS.md 55: an uploaded wheel's commit, time and parents are its
/// uploader's word. Its repeats are not pooled with what the lab measured
/// of that commit (a slow wheel claiming to be commit X once moved X's
/// point); each claimant's point says whose word it is, in the text and the
/// JSON; and the lab's operator can leave every point of one claimant out
/// of every fit (and take it back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_an_uploader_claims_is_its_own_point_shown_claimed_and_can_be_left_out() {
    let dir = crate::common::temp_dir("trend-claims");
    let db_url = format!("sqlite://{}/lab.db", dir.display());
    let store = Store::connect(&db_url).await.expect("store");
    claimed_history(&store).await;
    let points = |args: &[&str]| {
        let mut all = vec!["--figure", "requests_per_second", "--format", "json"];
        all.extend_from_slice(args);
        let out = trend(&db_url, &all);
        assert!(out.status.success(), "{}", crate::common::text(&out));
        let series: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert_eq!(series.as_array().map(Vec::len), Some(1), "{series:#}");
        series[0].clone()
    };
    let series = points(&[]);
    let claims: Vec<(serde_json::Value, usize)> = series["points"]
        .as_array()
        .expect("points")
        .iter()
        .map(|p| {
            (
                p["claimed_by"].clone(),
                p["values"].as_array().map_or(0, Vec::len),
            )
        })
        .collect();
    assert_eq!(claims.len(), 3, "{series:#}");
    for (claimant, repeats) in [
        (serde_json::Value::Null, 2),
        ("token:ci".into(), 1),
        ("token:old".into(), 1),
    ] {
        assert!(
            claims.contains(&(claimant.clone(), repeats)),
            "{claimant} with {repeats} repeats: {claims:?}"
        );
    }
    let text = trend(&db_url, &["--figure", "requests_per_second", "--points"]);
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(text.contains("commit claimed by token:ci"), "{text}");
    assert!(text.contains("commit claimed by token:old"), "{text}");

    // Every point of one claimant left out of the fit (kept, marked).
    let out = trend(&db_url, &["--exclude-claimant", "token:ci"]);
    assert!(out.status.success(), "{}", crate::common::text(&out));
    let series = points(&[]);
    let index = |claimant: &str| {
        series["points"]
            .as_array()
            .expect("points")
            .iter()
            .position(|p| p["claimed_by"] == claimant)
            .expect("the claimant's point")
    };
    let excluded: Vec<usize> = series["analysis"]["excluded"]
        .as_array()
        .expect("excluded")
        .iter()
        .filter_map(|i| i.as_u64().map(|i| i as usize))
        .collect();
    assert_eq!(excluded, [index("token:ci")], "{series:#}");
    let build = series["points"][index("token:ci")]["build"]
        .as_str()
        .expect("build")
        .to_string();
    assert!(
        series["excluded_by"][&build]
            .as_str()
            .is_some_and(|by| by.contains("every point token:ci claimed")),
        "{series:#}"
    );
    let text = String::from_utf8_lossy(
        &trend(&db_url, &["--figure", "requests_per_second", "--points"]).stdout,
    )
    .into_owned();
    assert!(text.contains("excluded"), "{text}");
    let log = store.activity(None, 10).await.expect("activity");
    assert!(
        log.iter()
            .any(|a| a.action == "exclude claimant" && a.subject == "every point token:ci claimed"),
        "{log:?}"
    );
    // Taken back.
    let out = trend(&db_url, &["--include-claimant", "token:ci"]);
    assert!(out.status.success(), "{}", crate::common::text(&out));
    let series = points(&[]);
    assert!(
        series["analysis"]["excluded"]
            .as_array()
            .is_some_and(Vec::is_empty),
        "{series:#}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
