//! A lab as a finished run leaves it, for the in-process router tests.

use std::path::{Path, PathBuf};

use domain::provenance::{BuildProvenance, Provenance, ScenarioSource};
use mite_perf::figures::scenario_figures;
use mite_perf::mite_env::MiteEnv;
use mite_perf::model::{ProcessKind, RunParams, RunStatus, Sample, ScenarioStatus};
use mite_perf::run::{LabSetup, RunLimits, RunPolicy};
use mite_perf::store::{NewProcess, SampleBatch, Store};
use mite_perf::trend::synthetic::Noise;

/// What a lab host needs, with no mite installed (nothing here runs mite).
pub fn lab_setup(dir: &Path, output: &Path) -> LabSetup {
    LabSetup {
        output_root: output.to_path_buf(),
        builds: mite_perf::mite_env::builds::BuildCache::new(
            MiteEnv {
                venv: dir.join("no-venv"),
                mite_version: "2.11.0".into(),
                python_version: "3.11.7".into(),
            },
            None,
        ),
        self_exe: PathBuf::from(super::BIN),
        limits: RunLimits::default(),
        policy: RunPolicy::default(),
        host: mite_perf::agent_identity::AgentIdentity::this(),
        isolation: mite_perf::sandbox::Isolation::detect(false),
    }
}

/// A runner's profile of three stack samples in scenario `scenario_id`
/// (for the profile downloads); its id.
pub async fn runner_profile(store: &Store, scenario_id: i64) -> i64 {
    store
        .save_profile(
            scenario_id,
            &mite_perf::store::NewProfile {
                process: ProcessKind::Runner,
                pid: 1,
                rate: 100,
                samples: 3,
                mode: "attached".into(),
                problem: None,
                folded: "main;serve 3\n".into(),
            },
        )
        .await
        .expect("profile")
}

/// A running run labelled `label` with one scenario of 10 journeys (no
/// samples yet): its run and scenario ids.
pub async fn running_scenario(store: &Store, label: &str) -> (i64, i64) {
    let params = RunParams {
        label: label.into(),
        concurrencies: vec![10],
        ..RunParams::default()
    };
    let run_id = store
        .create_run(&params, RunStatus::Running)
        .await
        .expect("run");
    let scenario_id = store
        .create_scenario(run_id, 0, domain::builds::Slot::once(10), &params)
        .await
        .expect("scenario");
    (run_id, scenario_id)
}

/// A finished run labelled `seeded`: one scenario of 10 journeys, 30 ticks
/// of samples (target and runner), a runner log. Its run and scenario ids.
pub async fn finished_run(store: &Store, output: &Path) -> (i64, i64) {
    // A finished run, as a real one leaves it.
    let (run_id, scenario_id) = running_scenario(store, "seeded").await;
    let run_dir = output.join("2026-11-26/10-00");
    std::fs::create_dir_all(run_dir.join("scenario10")).expect("run folder");
    store
        .start_run(
            run_id,
            &Default::default(),
            &run_dir.display().to_string(),
            1,
        )
        .await
        .expect("start");
    let log = run_dir.join("scenario10/runner.log");
    std::fs::write(&log, "runner says hello\n").expect("log");
    let p = store
        .record_process(
            scenario_id,
            NewProcess {
                kind: ProcessKind::Runner,
                pid: 1,
                start_ticks: 1,
                command: "mite runner",
                log_path: &log.display().to_string(),
            },
        )
        .await
        .expect("process");
    store.end_process(p, "exit 0").await.expect("end");
    let writer = store.sample_writer().await.expect("writer");
    let mut all = Vec::new();
    for tick in 1..=30i64 {
        let samples = tick_samples(tick, 99.5);
        all.extend(samples.clone());
        writer
            .write(&[SampleBatch {
                scenario_id,
                samples,
                figures: Some(scenario_figures(&all)),
                bus: None,
            }])
            .await
            .expect("samples");
    }
    store
        .finish_scenario(
            scenario_id,
            ScenarioStatus::Done,
            None,
            None,
            &scenario_figures(&all),
        )
        .await
        .expect("finish scenario");
    store
        .finish_run(run_id, RunStatus::Done, None)
        .await
        .expect("finish run");
    (run_id, scenario_id)
}

/// A run labelled `label` launched by `by`, measured with `provenance`:
/// one finished scenario of 10 journeys and its figures (30 ticks), no
/// samples kept, no files. A point of the trends' series. Its id.
pub async fn measured_run(store: &Store, label: &str, by: &str, provenance: &Provenance) -> i64 {
    let params = RunParams {
        label: label.into(),
        launched_by: by.into(),
        concurrencies: vec![10],
        ..RunParams::default()
    };
    let run_id = store
        .create_run(&params, RunStatus::Running)
        .await
        .expect("run");
    let scenario_id = store
        .create_scenario(run_id, 0, domain::builds::Slot::once(10), &params)
        .await
        .expect("scenario");
    let all: Vec<Sample> = (1..=30).flat_map(|tick| tick_samples(tick, 99.5)).collect();
    store
        .save_provenance(run_id, provenance)
        .await
        .expect("provenance");
    store
        .finish_scenario(
            scenario_id,
            ScenarioStatus::Done,
            None,
            None,
            &scenario_figures(&all),
        )
        .await
        .expect("finish scenario");
    store
        .finish_run(run_id, RunStatus::Done, None)
        .await
        .expect("finish run");
    run_id
}

/// A router's answer, read whole.
pub struct Answer {
    pub status: axum::http::StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// The `Location` header, or "".
    pub fn location(&self) -> &str {
        self.headers
            .get(axum::http::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// Sends a request through the router in process and reads the answer.
pub async fn send(app: &axum::Router, request: axum::http::Request<axum::body::Body>) -> Answer {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let response = app.clone().oneshot(request).await.expect("an answer");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("the body")
        .to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// The site cargo-leptos built (scripts/test builds it before the tests).
pub fn site_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/site")
}

/// An agent as it registers: name `name`, host id `NAME (boot 1)`, pid `pid`.
pub fn agent(name: &str, pid: i64) -> mite_perf::store::AgentRecord {
    mite_perf::store::AgentRecord {
        name: name.into(),
        host_id: format!("{name} (boot 1)"),
        hostname: name.into(),
        pid,
        cores: 2,
        cpu_model: String::new(),
        builds: "pinned".into(),
        ports: "9898,14301,14302,14303,14304".into(),
        started_at: 0,
        heartbeat_at: 0,
        current_run: None,
        stopped_at: None,
        lease_ms: Some(30_000),
    }
}

/// A collector that ran in `scenario_dir` for scenario `scenario_id`
/// (recorded, ended, its log there), and its `collector/` folder, made
/// empty: the caller writes the files it kept. The folder.
pub async fn collector(store: &Store, scenario_dir: &Path, scenario_id: i64) -> PathBuf {
    let folder = scenario_dir.join("collector");
    std::fs::create_dir_all(&folder).expect("collector folder");
    let log = scenario_dir.join("collector.log");
    std::fs::write(&log, "").expect("collector log");
    let p = store
        .record_process(
            scenario_id,
            NewProcess {
                kind: ProcessKind::Collector,
                pid: 4,
                start_ticks: 4,
                command: "mite collector",
                log_path: &log.display().to_string(),
            },
        )
        .await
        .expect("collector");
    store.end_process(p, "exit 0").await.expect("end");
    folder
}

// A lab's history of mite releases, for the trends (`mite-perf trend`,
// /trends): runs of one scenario with provenance and figures.

pub const RELEASES: [&str; 10] = [
    "2.2.0", "2.3.0", "2.4.0", "2.5.0", "2.6.0", "2.7.0", "2.8.0", "2.9.0", "2.10.0", "2.11.0",
];

/// Finished scenario figures whose runner served `per_cpu_second` requests
/// per CPU-second (a constant 500 requests/s against a runner at a
/// constant CPU share).
pub fn figures_at(per_cpu_second: f64) -> domain::figures::ScenarioFigures {
    let cpu = 500.0 * 100.0 / per_cpu_second;
    let samples: Vec<Sample> = (1..=30i64)
        .flat_map(|tick| tick_samples(tick, cpu))
        .collect();
    scenario_figures(&samples)
}

/// Tick `tick` (1 s apart) of a scenario: the target serving 500 requests
/// a second at 8.25 % CPU, the runner at `runner_cpu` % and 50 MiB.
fn tick_samples(tick: i64, runner_cpu: f64) -> Vec<Sample> {
    let at_ms = 1_700_000_000_000 + tick * 1000;
    vec![
        Sample {
            process: ProcessKind::Target,
            pid: 2,
            at_ms,
            elapsed_ms: tick * 1000,
            cpu: 8.25,
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
            cpu: runner_cpu,
            mem: 50 << 20,
            requests: None,
            requests_in_interval: None,
            detail: None,
        },
    ]
}

/// A finished run of `version` on a machine with `cpu_model`, whose
/// scenario of 10 journeys measured `per_cpu_second`.
pub async fn release_run(store: &Store, version: &str, cpu_model: &str, per_cpu_second: f64) {
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
    let provenance = provenance(version, cpu_model);
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

/// A run's provenance: mite `version` on a 2-core, 8 GiB machine with
/// `cpu_model`, the built-in scenario of 30 s.
pub fn provenance(version: &str, cpu_model: &str) -> Provenance {
    Provenance {
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
    }
}

/// Ten releases (stored newest first, then the rest, three repeats each)
/// on an EPYC machine, the runner's requests per CPU-second 10 % lower from
/// 2.8.0 on (1 % noise, seeded), and one run of 2.2.0 on another machine.
pub async fn release_history(store: &Store) {
    let mut noise = Noise::new(42);
    let mut order: Vec<usize> = (0..RELEASES.len()).rev().collect();
    order.rotate_left(3);
    for repeat in 0..3 {
        for &i in &order {
            let level = if i >= 6 { 900.0 } else { 1000.0 };
            let value = noise.around(level, 0.01);
            release_run(store, RELEASES[i], "AMD EPYC 7B13", value).await;
            if repeat == 0 && i == 0 {
                // Another machine: its own series, however slow.
                release_run(store, RELEASES[i], "Intel Xeon", 400.0).await;
            }
        }
    }
}

/// A wheel of a package named `name` at `version`, as `uv build` would
/// make it (METADATA, WHEEL, RECORD; a `mite` command): `uv pip install`
/// takes it, and it runs nothing but `print`.
pub fn fake_wheel(name: &str, version: &str) -> Vec<u8> {
    use std::io::Write;
    let dist_info = format!("{name}-{version}.dist-info");
    let files = [
        (
            "mite/__init__.py".to_string(),
            "def main():\n    print('fake mite')\n".to_string(),
        ),
        (
            format!("{dist_info}/METADATA"),
            format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"),
        ),
        (
            format!("{dist_info}/WHEEL"),
            "Wheel-Version: 1.0\nGenerator: mite-perf-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
                .to_string(),
        ),
        (
            format!("{dist_info}/entry_points.txt"),
            "[console_scripts]\nmite = mite:main\n".to_string(),
        ),
        (format!("{dist_info}/RECORD"), String::new()),
    ];
    let mut record = String::new();
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (path, text) in &files {
        let text = if path.ends_with("RECORD") {
            record.push_str(&format!("{path},,\n"));
            record.clone()
        } else {
            record.push_str(&format!("{path},,\n"));
            text.clone()
        };
        writer
            .start_file(path.as_str(), options)
            .expect("zip entry");
        writer.write_all(text.as_bytes()).expect("zip write");
    }
    writer.finish().expect("zip").into_inner()
}
