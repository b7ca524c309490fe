//! A run's folder (`output_root/YYYY-MM-DD/HH-MM`), the scenario module it
//! imports, and the facts about the machine it records.

use std::path::{Path, PathBuf};

use domain::provenance::{BuildProvenance, Provenance, RunJson, ScenarioSource};

use crate::mite_env::source::{sha256_file, sha256_text};
use crate::mite_env::MiteEnv;
use crate::model::{RunParams, ScenarioSpec, TargetSpec};
use crate::store::RunEnvironment;

/// The scenario module shipped with the lab.
pub const SCENARIO_MODULE: &str = include_str!("../../python/mite_perf_scenario.py");
const SCENARIO_MODULE_NAME: &str = "mite_perf_scenario";

#[derive(Debug, thiserror::Error)]
#[error("cannot prepare {path}: {source}")]
pub struct OutputError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

fn at(path: &Path) -> impl FnOnce(std::io::Error) -> OutputError + '_ {
    move |source| OutputError {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates `root/YYYY-MM-DD/HH-MM`, adding `-2`, `-3`, ... when a run of the same
/// minute already has the folder.
pub fn create_output_dir(root: &Path) -> Result<PathBuf, OutputError> {
    let now = time::OffsetDateTime::now_local().unwrap_or_else(|_| time::OffsetDateTime::now_utc());
    let day = format!(
        "{:04}-{:02}-{:02}",
        now.year(),
        u8::from(now.month()),
        now.day()
    );
    let minute = format!("{:02}-{:02}", now.hour(), now.minute());
    // Absolute, because mite's processes run in the scenario's folder.
    let root = std::path::absolute(root).map_err(at(root))?;
    let parent = root.join(day);
    std::fs::create_dir_all(&parent).map_err(at(&parent))?;
    let mut n = 1;
    loop {
        let name = if n == 1 {
            minute.clone()
        } else {
            format!("{minute}-{n}")
        };
        let dir = parent.join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
            Err(source) => return Err(OutputError { path: dir, source }),
        }
    }
}

/// The folder the controller and runners import the scenario from: the
/// shipped module, copied into the run's folder, or the user's own folder.
pub fn scenario_module_dir(params: &RunParams, output_dir: &Path) -> Result<PathBuf, OutputError> {
    match &params.scenario {
        ScenarioSpec::Builtin => {
            let dir = output_dir.join("scenario-module");
            let file = dir.join(format!("{SCENARIO_MODULE_NAME}.py"));
            std::fs::create_dir_all(&dir).map_err(at(&dir))?;
            std::fs::write(&file, SCENARIO_MODULE).map_err(at(&file))?;
            Ok(dir)
        }
        ScenarioSpec::Custom { dir, .. } => dir.canonicalize().map_err(at(dir)),
        // Found in the agent's folders before the run starts (`prepare`).
        ScenarioSpec::Library { spec } => Err(OutputError {
            path: PathBuf::from(spec),
            source: std::io::Error::other("a library scenario not yet found in a folder"),
        }),
    }
}

/// The machine and software this run measures (its first build's mite).
pub fn environment(mite: &MiteEnv) -> RunEnvironment {
    RunEnvironment {
        mite_version: mite.mite_version.clone(),
        python_version: mite.python_version.clone(),
        host: sysinfo::System::host_name().unwrap_or_default(),
        cores: cores(),
    }
}

fn cores() -> i64 {
    std::thread::available_parallelism()
        .map(|n| n.get() as i64)
        .unwrap_or(1)
}

/// Everything the run measures: its builds as installed, this machine, the
/// target and the scenario's source.
pub fn provenance(
    params: &RunParams,
    builds: Vec<BuildProvenance>,
    module_dir: &Path,
    machine_epoch: u32,
    sandbox: String,
) -> Provenance {
    use procfs::Current as _;
    let cpu_model = procfs::CpuInfo::current()
        .ok()
        .and_then(|info| info.model_name(0).map(str::to_string))
        .unwrap_or_default();
    Provenance {
        lab_version: env!("CARGO_PKG_VERSION").to_string(),
        host: sysinfo::System::host_name().unwrap_or_default(),
        cores: cores(),
        cpu_model,
        memory_bytes: procfs::Meminfo::current().ok().map(|m| m.mem_total),
        machine_epoch,
        kernel: sysinfo::System::kernel_version().unwrap_or_default(),
        builds,
        target: match &params.target {
            TargetSpec::Builtin => "built-in".to_string(),
            TargetSpec::Command(cmd) => cmd.clone(),
        },
        scenario: scenario_source(params, module_dir),
        spawn_rate: params.spawn_rate,
        interval_ms: params.interval_ms,
        duration_ms: params.duration_ms,
        repeats: params.repeats,
        sandbox,
        requests: params.requests,
        valgrind: params.valgrind,
    }
}

/// The scenario's name, folder and the SHA-256 of its module's file (empty
/// when the module is not a plain file in its folder).
fn scenario_source(params: &RunParams, module_dir: &Path) -> ScenarioSource {
    match &params.scenario {
        ScenarioSpec::Builtin => ScenarioSource {
            name: "built-in".to_string(),
            dir: None,
            sha256: sha256_text(SCENARIO_MODULE),
        },
        ScenarioSpec::Custom { spec, .. } | ScenarioSpec::Library { spec } => {
            let module = spec.split_once(':').map_or(spec.as_str(), |(m, _)| m);
            let relative = module.replace('.', "/");
            let sha256 = [
                module_dir.join(format!("{relative}.py")),
                module_dir.join(relative).join("__init__.py"),
            ]
            .iter()
            .find_map(|file| sha256_file(file).ok())
            .unwrap_or_default();
            ScenarioSource {
                name: spec.clone(),
                dir: Some(module_dir.display().to_string()),
                sha256,
            }
        }
    }
}

/// Writes `run.json` (the run's provenance) into its folder.
pub fn write_run_json(dir: &Path, run: &RunJson) -> Result<(), OutputError> {
    let file = dir.join("run.json");
    let text = serde_json::to_string_pretty(run)
        .map_err(|e| std::io::Error::other(e.to_string()))
        .map_err(at(&file))?;
    std::fs::write(&file, text + "\n").map_err(at(&file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_of_the_same_minute_get_their_own_folders() {
        let root = std::env::temp_dir().join(format!("mite-perf-out-{}", std::process::id()));
        let first = create_output_dir(&root).expect("first");
        let second = create_output_dir(&root).expect("second");
        assert_ne!(first, second);
        assert!(first.is_absolute() && first.is_dir() && second.is_dir());
        let builtin = scenario_module_dir(&RunParams::default(), &first).expect("module");
        assert!(builtin.join("mite_perf_scenario.py").is_file());
        let provenance = provenance(
            &RunParams::default(),
            vec![],
            &builtin,
            3,
            "bubblewrap 0.8.0".into(),
        );
        assert_eq!(provenance.scenario.sha256, sha256_text(SCENARIO_MODULE));
        assert!(provenance.cores >= 1 && !provenance.kernel.is_empty());
        assert_eq!(provenance.target, "built-in");
        // The machine's class needs its memory, and the admin's epoch.
        assert!(provenance
            .memory_bytes
            .is_some_and(|m| m > 64 * 1024 * 1024));
        assert_eq!(provenance.machine_epoch, 3);
        let _ = std::fs::remove_dir_all(root);
    }
}
