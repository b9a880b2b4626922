//! Safe to run again (SPEC §7, §3, §8): killed runs, stale locks, two runs at once, signals,
//! stalled and failing servers, non-root init-container conditions.

#[path = "support/mod.rs"]
mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{fixtures, git_out, gitinit, ok, run, Fault, FaultProxy, HttpServer};

fn clone_cmd(url: &str, dest: &Path, extra: &[&str]) -> Command {
    let mut cmd = gitinit();
    cmd.args(["clone", "--url", url, "--dest"])
        .arg(dest)
        .args(extra);
    cmd
}

fn assert_at(dest: &Path, commit: &str) {
    assert_eq!(git_out(dest, &["rev-parse", "HEAD"]), commit);
    assert_eq!(git_out(dest, &["status", "--porcelain", "--ignored"]), "");
    assert!(
        !dest.join(".git/gitinit-incomplete").exists(),
        "the run marked itself finished"
    );
}

/// Waits (bounded) until `cond` holds; the bound only stops a hang.
fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_run_killed_during_the_fetch_is_recovered_by_the_next() {
    let fx = fixtures();
    let http = HttpServer::start();
    let proxy = FaultProxy::start(http.http_port, Fault::StallAfter { bytes: 700 });
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("work");
    let url = proxy.url("public/deep.git");
    let mut child = clone_cmd(&url, &dest, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the fetch to start", || {
        proxy.connections.load(std::sync::atomic::Ordering::SeqCst) >= 1
            && dest.join(".git").exists()
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the fetch is stalled, not finished"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        dest.join(".git/gitinit-incomplete").exists(),
        "a killed run is marked unfinished"
    );

    proxy.heal();
    let out = run(&mut clone_cmd(&url, &dest, &[]));
    ok(&out);
    assert!(out.stderr.contains("resuming"), "{}", out.stderr);
    assert_at(&dest, fx.sha("deep39"));
}

#[test]
fn leftovers_of_killed_runs_are_recovered() {
    let fx = fixtures();
    let http = HttpServer::start();
    let url = http.http_url("public/basic.git");

    // Killed inside init: a lone .git without origin.
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("work");
    std::fs::create_dir_all(dest.join(".git/objects")).unwrap();
    ok(&run(&mut clone_cmd(&url, &dest, &[])));
    assert_at(&dest, fx.sha("c3"));

    // Killed during checkout: marker still there, stale locks, a half-written tree.
    std::fs::write(dest.join(".git/gitinit-incomplete"), "").unwrap();
    std::fs::write(dest.join(".git/index.lock"), "").unwrap();
    std::fs::write(dest.join(".git/HEAD.lock"), "").unwrap();
    std::fs::remove_file(dest.join("file.txt")).unwrap();
    std::fs::write(dest.join("README.md"), "half written").unwrap();
    std::fs::write(dest.join("partial.tmp"), "junk").unwrap();
    let out = run(&mut clone_cmd(&url, &dest, &["--revision", "feature"]));
    ok(&out);
    assert!(out.stderr.contains("lock file"), "{}", out.stderr);
    assert_at(&dest, fx.sha("c4"));
    assert!(!dest.join("partial.tmp").exists());
    assert!(!dest.join(".git/index.lock").exists());
}

#[test]
fn two_runs_on_one_destination_take_turns() {
    let fx = fixtures();
    let http = HttpServer::start();
    let url = http.http_url("public/basic.git");
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("work");
    let a = clone_cmd(&url, &dest, &["--revision", "feature"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let b = clone_cmd(&url, &dest, &["--revision", "v1.0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    let head = git_out(&dest, &["rev-parse", "HEAD"]);
    assert!(head == fx.sha("c4") || head == fx.sha("c2"), "{head}");
    assert_at(&dest, &head);
    git_out(&dest, &["fsck", "--no-progress"]);
}

#[test]
fn sigterm_stops_the_run_promptly_and_says_so() {
    let http = HttpServer::start();
    let proxy = FaultProxy::start(http.http_port, Fault::Stall);
    let dir = tempfile::tempdir().unwrap();
    let term = dir.path().join("termination-log");
    let url = proxy.url("public/basic.git");
    let dest = dir.path().join("work");
    // Starts a run that hangs on the stalled server, then sends it `signal`.
    let interrupt = |signal: i32, connections: usize| {
        let mut child = clone_cmd(&url, &dest, &[])
            .env("GITINIT_TERMINATION_LOG", &term)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_until("a connection", || {
            proxy.connections.load(std::sync::atomic::Ordering::SeqCst) >= connections
        });
        unsafe {
            libc::kill(child.id() as i32, signal);
        }
        child.wait().unwrap().code()
    };
    assert_eq!(interrupt(libc::SIGTERM, 1), Some(143));
    assert!(std::fs::read_to_string(&term).unwrap().contains("SIGTERM"));

    // SIGINT (Ctrl-C on a laptop) is 130. Neither leaves the destination locked: the next run
    // gets the lock at once and finishes the clone.
    assert_eq!(interrupt(libc::SIGINT, 2), Some(130));
    assert!(std::fs::read_to_string(&term).unwrap().contains("SIGINT"));
    proxy.heal();
    let out = run(&mut clone_cmd(&url, &dest, &[]));
    ok(&out);
    assert!(!out.stderr.contains("waiting"), "{}", out.stderr);
}

/// A transfer that stops delivering bytes mid-pack is cut after GITINIT_IO_TIMEOUT and retried
/// on a new connection.
#[test]
fn a_transfer_that_stalls_midway_is_cut_and_retried() {
    let fx = fixtures();
    let http = HttpServer::start();
    let proxy = std::sync::Arc::new(FaultProxy::start(
        http.http_port,
        Fault::StallAfter { bytes: 700 },
    ));
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("work");
    let p = proxy.clone();
    let healer = std::thread::spawn(move || {
        wait_until("the first connection", || {
            p.connections.load(std::sync::atomic::Ordering::SeqCst) >= 1
        });
        p.heal();
    });
    let out =
        run(clone_cmd(&proxy.url("public/deep.git"), &dest, &[]).env("GITINIT_IO_TIMEOUT", "1s"));
    healer.join().unwrap();
    ok(&out);
    assert!(out.stderr.contains("no data for 1s"), "{}", out.stderr);
    assert!(out.stderr.contains("retrying"), "{}", out.stderr);
    assert_at(&dest, fx.sha("deep39"));
}

#[test]
fn a_server_that_never_answers_does_not_hang_the_pod() {
    let http = HttpServer::start();
    let proxy = FaultProxy::start(http.http_port, Fault::Stall);
    let dir = tempfile::tempdir().unwrap();
    let out = run(clone_cmd(
        &proxy.url("public/basic.git"),
        &dir.path().join("work"),
        &["--retries", "1"],
    )
    .env("GITINIT_IO_TIMEOUT", "1s"));
    assert_eq!(out.code, 6, "{}", out.stderr);
    assert_eq!(
        proxy.connections.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "one retry after the first attempt"
    );
    assert!(out.stderr.contains("retrying"), "{}", out.stderr);

    let out = run(&mut clone_cmd(
        &proxy.url("public/basic.git"),
        &dir.path().join("work"),
        &["--timeout", "2s"],
    ));
    assert_eq!(out.code, 6, "{}", out.stderr);
    assert!(out.stderr.contains("--timeout"), "{}", out.stderr);
    assert!(
        !dir.path().join("work").exists() || std::fs::read_dir(dir.path().join("work")).is_ok()
    );
}

/// A clone of `path` through a proxy that answers the first `first` connections with `code`
/// (and `Retry-After` when given).
fn clone_through_status(
    http: &HttpServer,
    (code, first, retry_after): (u16, usize, Option<&'static str>),
    path: &str,
    dest: &Path,
    extra: &[&str],
) -> common::Output {
    let fault = Fault::Status {
        code,
        first,
        retry_after,
    };
    let proxy = FaultProxy::start(http.http_port, fault);
    run(&mut clone_cmd(&proxy.url(path), dest, extra))
}

#[test]
fn transient_server_errors_are_retried_and_permanent_ones_are_not() {
    let fx = fixtures();
    let http = HttpServer::start();
    for code in [503, 429] {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        let out = clone_through_status(&http, (code, 1, None), "public/basic.git", &work, &[]);
        ok(&out);
        assert!(out.stderr.contains("retrying"), "{}", out.stderr);
        assert!(out.stderr.contains(", backoff"), "{}", out.stderr);
        assert_at(&work, fx.sha("c3"));

        let again = dir.path().join("again");
        let fault = (code, 1, None);
        let out = clone_through_status(
            &http,
            fault,
            "public/basic.git",
            &again,
            &["--retries", "0"],
        );
        assert_eq!(out.code, 6, "{}", out.stderr);
        assert!(
            out.stderr.contains(&format!("answered HTTP {code}")),
            "{}",
            out.stderr
        );
    }
    // Not found is permanent: one attempt only.
    let dir = tempfile::tempdir().unwrap();
    let out = clone_through_status(
        &http,
        (503, 0, None),
        "public/nothere.git",
        &dir.path().join("work"),
        &[],
    );
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(!out.stderr.contains("retrying"), "{}", out.stderr);
}

/// A server's Retry-After (seconds or an HTTP date) sets the wait instead of the backoff, up
/// to the 10 s cap (SPEC §9). The wait is read from the retry's log line, not timed.
#[test]
fn retry_after_sets_the_wait_up_to_the_cap() {
    let fx = fixtures();
    let http = HttpServer::start();
    for (code, header, logged) in [
        (
            429,
            "3",
            "retrying in 3.0s, as the server asked (Retry-After)",
        ),
        (
            503,
            "120",
            "retrying in 10.0s, as the server asked (Retry-After)",
        ),
        (
            503,
            "Thu, 01 Jan 1970 00:00:00 GMT",
            "retrying in 0.0s, as the server asked (Retry-After)",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        let fault = (code, 1, Some(header));
        let out = clone_through_status(&http, fault, "public/basic.git", &work, &[]);
        ok(&out);
        assert!(out.stderr.contains(logged), "{}", out.stderr);
        assert_at(&work, fx.sha("c3"));
    }
}

/// An init container: an arbitrary uid with no passwd entry, no HOME, a destination volume
/// owned by another uid.
#[test]
fn runs_as_an_arbitrary_uid_without_home_on_a_foreign_volume() {
    if !nix_root() {
        eprintln!("skipped: needs root to switch uid");
        return;
    }
    let fx = fixtures();
    let http = HttpServer::start();
    let url = http.http_url("public/basic.git");
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("work");
    // A first run as root leaves a checkout owned by root, as an fsGroup volume might.
    ok(&run(&mut clone_cmd(&url, &dest, &[])));
    chmod_all(dir.path());
    let out = run(&mut as_uid(clone_cmd(
        &url,
        &dest,
        &["--revision", "feature"],
    )));
    ok(&out);
    assert_eq!(git_out(&dest, &["rev-parse", "HEAD"]), fx.sha("c4"));

    // A destination it may not write: exit 7, nothing else touched.
    let ro = dir.path().join("readonly");
    std::fs::create_dir(&ro).unwrap();
    let out = run(&mut as_uid(clone_cmd(&url, &ro.join("work"), &[])));
    assert_eq!(out.code, 7, "{}", out.stderr);
}

#[test]
fn global_git_config_has_no_effect() {
    let fx = fixtures();
    let http = HttpServer::start();
    let url = http.http_url("public/basic.git");
    let home = tempfile::tempdir().unwrap();
    let evil = format!(
        "[url \"http://127.0.0.1:1/\"]\n\tinsteadOf = {url}\n[core]\n\tsshCommand = touch {}/pwned\n[http]\n\tproxy = http://127.0.0.1:1\n",
        home.path().display()
    );
    std::fs::write(home.path().join(".gitconfig"), &evil).unwrap();
    std::fs::create_dir_all(home.path().join(".config/git")).unwrap();
    std::fs::write(home.path().join(".config/git/config"), &evil).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = run(clone_cmd(&url, &dir.path().join("work"), &[])
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join(".config"))
        .env("GIT_CONFIG_GLOBAL", home.path().join(".gitconfig")));
    ok(&out);
    assert_at(&dir.path().join("work"), fx.sha("c3"));
    assert!(!home.path().join("pwned").exists());
}

fn nix_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

fn chmod_all(p: &Path) {
    let st = Command::new("chmod")
        .arg("-R")
        .arg("a+rwX")
        .arg(p)
        .status()
        .unwrap();
    assert!(st.success());
    let mut up = p.parent();
    while let Some(d) = up {
        let _ = Command::new("chmod").arg("a+rx").arg(d).status();
        up = d.parent();
    }
}

/// Runs the command as uid/gid 65532 (no passwd entry) with no HOME.
fn as_uid(cmd: Command) -> Command {
    let mut wrapped = Command::new("setpriv");
    wrapped
        .args(["--reuid=65532", "--regid=65532", "--clear-groups", "--"])
        .arg(cmd.get_program())
        .args(cmd.get_args());
    wrapped.env_clear();
    for (k, v) in cmd.get_envs() {
        if let (Some(v), false) = (v, k == "HOME") {
            wrapped.env(k, v);
        }
    }
    wrapped
}

/// A full disk (here a file-size limit) is a destination problem, not a network one: exit 7 at
/// once, no retries.
#[test]
fn a_full_disk_is_a_destination_problem() {
    let http = HttpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("work");
    // Files over 100 blocks of 512 bytes cannot be written.
    let clone_limited = |repo: &str| {
        let mut cmd = Command::new("bash");
        common::clean_env(&mut cmd, dir.path());
        cmd.arg("-c")
            .arg("ulimit -f 100; exec \"$@\"")
            .arg("bash")
            .arg(env!("CARGO_BIN_EXE_gitinit"))
            .args(["clone", "--url", &http.http_url(repo), "--dest"])
            .arg(&dest);
        run(&mut cmd)
    };
    // Met while the pack is written: by libgit2's indexer (one object) and by gix-pack's
    // (4,084 objects).
    for repo in ["public/big.git", "public/many.git"] {
        let out = clone_limited(repo);
        assert_eq!(out.code, 7, "{repo}: {}", out.stderr);
        assert!(
            out.stderr.contains("File too large"),
            "{repo}: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("retrying"), "{repo}: {}", out.stderr);
        assert!(
            !dest.exists(),
            "{repo}: a failed fresh clone leaves nothing"
        );
    }

    // The same limit met while writing the working tree (the parallel checkout of a fresh
    // clone): exit 7 naming the file, and the failed fresh clone leaves nothing behind.
    let out = clone_limited("public/zeros.git");
    assert_eq!(out.code, 7, "{}", out.stderr);
    assert!(out.stderr.contains("zeros.bin"), "{}", out.stderr);
    assert!(out.stderr.contains("File too large"), "{}", out.stderr);
    assert!(!dest.exists(), "a failed fresh clone leaves nothing");
}
