//! Profiling where py-spy may not attach: the lab starts the profiled
//! process under py-spy instead, since a process may read the memory of its
//! own descendants where the kernel refuses it others' (Yama's
//! `ptrace_scope` 1).
//!
//! `py-spy record -- COMMAND` would do that, but exits 0 whatever happened
//! to the command and reaps it, so its exit status would be lost (a runner
//! killed by SIGKILL would look like a clean end). So the lab's child is
//! `mite-perf under-py-spy … -- COMMAND`, a child subreaper, which forks: the
//! fork starts the command and becomes `py-spy record --pid` of it (its
//! parent, so allowed to read it). py-spy never waits for a process it did
//! not spawn: when it ends, the command comes back to `under-py-spy` to
//! reap, and `under-py-spy` ends as the command ended (killed by the same
//! signal, or with the same code). The stacks are py-spy's usual ones.
//!
//! The process the lab measures and asks to stop first is the command, two
//! generations down (see [`crate::supervisor::Measured`]).

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::ExitCode;

use nix::sys::signal::{self, sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{ForkResult, Pid};

use super::py_spy::record_args;
use crate::supervisor::{ChildSpec, Measured};

/// The subcommand that runs a command under py-spy and ends as it did.
pub const UNDER_PY_SPY_COMMAND: &str = "under-py-spy";

/// The profiled command, started under py-spy through the lab's
/// `under-py-spy`: its folded stacks go to `output` (where
/// [`super::py_spy::PID_PLACEHOLDER`] becomes the command's pid, as when py-spy attaches).
pub fn wrap(
    spec: &ChildSpec,
    py_spy: &Path,
    self_exe: &Path,
    rate: u32,
    output: &Path,
) -> ChildSpec {
    let mut args: Vec<String> = vec![
        UNDER_PY_SPY_COMMAND.into(),
        "--py-spy".into(),
        py_spy.display().to_string(),
        "--rate".into(),
        rate.to_string(),
        "--output".into(),
        output.display().to_string(),
        "--".into(),
        spec.program.display().to_string(),
    ];
    args.extend(spec.args.iter().cloned());
    ChildSpec {
        program: self_exe.to_path_buf(),
        args,
        measured: Measured::UnderPySpy,
        ..spec.clone()
    }
}

/// Which process the lab measured for a child it recorded with this command
/// line: the grandchild of an `under-py-spy` or of a sandbox.
pub fn measured_of(command: &str) -> Measured {
    if command.split(' ').nth(1) == Some(UNDER_PY_SPY_COMMAND) {
        Measured::UnderPySpy
    } else if crate::sandbox::is_sandbox_command(command) {
        Measured::Sandboxed
    } else {
        Measured::Itself
    }
}

extern "C" fn ignore(_: nix::libc::c_int) {}

/// `mite-perf under-py-spy --py-spy P --rate R --output F -- COMMAND…`: see
/// the module's documentation. The polite signals the lab may send to the
/// whole process group are for the command, not for this process: it
/// outlives them to see the command end (a handler, unlike an ignored
/// signal, is not inherited by what it starts).
pub fn run_under_py_spy(py_spy: &Path, rate: u32, output: &Path, command: &[String]) -> ExitCode {
    let Some((program, args)) = command.split_first() else {
        eprintln!("mite-perf under-py-spy: name the command after --");
        return ExitCode::from(2);
    };
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        eprintln!("mite-perf under-py-spy: cannot become a subreaper: {e}");
        return ExitCode::from(127);
    }
    let handler = SigAction::new(
        SigHandler::Handler(ignore),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler does nothing, so it is async-signal-safe.
        if let Err(e) = unsafe { sigaction(sig, &handler) } {
            eprintln!("mite-perf under-py-spy: cannot handle {sig}: {e}");
        }
    }
    // The fork tells which pid the command got through this pipe.
    let (read_end, write_end) = match nix::unistd::pipe() {
        Ok(ends) => ends,
        Err(e) => {
            eprintln!("mite-perf under-py-spy: cannot make a pipe: {e}");
            return ExitCode::from(127);
        }
    };
    // SAFETY: this process has one thread (the subcommand runs before any
    // runtime starts), so the fork may run ordinary code.
    match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => {
            drop(read_end);
            become_py_spy(py_spy, rate, output, program, args, write_end)
        }
        Ok(ForkResult::Parent { child: recorder }) => {
            drop(write_end);
            let mut pid = String::new();
            let _ = std::fs::File::from(read_end).read_to_string(&mut pid);
            let command_pid = pid.trim().parse::<i32>().ok().map(Pid::from_raw);
            reap(recorder, command_pid)
        }
        Err(e) => {
            eprintln!("mite-perf under-py-spy: cannot fork: {e}");
            ExitCode::from(127)
        }
    }
}

/// In the fork: starts the command, says its pid, and becomes py-spy
/// recording it (its parent).
fn become_py_spy(
    py_spy: &Path,
    rate: u32,
    output: &Path,
    program: &str,
    args: &[String],
    pid_pipe: std::os::fd::OwnedFd,
) -> ExitCode {
    let mut started = match std::process::Command::new(program).args(args).spawn() {
        Ok(child) => child,
        Err(e) => {
            eprintln!("mite-perf under-py-spy: cannot start {program}: {e}");
            return ExitCode::from(127);
        }
    };
    let mut pipe = std::fs::File::from(pid_pipe);
    let _ = writeln!(pipe, "{}", started.id());
    drop(pipe);
    let error = std::process::Command::new(py_spy)
        .args(record_args(rate, output, started.id()))
        .exec();
    // Only reached when py-spy could not be run: the command is not left
    // unprofiled and unwatched.
    eprintln!(
        "mite-perf under-py-spy: cannot run {}: {error}",
        py_spy.display()
    );
    let _ = started.kill();
    let _ = started.wait();
    ExitCode::from(127)
}

/// Reaps py-spy and the command (which comes back here when py-spy ends),
/// and ends as the command did.
fn reap(recorder: Pid, command_pid: Option<Pid>) -> ExitCode {
    let mut command_status: Option<WaitStatus> = None;
    let mut recorder_status: Option<WaitStatus> = None;
    loop {
        match waitpid(None, None) {
            Ok(status) if status.pid() == Some(recorder) => recorder_status = Some(status),
            Ok(status) if status.pid().is_some() && status.pid() == command_pid => {
                command_status = Some(status);
            }
            // Something the command left behind, reparented here.
            Ok(_) => {}
            // No child left.
            Err(nix::errno::Errno::ECHILD) => break,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                eprintln!("mite-perf under-py-spy: cannot wait: {e}");
                break;
            }
        }
    }
    match (command_status, recorder_status) {
        (Some(WaitStatus::Signaled(_, sig, _)), _) => end_by(sig),
        (Some(WaitStatus::Exited(_, code)), _) => exit_code(code),
        (_, recorder) => {
            eprintln!(
                "mite-perf under-py-spy: the command's end was not seen (py-spy: {recorder:?})"
            );
            ExitCode::from(127)
        }
    }
}

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// Ends this process by `sig`, as the command ended.
fn end_by(sig: Signal) -> ExitCode {
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    // SAFETY: restoring the default disposition.
    let _ = unsafe { sigaction(sig, &default) };
    let mut only = SigSet::empty();
    only.add(sig);
    let _ = only.thread_unblock();
    let _ = signal::raise(sig);
    // A signal whose default is not to end a process (none ends mite so).
    ExitCode::from(u8::try_from(128 + sig as i32).unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ProcessKind;
    use std::path::PathBuf;

    #[test]
    fn the_command_runs_under_py_spy_through_the_lab() {
        let spec = ChildSpec {
            kind: ProcessKind::Runner,
            program: "/venv/bin/mite".into(),
            args: vec!["runner".into(), "--message-socket=tcp://127.0.0.1:1".into()],
            cwd: "/lab/module".into(),
            env: vec![("PATH".into(), "/venv/bin".into())],
            log_path: "/out/s10/runner-2.log".into(),
            pipe_stdin: false,
            pipe_stdout: false,
            measured: Measured::Itself,
            network: None,
        };
        let output = PathBuf::from("/out/s10/profile-runner-{pid}.folded");
        let wrapped = wrap(
            &spec,
            Path::new("/tools/py-spy"),
            Path::new("/lab/mite-perf"),
            50,
            &output,
        );
        assert_eq!(
            wrapped.command_line(),
            "/lab/mite-perf under-py-spy --py-spy /tools/py-spy --rate 50 --output \
             /out/s10/profile-runner-{pid}.folded -- /venv/bin/mite runner \
             --message-socket=tcp://127.0.0.1:1"
        );
        assert_eq!(wrapped.measured, Measured::UnderPySpy);
        assert_eq!(measured_of(&wrapped.command_line()), Measured::UnderPySpy);
        assert_eq!(measured_of(&spec.command_line()), Measured::Itself);
        assert_eq!(
            (wrapped.kind, wrapped.env, wrapped.cwd, wrapped.log_path),
            (spec.kind, spec.env, spec.cwd, spec.log_path)
        );
        assert_eq!(
            record_args(50, &output, 1234).join(" "),
            "record --pid 1234 --rate 50 --nonblocking --nolineno --format raw --output \
             /out/s10/profile-runner-1234.folded"
        );
    }
}
