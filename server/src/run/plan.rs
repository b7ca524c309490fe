//! A scenario's start-up as data: which children, in which order, and how
//! each is known to be ready. [`scenario_plan`] builds it (pure: no process
//! is started here); `launch` starts any plan.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::model::{ProcessKind, RunParams, ScenarioSpec, TargetSpec};
use crate::ports::LabPorts;
use crate::sandbox::{Jail, Sandbox, ScenarioNet};
use crate::supervisor::{ChildSpec, Measured};

/// The module shipped with the lab, importable as `mite_perf_scenario`.
pub const BUILTIN_SCENARIO: &str = "mite_perf_scenario:scenario";
/// Messages per collector file before it rolls (about 9 MB).
pub const COLLECTOR_ROLL: u64 = 20_000;
/// A target command finds the port it must listen on in this variable.
pub const TARGET_PORT_ENV: &str = "MITE_PERF_TARGET_PORT";
/// A target command finds the folder it may write in (the scenario's
/// `target` folder) in this variable.
pub const TARGET_DIR_ENV: &str = "MITE_PERF_TARGET_DIR";

/// The folder of a scenario's folder `dir` a target command may write in.
pub fn target_dir(dir: &Path) -> PathBuf {
    dir.join("target")
}

/// The collector's folder of a scenario's folder `dir`.
pub fn collector_dir(dir: &Path) -> PathBuf {
    dir.join("collector")
}

/// The stage after which the lab's bus reader connects: the duplicator's
/// outputs are bound then, and no runner has sent a message yet.
pub const BUS_AFTER: ProcessKind = ProcessKind::Duplicator;

/// How the lab knows a started child is ready for the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Something in the child's network listens on this port (the port
    /// was free there before, so it is the child or what it started).
    Accepts(u16),
    /// The child itself listens on every one of these ports.
    Listens(Vec<u16>),
    /// The child has an established connection to this port.
    ConnectedTo(u16),
    /// Nothing to wait for: the child started.
    Started,
}

/// One child of the plan.
#[derive(Debug, Clone)]
pub struct Stage {
    pub spec: ChildSpec,
    pub ready: Readiness,
    /// What waiting for it is called in messages ("the target to listen on 9898").
    pub waiting_for: String,
}

/// What a scenario's plan depends on.
#[derive(Debug, Clone)]
pub struct PlanInputs<'a> {
    pub params: &'a RunParams,
    pub concurrency: u32,
    /// Fixed work: the requests this scenario makes (`None`: it runs for
    /// the run's duration).
    pub requests: Option<u64>,
    /// The scenario's folder (logs, collector data).
    pub dir: &'a Path,
    /// The folder the scenario module is imported from.
    pub module_dir: &'a Path,
    /// The venv's `mite` command.
    pub mite: PathBuf,
    /// `PATH` with the mite venv's `bin` first.
    pub path_var: String,
    /// The `mite-perf` binary (the built-in target).
    pub self_exe: &'a Path,
    /// The agent's ports.
    pub ports: LabPorts,
}

impl PlanInputs<'_> {
    fn mite_env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("PATH".into(), self.path_var.clone()),
            ("PYTHONPATH".into(), self.module_dir.display().to_string()),
            ("PYTHONUNBUFFERED".into(), "1".into()),
            // The scenario's folder is the user's (a library's): nothing is
            // written into it.
            ("PYTHONDONTWRITEBYTECODE".into(), "1".into()),
            (
                "MITE_CONF_mite_perf_target_url".into(),
                format!("http://127.0.0.1:{}/", self.ports.target),
            ),
            (
                "MITE_CONF_mite_perf_concurrency".into(),
                self.concurrency.to_string(),
            ),
            (
                "MITE_CONF_mite_perf_duration".into(),
                format!("{}", self.params.duration().as_secs_f64()),
            ),
        ];
        if let Some(requests) = self.requests {
            env.push(("MITE_CONF_mite_perf_requests".into(), requests.to_string()));
        }
        if self.params.valgrind {
            // What a count depends on besides the work, pinned: Python's
            // hashes (dictionaries' and sets' order).
            env.push(("PYTHONHASHSEED".into(), "0".into()));
        }
        env
    }

    fn mite_stage(&self, kind: ProcessKind, args: Vec<String>, ready: Readiness) -> Stage {
        let waiting_for = match &ready {
            Readiness::Listens(_) => format!("the {kind} to bind"),
            Readiness::ConnectedTo(_) => format!("the {kind} to connect"),
            Readiness::Accepts(port) => format!("the {kind} to listen on {port}"),
            Readiness::Started => format!("the {kind} to start"),
        };
        Stage {
            spec: ChildSpec {
                kind,
                program: self.mite.clone(),
                args,
                cwd: self.module_dir.to_path_buf(),
                env: self.mite_env(),
                log_path: self.dir.join(format!("{kind}.log")),
                pipe_stdin: false,
                pipe_stdout: false,
                measured: Measured::Itself,
                network: None,
            },
            ready,
            waiting_for,
        }
    }

    fn target_stage(&self) -> Stage {
        let log_path = self.dir.join("target.log");
        let spec = match &self.params.target {
            TargetSpec::Builtin => ChildSpec {
                kind: ProcessKind::Target,
                program: self.self_exe.to_path_buf(),
                args: vec![
                    "target".into(),
                    "--port".into(),
                    self.ports.target.to_string(),
                ],
                // Where every child of the scenario starts (a sandboxed
                // one sees that folder).
                cwd: self.module_dir.to_path_buf(),
                env: vec![],
                log_path,
                pipe_stdin: true,
                pipe_stdout: true,
                measured: Measured::Itself,
                network: None,
            },
            TargetSpec::Command(cmd) => ChildSpec {
                kind: ProcessKind::Target,
                program: "/bin/sh".into(),
                // `exec` makes the server itself the process the lab samples.
                args: vec!["-c".into(), format!("exec {cmd}")],
                cwd: self.module_dir.to_path_buf(),
                env: vec![
                    ("PATH".into(), self.path_var.clone()),
                    ("PYTHONUNBUFFERED".into(), "1".into()),
                    // The port the command must listen on.
                    (TARGET_PORT_ENV.into(), self.ports.target.to_string()),
                    // Where it may write.
                    (
                        TARGET_DIR_ENV.into(),
                        target_dir(self.dir).display().to_string(),
                    ),
                ],
                log_path,
                pipe_stdin: false,
                pipe_stdout: true,
                measured: Measured::Itself,
                network: None,
            },
        };
        Stage {
            spec,
            ready: Readiness::Accepts(self.ports.target),
            waiting_for: format!("the target to listen on {}", self.ports.target),
        }
    }
}

/// The start-up of one scenario (MITE-NOTES.md): the target first (mite's
/// journeys need it from their first request), then the duplicator (bound
/// before anything sends, with an output for the collector and, unless the
/// run leaves the bus unread, one for the lab's bus reader, which connects
/// right after it: see [`BUS_AFTER`]), the collector, the runner, and the
/// controller.
pub fn scenario_plan(inputs: &PlanInputs<'_>) -> Vec<Stage> {
    let scenario = match &inputs.params.scenario {
        ScenarioSpec::Builtin => BUILTIN_SCENARIO.to_string(),
        ScenarioSpec::Custom { spec, .. } | ScenarioSpec::Library { spec } => spec.clone(),
    };
    let LabPorts {
        message,
        controller,
        collector,
        bus,
        ..
    } = inputs.ports;
    let message_socket = format!("--message-socket=tcp://127.0.0.1:{message}");
    let controller_socket = format!("--controller-socket=tcp://127.0.0.1:{controller}");
    let mut duplicator = vec![
        "duplicator".into(),
        message_socket.clone(),
        format!("tcp://127.0.0.1:{collector}"),
    ];
    let mut duplicator_listens = vec![message, collector];
    if inputs.params.read_bus {
        // The lab's own copy of every message (its bus reader connects
        // before any runner starts).
        duplicator.push(format!("tcp://127.0.0.1:{bus}"));
        duplicator_listens.push(bus);
    }
    let mut stages = vec![
        inputs.target_stage(),
        inputs.mite_stage(
            ProcessKind::Duplicator,
            duplicator,
            Readiness::Listens(duplicator_listens),
        ),
        inputs.mite_stage(
            ProcessKind::Collector,
            vec![
                "collector".into(),
                format!("--collector-socket=tcp://127.0.0.1:{collector}"),
                format!("--collector-dir={}", collector_dir(inputs.dir).display()),
                format!("--collector-roll={COLLECTOR_ROLL}"),
            ],
            Readiness::ConnectedTo(collector),
        ),
    ];
    // Every runner is up before the controller hands out work.
    for n in 1..=inputs.params.runners.max(1) {
        let mut stage = inputs.mite_stage(
            ProcessKind::Runner,
            vec![
                "runner".into(),
                message_socket.clone(),
                controller_socket.clone(),
            ],
            Readiness::ConnectedTo(message),
        );
        if n > 1 {
            stage.spec.log_path = inputs.dir.join(format!("runner-{n}.log"));
            stage.waiting_for = format!("runner {n} to connect");
        }
        stages.push(stage);
    }
    stages.push(inputs.mite_stage(
        ProcessKind::Controller,
        vec![
            "controller".into(),
            format!("--spawn-rate={}", inputs.params.spawn_rate),
            message_socket,
            controller_socket,
            scenario,
        ],
        Readiness::Started,
    ));
    stages
}

/// The folder of a scenario's folder `dir` where Valgrind writes what it
/// counted in each of mite's processes.
pub fn instruments_dir(dir: &Path) -> PathBuf {
    dir.join("instruments")
}

/// The file Valgrind's cachegrind writes for the child whose log is
/// `log` (`runner-2.log` → `instruments/runner-2.cachegrind`).
pub fn cachegrind_file(dir: &Path, log: &Path) -> PathBuf {
    let stem = log
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    instruments_dir(dir).join(format!("{stem}.cachegrind"))
}

/// The plan with each of mite's processes run under Valgrind's cachegrind,
/// which counts the instructions it executes and writes the total to its
/// file ([`cachegrind_file`]) as it exits. The target runs as it is.
pub fn under_valgrind(plan: Vec<Stage>, valgrind: &Path, dir: &Path) -> Vec<Stage> {
    plan.into_iter()
        .map(|mut stage| {
            if stage.spec.kind == ProcessKind::Target {
                return stage;
            }
            let out = cachegrind_file(dir, &stage.spec.log_path);
            let mut args = vec![
                "--tool=cachegrind".to_string(),
                "--cache-sim=no".to_string(),
                "--branch-sim=no".to_string(),
                format!("--cachegrind-out-file={}", out.display()),
                stage.spec.program.display().to_string(),
            ];
            args.append(&mut stage.spec.args);
            stage.spec.args = args;
            stage.spec.program = valgrind.to_path_buf();
            stage
        })
        .collect()
}

/// The plan with every child in a sandbox of its own (see
/// [`crate::sandbox`]) that sees what `jail` gives it, on the scenario's
/// own `network`: bubblewrap is the lab's child, and the lab measures (and
/// asks to stop first) the command it runs.
pub fn sandboxed(
    plan: Vec<Stage>,
    sandbox: &Sandbox,
    jail: impl Fn(ProcessKind) -> Jail,
    network: &Arc<ScenarioNet>,
) -> Vec<Stage> {
    plan.into_iter()
        .map(|mut stage| {
            let args: Vec<OsString> = stage.spec.args.iter().map(OsString::from).collect();
            let jail = jail(stage.spec.kind).starting_in(&stage.spec.cwd);
            stage.spec.args = jail
                .arguments(&stage.spec.program, &args)
                .into_iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            stage.spec.program = sandbox.bwrap().to_path_buf();
            stage.spec.measured = Measured::Sandboxed;
            stage.spec.network = Some(network.clone());
            stage
        })
        .collect()
}

/// What a scenario's sandboxed child of `kind` sees: the build's venv and
/// the Python it runs on, the scenario module's folder and the lab's own
/// binary (the built-in target) read-only; a target command its files
/// (the folders of the absolute paths it names) read-only too. The
/// collector may write its folder, the target its own (`target` in the
/// scenario's folder, [`TARGET_DIR_ENV`]); nothing else writes anywhere
/// but its own `/tmp`. Logs are files the lab opened for them.
pub fn scenario_jail(kind: ProcessKind, inputs: &PlanInputs<'_>, venv: &Path) -> Jail {
    let mut jail = Jail::new(inputs.module_dir, crate::sandbox::Network::Scenario)
        .read_only(venv)
        .python_of(venv)
        .read_only(inputs.module_dir)
        .read_only(inputs.self_exe);
    if inputs.params.valgrind && kind != ProcessKind::Target {
        jail = jail.writable(&instruments_dir(inputs.dir));
    }
    match kind {
        ProcessKind::Collector => jail = jail.writable(&collector_dir(inputs.dir)),
        ProcessKind::Target => {
            jail = jail.writable(&target_dir(inputs.dir));
            if let TargetSpec::Command(command) = &inputs.params.target {
                for named in named_folders(command) {
                    jail = jail.read_only(&named);
                }
            }
        }
        _ => {}
    }
    jail
}

/// The folders a command line names: each absolute path in it that
/// exists, a file's folder for a file (`python /srv/app/server.py`: the
/// script and what it imports beside it).
fn named_folders(command: &str) -> Vec<PathBuf> {
    command
        .split_whitespace()
        .map(|word| word.trim_matches(|c| c == '\'' || c == '"'))
        .filter(|word| word.starts_with('/'))
        .filter_map(|word| {
            let path = Path::new(word);
            if path.is_dir() {
                Some(path.to_path_buf())
            } else if path.is_file() {
                path.parent().map(Path::to_path_buf)
            } else {
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs<'a>(params: &'a RunParams, dir: &'a Path) -> PlanInputs<'a> {
        PlanInputs {
            params,
            concurrency: 10,
            requests: None,
            dir,
            module_dir: Path::new("/lab/module"),
            mite: "/venv/bin/mite".into(),
            path_var: "/venv/bin:/usr/bin".into(),
            ports: LabPorts::default(),
            self_exe: Path::new("/lab/mite-perf"),
        }
    }

    #[test]
    fn the_plan_starts_what_mite_needs_in_order() {
        let params = RunParams {
            spawn_rate: 500,
            duration_ms: 5_000,
            ..RunParams::default()
        };
        let dir = Path::new("/out/scenario10");
        let plan = scenario_plan(&inputs(&params, dir));
        let kinds: Vec<ProcessKind> = plan.iter().map(|s| s.spec.kind).collect();
        assert_eq!(kinds, ProcessKind::ALL);
        let ready: Vec<&Readiness> = plan.iter().map(|s| &s.ready).collect();
        assert_eq!(
            ready,
            [
                &Readiness::Accepts(9898),
                &Readiness::Listens(vec![14302, 14303, 14304]),
                &Readiness::ConnectedTo(14303),
                &Readiness::ConnectedTo(14302),
                &Readiness::Started,
            ]
        );
        // The built-in target is this binary, with its stdin and stdout piped.
        assert_eq!(plan[0].spec.program, Path::new("/lab/mite-perf"));
        assert!(plan[0].spec.pipe_stdin && plan[0].spec.pipe_stdout);
        let controller = &plan[4].spec;
        assert!(controller.args.contains(&"--spawn-rate=500".to_string()));
        assert_eq!(
            controller.args.last().map(String::as_str),
            Some(BUILTIN_SCENARIO)
        );
        assert!(controller
            .env
            .contains(&("MITE_CONF_mite_perf_concurrency".into(), "10".into())));
        assert!(controller
            .env
            .contains(&("MITE_CONF_mite_perf_duration".into(), "5".into())));
        assert_eq!(plan[2].spec.log_path, dir.join("collector.log"));
        assert!(plan[2]
            .spec
            .args
            .contains(&"--collector-dir=/out/scenario10/collector".to_string()));
    }

    #[test]
    fn a_run_that_leaves_the_bus_unread_gives_the_duplicator_no_lab_output() {
        let params = RunParams {
            read_bus: false,
            ..RunParams::default()
        };
        let plan = scenario_plan(&inputs(&params, Path::new("/out/s")));
        let duplicator = &plan[1];
        assert_eq!(duplicator.spec.kind, ProcessKind::Duplicator);
        assert_eq!(duplicator.ready, Readiness::Listens(vec![14302, 14303]));
        assert_eq!(
            duplicator.spec.args,
            [
                "duplicator",
                "--message-socket=tcp://127.0.0.1:14302",
                "tcp://127.0.0.1:14303"
            ]
        );
    }

    #[test]
    fn an_external_target_and_a_custom_scenario_change_only_their_stages() {
        let params = RunParams {
            target: TargetSpec::Command("python server.py".into()),
            scenario: ScenarioSpec::Custom {
                spec: "mine:scenario".into(),
                dir: "/work/scenarios".into(),
            },
            ..RunParams::default()
        };
        let plan = scenario_plan(&inputs(&params, Path::new("/out/s")));
        assert_eq!(plan[0].spec.program, Path::new("/bin/sh"));
        assert_eq!(plan[0].spec.args, ["-c", "exec python server.py"]);
        assert!(!plan[0].spec.pipe_stdin && plan[0].spec.pipe_stdout);
        assert_eq!(
            plan[4].spec.args.last().map(String::as_str),
            Some("mine:scenario")
        );
        assert_eq!(plan[0].waiting_for, "the target to listen on 9898");
        assert_eq!(plan[3].waiting_for, "the runner to connect");
    }

    #[test]
    fn a_target_command_sees_the_folders_it_names() {
        let dir = std::env::temp_dir().join(format!("mite-perf-plan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("folder");
        let script = dir.join("server.py");
        std::fs::write(&script, "").expect("script");
        let named = named_folders(&format!(
            "python '{}' --root {} --missing /no/such/path relative.py",
            script.display(),
            dir.display()
        ));
        assert_eq!(named, [dir.clone(), dir.clone()]);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn several_runners_each_connect_before_the_controller_starts() {
        let params = RunParams {
            runners: 3,
            ..RunParams::default()
        };
        let dir = Path::new("/out/s");
        let plan = scenario_plan(&inputs(&params, dir));
        let kinds: Vec<ProcessKind> = plan.iter().map(|s| s.spec.kind).collect();
        assert_eq!(
            kinds,
            [
                ProcessKind::Target,
                ProcessKind::Duplicator,
                ProcessKind::Collector,
                ProcessKind::Runner,
                ProcessKind::Runner,
                ProcessKind::Runner,
                ProcessKind::Controller
            ]
        );
        let logs: Vec<&Path> = plan[3..6]
            .iter()
            .map(|s| s.spec.log_path.as_path())
            .collect();
        assert_eq!(
            logs,
            [
                dir.join("runner.log"),
                dir.join("runner-2.log"),
                dir.join("runner-3.log")
            ]
        );
        assert_eq!(plan[5].waiting_for, "runner 3 to connect");
        assert!(plan[3..6]
            .iter()
            .all(|s| s.ready == Readiness::ConnectedTo(14302)));
    }
}
