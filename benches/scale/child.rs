//! Run one child process and measure it exactly: wall time from spawn to exit, CPU
//! time (user + sys) from the kernel's `wait4` rusage, which covers the whole child
//! (gpurent's threads, or Python and DuckDB in one process), and peak RSS as the
//! child's own `VmHWM` after its exec. `wait4`'s `ru_maxrss` is not used for it: the
//! kernel counts the spawning process's RSS at the spawn in it (the child shares, or
//! copies, this benchmark's memory until it execs), so a child smaller than the
//! benchmark would read as large as the benchmark.
//!
//! A watchdog reads the child's `VmRSS` every 20 ms and kills it (SIGKILL) above a
//! cap, so a run that would exhaust the machine's memory is recorded as such instead
//! of taking the benchmark (or the machine) down with it. Invariants: the child is
//! only ever signalled while it is known not to have been reaped (its pid cannot
//! have been reused); stdout and stderr go to files, never a pipe that could fill.

use std::io::{Read, Seek};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Ok,
    Exit(i32),
    /// Killed by a signal it was not sent by the watchdog (e.g. the kernel's OOM killer).
    Signal(i32),
    /// Killed by the watchdog: its RSS passed the cap (MiB).
    RssCap(u64),
    Spawn(String),
}

impl Outcome {
    pub fn text(&self) -> String {
        match self {
            Outcome::Ok => "ok".into(),
            Outcome::Exit(c) => format!("exit status {c}"),
            Outcome::Signal(9) => "killed by SIGKILL (OOM killer?)".into(),
            Outcome::Signal(s) => format!("killed by signal {s}"),
            Outcome::RssCap(m) => format!("killed at the {m} MiB RSS cap"),
            Outcome::Spawn(e) => format!("did not start: {e}"),
        }
    }
}

/// One measured run.
#[derive(Debug, Clone)]
pub struct Run {
    pub outcome: Outcome,
    pub wall_s: f64,
    /// User + system CPU seconds.
    pub cpu_s: f64,
    pub peak_rss_mib: f64,
    pub stdout: String,
    /// The last lines of stderr.
    pub stderr_tail: String,
}

impl Run {
    pub fn ok(&self) -> bool {
        self.outcome == Outcome::Ok
    }
}

/// Run `cmd` to completion, killing it if its RSS passes `cap_mib`.
pub fn run(cmd: &mut Command, cap_mib: u64) -> Run {
    let (Ok(mut out), Ok(mut err)) = (tempfile::tempfile(), tempfile::tempfile()) else {
        return failed("no temporary file for its output".into());
    };
    let (Ok(o), Ok(e)) = (out.try_clone(), err.try_clone()) else {
        return failed("cannot share its output file".into());
    };
    cmd.stdin(Stdio::null()).stdout(o).stderr(e);
    let start = Instant::now();
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return failed(e.to_string()),
    };
    let pid = child.id() as libc::pid_t;
    let (reaped, capped) = (
        Arc::new(Mutex::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let dog = watchdog(pid, cap_mib, reaped.clone(), capped.clone());
    wait_exit(pid);
    let wall_s = start.elapsed().as_secs_f64();
    let (status, ru) = {
        let mut done = reaped.lock().expect("watchdog never panics");
        *done = true;
        reap(pid)
    };
    let hwm_kib = dog.join().ok().flatten();
    drop(child); // reaped above; dropping a std Child neither waits nor kills
    Run {
        outcome: outcome(status, capped.load(Ordering::SeqCst), cap_mib),
        wall_s,
        cpu_s: secs(ru.ru_utime) + secs(ru.ru_stime),
        // A child too short for one look after its exec: rusage's, an upper bound.
        peak_rss_mib: hwm_kib.unwrap_or(ru.ru_maxrss as u64) as f64 / 1024.0,
        stdout: read_all(&mut out),
        stderr_tail: tail(&read_all(&mut err), 6),
    }
}

fn failed(why: String) -> Run {
    Run {
        outcome: Outcome::Spawn(why),
        wall_s: f64::NAN,
        cpu_s: f64::NAN,
        peak_rss_mib: f64::NAN,
        stdout: String::new(),
        stderr_tail: String::new(),
    }
}

/// Kill `pid` when its RSS passes the cap, until it has been reaped; its peak RSS
/// since its exec (`VmHWM`, KiB) as last seen, looking every 5 ms.
fn watchdog(
    pid: libc::pid_t,
    cap_mib: u64,
    reaped: Arc<Mutex<bool>>,
    capped: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Option<u64>> {
    let parent = std::fs::read_to_string("/proc/thread-self/comm").unwrap_or_default();
    std::thread::spawn(move || {
        let mut hwm = None;
        loop {
            std::thread::sleep(Duration::from_millis(5));
            let done = reaped
                .lock()
                .expect("the main thread never panics holding it");
            if *done {
                return hwm;
            }
            let Some(status) = Status::read(pid) else {
                continue;
            };
            // Before its exec the child is still this benchmark (same name, and
            // its high-water mark is the benchmark's).
            if status.name != parent.trim() {
                hwm = hwm.max(status.hwm_kib);
            }
            if status.rss_kib / 1024 > cap_mib && !capped.swap(true, Ordering::SeqCst) {
                // SAFETY: plain syscall; `pid` is our unreaped child (checked under the lock).
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    })
}

/// Block until `pid` has exited, leaving it unreaped (a zombie keeps its pid).
fn wait_exit(pid: libc::pid_t) {
    loop {
        // SAFETY: siginfo_t is plain data; waitid only writes into it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if r == 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return;
        }
    }
}

/// Reap `pid`: its wait status and resource usage.
fn reap(pid: libc::pid_t) -> (libc::c_int, libc::rusage) {
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data; wait4 only writes into it and `status`.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return (status, ru);
        }
    }
}

fn outcome(status: libc::c_int, capped: bool, cap_mib: u64) -> Outcome {
    if libc::WIFEXITED(status) {
        match libc::WEXITSTATUS(status) {
            0 => Outcome::Ok,
            c => Outcome::Exit(c),
        }
    } else if capped {
        Outcome::RssCap(cap_mib)
    } else {
        Outcome::Signal(libc::WTERMSIG(status))
    }
}

fn secs(t: libc::timeval) -> f64 {
    t.tv_sec as f64 + t.tv_usec as f64 / 1e6
}

/// The current resident set of `pid` in MiB (`VmRSS` of /proc/<pid>/status).
/// What `/proc/<pid>/status` says of a process's name and memory.
struct Status {
    name: String,
    rss_kib: u64,
    hwm_kib: Option<u64>,
}

impl Status {
    fn read(pid: libc::pid_t) -> Option<Status> {
        let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let field = |key: &str| s.lines().find_map(|l| l.strip_prefix(key)).map(str::trim);
        let kib = |key: &str| field(key)?.split_whitespace().next()?.parse::<u64>().ok();
        Some(Status {
            name: field("Name:")?.to_string(),
            rss_kib: kib("VmRSS:")?,
            hwm_kib: kib("VmHWM:"),
        })
    }
}

fn read_all(f: &mut std::fs::File) -> String {
    let mut s = String::new();
    let _ = f.rewind().and_then(|_| f.read_to_string(&mut s));
    s
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
