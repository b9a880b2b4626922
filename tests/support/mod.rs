//! The test harness: fixture repositories built once per test process (cached on disk, shared
//! safely between processes), and real git servers started per test on free 127.0.0.1 ports,
//! stopped by `Drop` (also when a test panics) and by the kernel if the test process dies.
//!
//! Here: the clean environment, `gitinit()`, `run`, `ok`, `assert_no_secret`, ports and child
//! handling every server shares. `fixtures` (the repositories, built by `fixtures.sh`), `http`
//! (lighttpd + git-http-backend), `daemon` (git daemon), `sshd`, `proxy` (tinyproxy and the
//! in-process fault and auth proxies), `github_app` (a stand-in of GitHub's App API).
#![allow(dead_code)]

mod daemon;
mod fixtures;
pub mod github_app;
mod http;
pub mod lfs;
pub mod polyaxon;
mod proxy;
pub mod sshd;

// Re-exported so tests write `common::HttpServer`; each test binary uses a few of them (as it
// uses a few of the functions: hence `dead_code` above).
#[allow(unused_imports)]
pub use daemon::GitDaemon;
#[allow(unused_imports)]
pub use fixtures::{ca_file, fixtures, other_ca_file, Fixtures};
#[allow(unused_imports)]
pub use http::HttpServer;
#[allow(unused_imports)]
pub use proxy::{AuthProxy, Fault, FaultProxy, Proxy};

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tempfile::TempDir;

// ---------------------------------------------------------------------------------------------
// Environment

/// Every variable a test process may see. The machine sets GIT_SSL_CAINFO, SSL_CERT_FILE and
/// CURL_CA_BUNDLE globally, and a developer may have proxies or POLYAXON_* set: none of it leaks.
pub fn clean_env(cmd: &mut Command, home: &Path) {
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("LANG", "C")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0");
}

/// A directory for HOME and other scratch of one process; kept for the test process's life.
fn scratch_home() -> PathBuf {
    static HOME: OnceLock<TempDir> = OnceLock::new();
    HOME.get_or_init(|| tempfile::tempdir().unwrap())
        .path()
        .to_path_buf()
}

pub fn git(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    clean_env(&mut cmd, &scratch_home());
    cmd.current_dir(dir);
    cmd
}

pub fn git_out(dir: &Path, args: &[&str]) -> String {
    let out = git(dir).args(args).output().expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} in {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The gitinit binary under test, in a clean environment.
pub fn gitinit() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gitinit"));
    clean_env(&mut cmd, &scratch_home());
    cmd
}

#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs to completion; a hang is killed after two minutes and fails the test.
pub fn run(cmd: &mut Command) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command starts");
    let mut out_pipe = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out_pipe.read_to_string(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err_pipe.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the command hung for 2 minutes: {cmd:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    use std::os::unix::process::ExitStatusExt;
    Output {
        code: status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
    }
}

/// The command succeeded; else fail with what it printed.
pub fn ok(out: &Output) {
    assert_eq!(
        out.code, 0,
        "stdout: {}\nstderr: {}",
        out.stdout, out.stderr
    );
}

/// Fails when `secret` appears in any output, or in any file under `dir` (`.git/config` too).
pub fn assert_no_secret(outputs: &[&str], dir: &Path, secret: &str) {
    for (i, o) in outputs.iter().enumerate() {
        assert!(!o.contains(secret), "output {i} holds the secret: {o}");
    }
    fn walk(p: &Path, secret: &str) {
        for entry in std::fs::read_dir(p).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, secret);
            } else if let Ok(bytes) = std::fs::read(&path) {
                let hay = String::from_utf8_lossy(&bytes);
                assert!(!hay.contains(secret), "{} holds the secret", path.display());
            }
        }
    }
    if dir.exists() {
        walk(dir, secret);
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16, child: &mut Child, what: &str, log: &Path) {
    wait_for_port_within(Duration::from_secs(10), port, child, what, log)
}

/// Waits up to `limit` for `child` to listen on `port`; fails with its log if it exits first or
/// never listens (then it is stopped: no caller has it in a struct whose Drop would).
fn wait_for_port_within(limit: Duration, port: u16, child: &mut Child, what: &str, log: &Path) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(st)) = child.try_wait() {
            panic!(
                "{what} exited ({st}) before listening: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    stop(child);
    panic!(
        "{what} did not listen on {port}: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// lighttpd in the foreground on `dir/lighttpd.conf`, its stderr in `dir/stderr.log`, dying
/// with the test process.
fn spawn_lighttpd(dir: &Path) -> std::io::Result<Child> {
    let mut cmd = Command::new("lighttpd");
    clean_env(&mut cmd, dir);
    cmd.args(["-D", "-f"])
        .arg(dir.join("lighttpd.conf"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("stderr.log"))?);
    die_with_parent(&mut cmd);
    cmd.spawn()
}

/// The venv of a Python server the tests start (`giftless`, `haupt`): `$GITINIT_<NAME>_VENV`,
/// else `~/.cache/gitinit-test/NAME-venv` (where `scripts/test` builds it). `.ci/py-venv.sh` is
/// idempotent (a stamp, a lock), so each test process runs it once per name: quick when the venv
/// is there, an install from PyPI when not. It keeps the caller's environment, unlike the
/// servers: pip needs the machine's registry settings.
pub fn python_venv(name: &str) -> PathBuf {
    static VENVS: std::sync::Mutex<Vec<(String, PathBuf)>> = std::sync::Mutex::new(Vec::new());
    let mut venvs = VENVS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, v)) = venvs.iter().find(|(n, _)| n == name) {
        return v.clone();
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/py-venv.sh");
    let mut cmd = Command::new("bash");
    cmd.arg(&script).arg(name);
    let var = format!("GITINIT_{}_VENV", name.to_ascii_uppercase());
    if std::env::var_os(&var).is_none() && std::env::var_os("HOME").is_none() {
        cmd.arg(Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-venv")));
    }
    let out = cmd.output().expect("bash runs .ci/py-venv.sh");
    assert!(
        out.status.success(),
        "installing {name} failed ({}; needs python3 with venv, e.g. apt-get install \
         python3-venv, and PyPI): {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let venv = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    venvs.push((name.to_string(), venv.clone()));
    venv
}

/// Started children die with the test thread that started them, if the test process is killed
/// before their `Drop` runs.
fn die_with_parent(cmd: &mut Command) {
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec here.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// Kills and reaps a server. PID 1 here reaps slowly, but we are the parent, so `wait` reaps.
fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Whether a pid names a live (not zombie) process.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .next();
            !matches!(state, Some("Z") | Some("X"))
        }
        Err(_) => false,
    }
}

fn git_exec_path() -> PathBuf {
    let out = git(Path::new("/")).arg("--exec-path").output().unwrap();
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}
