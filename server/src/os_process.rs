//! Facts about the machine's processes, read from `/proc` with the `procfs`
//! crate: whether a pid is alive, when it started (with the pid, that names
//! one process for good), its process group and command line, and the
//! members of a process group.

use procfs::process::Process;

fn process(pid: u32) -> Option<Process> {
    Process::new(i32::try_from(pid).ok()?).ok()
}

/// Whether a pid exists right now (a zombie counts as gone).
pub fn pid_alive(pid: u32) -> bool {
    process(pid)
        .and_then(|p| p.stat().ok())
        .is_some_and(|stat| !matches!(stat.state, 'Z' | 'X' | 'x'))
}

/// A process's start time in clock ticks after boot: pids are reused,
/// (pid, start time) pairs are not.
pub fn start_ticks(pid: u32) -> Option<u64> {
    process(pid)?.stat().ok().map(|s| s.starttime)
}

/// The process group of a pid.
pub fn process_group(pid: u32) -> Option<u32> {
    process(pid)?
        .stat()
        .ok()
        .and_then(|s| u32::try_from(s.pgrp).ok())
}

/// The command line of a process, as `ps` would show it.
pub fn command_of(pid: u32) -> String {
    let Some(p) = process(pid) else {
        return "?".to_string();
    };
    match p.cmdline() {
        Ok(args) if !args.is_empty() => args.join(" "),
        _ => p.stat().map(|s| s.comm).unwrap_or_else(|_| "?".to_string()),
    }
}

/// The children of a process (of all its threads), oldest first.
pub fn children(pid: u32) -> Vec<u32> {
    let Some(p) = process(pid) else {
        return vec![];
    };
    let Ok(tasks) = p.tasks() else {
        return vec![];
    };
    let mut found: Vec<u32> = tasks
        .filter_map(Result::ok)
        .filter_map(|t| t.children().ok())
        .flatten()
        .collect();
    found.sort_by_key(|&c| (start_ticks(c).unwrap_or(u64::MAX), c));
    found
}

/// Whether `pid` is one of `leaders` or in one of their process groups: the
/// lab's children each lead a group of their own, and what they start (a
/// process started under py-spy, a server a shell started) stays in it.
pub fn in_groups_of(pid: u32, leaders: &[u32]) -> bool {
    leaders.contains(&pid) || process_group(pid).is_some_and(|group| leaders.contains(&group))
}

/// Live processes whose process group is `pgid`.
pub fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(all) = procfs::process::all_processes() else {
        return vec![];
    };
    all.filter_map(Result::ok)
        .filter_map(|p| p.stat().ok())
        .filter(|s| u32::try_from(s.pgrp).ok() == Some(pgid) && !matches!(s.state, 'Z' | 'X'))
        .filter_map(|s| u32::try_from(s.pid).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process_facts() {
        let me = std::process::id();
        assert!(pid_alive(me));
        assert!(start_ticks(me).is_some_and(|t| t > 0));
        let group = process_group(me).expect("a process group");
        assert!(group_members(group).contains(&me));
        assert!(command_of(me).contains("mite_perf"), "{}", command_of(me));
        assert!(!pid_alive(u32::MAX));
        assert!(children(u32::MAX).is_empty());
        let mut sleeper = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep");
        assert!(children(me).contains(&sleeper.id()));
        let _ = sleeper.kill();
        let _ = sleeper.wait();
    }

    #[test]
    fn a_process_in_a_leaders_group_is_that_leaders() {
        use std::os::unix::process::CommandExt;
        // A shell leading its own group, with a child it started in it.
        let mut leader = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & echo $!; wait"])
            .process_group(0)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("sh");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(leader.stdout.take().expect("stdout")),
            &mut line,
        )
        .expect("the child's pid");
        let child: u32 = line.trim().parse().expect("a pid");
        let leaders = [leader.id()];
        assert!(in_groups_of(leader.id(), &leaders));
        assert!(in_groups_of(child, &leaders));
        assert!(!in_groups_of(std::process::id(), &leaders));
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(leader.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = leader.wait();
        assert_eq!(start_ticks(u32::MAX), None);
    }
}
