//! A scenario's own network: a network namespace with a loopback and
//! nothing else, and the user namespace that owns it.
//!
//! mite's components must reach each other and the target on 127.0.0.1,
//! and nothing more: not the lab's pages on the host's loopback (an open
//! loopback lab takes any local caller as its user), not its database, not
//! the internet. So each scenario gets a namespace of its own, held by a
//! process of its own (bubblewrap running `cat`, which ends when its stdin
//! closes: when the scenario drops this, or when the lab dies), and every
//! sandboxed child joins it before its bubblewrap starts ([`ScenarioNet::joiner`]).
//! The lab itself stays on the host: it reads the namespace's socket
//! tables through the holder's `/proc/PID/net`, and its bus reader's
//! connection is made inside by `mite-perf sandbox-connect`, which hands
//! the connected socket back over a Unix socket ([`ScenarioNet::connect`]).

use std::io::{IoSlice, IoSliceMut};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use nix::sched::{setns, CloneFlags};
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

use super::SandboxError;
use crate::child_env::CleanEnv;
use crate::os_process;

/// The hidden subcommand that connects inside a scenario's network.
pub const CONNECT_COMMAND: &str = "sandbox-connect";
/// The descriptor `sandbox-connect` hands the socket back on.
const HANDBACK_FD: RawFd = 3;
/// How long the holder may take to make the namespaces.
const HOLDER_START: Duration = Duration::from_secs(5);

/// A scenario's network namespace, held for as long as this lives.
pub struct ScenarioNet {
    holder: Child,
    stdin: Option<ChildStdin>,
    /// The holder's command inside the namespaces.
    inside: u32,
    user: OwnedFd,
    net: OwnedFd,
}

impl std::fmt::Debug for ScenarioNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScenarioNet")
            .field("holder", &self.holder.id())
            .field("inside", &self.inside)
            .finish()
    }
}

impl ScenarioNet {
    /// Makes the namespaces, with `bwrap`.
    pub fn create(bwrap: &Path) -> Result<Self, SandboxError> {
        let failed = |reason: String| SandboxError::Network(reason);
        let mut holder = Command::new(bwrap)
            .args([
                "--unshare-user",
                "--uid",
                "0",
                "--gid",
                "0",
                "--unshare-net",
                "--ro-bind",
                "/",
                "/",
                "--",
                "cat",
            ])
            .basic_env()
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| failed(format!("cannot start {}: {e}", bwrap.display())))?;
        let stdin = holder.stdin.take();
        let ours = std::fs::read_link("/proc/self/ns/net").ok();
        let deadline = Instant::now() + HOLDER_START;
        let inside = loop {
            // Ready once bubblewrap has set the namespaces up (their user
            // map written: a joiner needs it) and run `cat`.
            let found = os_process::children(holder.id()).into_iter().find(|pid| {
                std::fs::read_link(format!("/proc/{pid}/ns/net")).ok() != ours
                    && std::fs::read_to_string(format!("/proc/{pid}/comm"))
                        .is_ok_and(|comm| comm.trim() == "cat")
            });
            if let Some(pid) = found {
                break pid;
            }
            if let Ok(Some(status)) = holder.try_wait() {
                let mut said = String::new();
                if let Some(mut err) = holder.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut err, &mut said);
                }
                return Err(failed(format!(
                    "bubblewrap ended ({status}): {}",
                    said.trim()
                )));
            }
            if Instant::now() > deadline {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(holder.id() as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
                let _ = holder.wait();
                return Err(failed(format!(
                    "bubblewrap made no namespace within {} s",
                    HOLDER_START.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let open = |what: &str| {
            std::fs::File::open(format!("/proc/{inside}/ns/{what}"))
                .map(OwnedFd::from)
                .map_err(|e| failed(format!("cannot open the {what} namespace: {e}")))
        };
        let (user, net) = (open("user")?, open("net")?);
        Ok(ScenarioNet {
            holder,
            stdin,
            inside,
            user,
            net,
        })
    }

    /// A process inside the namespace: `/proc/PID/net/tcp` is its table.
    pub fn inside_pid(&self) -> u32 {
        self.inside
    }

    /// What a child runs between fork and exec to join the namespaces
    /// (for `pre_exec`: two system calls, nothing allocated). The
    /// descriptors stay open while this lives.
    pub fn joiner(&self) -> impl Fn() -> std::io::Result<()> + Send + Sync + 'static {
        let (user, net) = (self.user.as_raw_fd(), self.net.as_raw_fd());
        move || {
            // SAFETY: the descriptors belong to the ScenarioNet the caller
            // keeps alive until the child has started.
            let (user, net) =
                unsafe { (BorrowedFd::borrow_raw(user), BorrowedFd::borrow_raw(net)) };
            setns(user, CloneFlags::CLONE_NEWUSER)?;
            setns(net, CloneFlags::CLONE_NEWNET)?;
            Ok(())
        }
    }

    /// A TCP connection to `127.0.0.1:port` inside the namespace, made by
    /// `self_exe sandbox-connect` there within `timeout`.
    pub fn connect(
        &self,
        self_exe: &Path,
        port: u16,
        timeout: Duration,
    ) -> std::io::Result<TcpStream> {
        let (mine, theirs) = UnixStream::pair()?;
        let theirs_fd = theirs.as_raw_fd();
        let join = self.joiner();
        let mut command = Command::new(self_exe);
        command
            .args([
                CONNECT_COMMAND,
                &port.to_string(),
                &timeout.as_millis().to_string(),
            ])
            .basic_env()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // SAFETY: only system calls between fork and exec.
        unsafe {
            command.pre_exec(move || {
                join()?;
                if nix::libc::dup2(theirs_fd, HANDBACK_FD) == -1
                    || nix::libc::fcntl(HANDBACK_FD, nix::libc::F_SETFD, 0) == -1
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn()?;
        drop(theirs);
        mine.set_read_timeout(Some(timeout + Duration::from_secs(2)))?;
        let received = receive_fd(&mine);
        let output = child.wait_with_output()?;
        match received {
            // SAFETY: a descriptor just received, owned by nothing else.
            Ok(Some(fd)) => Ok(TcpStream::from(unsafe { OwnedFd::from_raw_fd(fd) })),
            Ok(None) | Err(_) => {
                let said = String::from_utf8_lossy(&output.stderr).trim().to_string();
                Err(std::io::Error::other(if said.is_empty() {
                    format!("sandbox-connect ended ({}) without a socket", output.status)
                } else {
                    said
                }))
            }
        }
    }
}

impl Drop for ScenarioNet {
    fn drop(&mut self) {
        // `cat` ends on end of input, and bubblewrap with it.
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if !matches!(self.holder.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        // Not reaped yet: the group is still the one started here.
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.holder.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.holder.wait();
    }
}

/// The one descriptor sent on `socket`, if one came.
fn receive_fd(socket: &UnixStream) -> std::io::Result<Option<RawFd>> {
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!(RawFd);
    let message = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    for cmsg in message.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            return Ok(fds.first().copied());
        }
    }
    Ok(None)
}

/// `mite-perf sandbox-connect PORT TIMEOUT_MS`, run inside a scenario's
/// network by [`ScenarioNet::connect`]: connects to `127.0.0.1:PORT` and
/// hands the socket back on descriptor 3.
pub fn serve_connect(port: u16, timeout_ms: u64) -> ExitCode {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let stream = match TcpStream::connect_timeout(&addr, Duration::from_millis(timeout_ms.max(1))) {
        Ok(stream) => stream,
        Err(e) => {
            eprintln!("cannot connect to {addr} in the scenario's network: {e}");
            return ExitCode::FAILURE;
        }
    };
    // SAFETY: the lab gave this process descriptor 3 for this.
    let channel = unsafe { UnixStream::from_raw_fd(HANDBACK_FD) };
    let fds = [stream.as_raw_fd()];
    let sent = sendmsg::<()>(
        channel.as_raw_fd(),
        &[IoSlice::new(b"s")],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    );
    match sent {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cannot hand the socket back: {e}");
            ExitCode::FAILURE
        }
    }
}
