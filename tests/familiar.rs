//! Familiar spellings (SPEC §15): what users of git, git-sync and Tekton's git-clone type first
//! does what the flags form does, conflicts are refused with exit 2, and no tip misleads.

#[path = "support/mod.rs"]
mod common;

use std::path::Path;

use common::{fixtures, git_out, gitinit, ok, run, HttpServer, Output};

fn head(dest: &Path) -> String {
    git_out(dest, &["rev-parse", "HEAD"])
}

fn refused(out: &Output, needle: &str) {
    assert_eq!(
        out.code, 2,
        "stdout: {}\nstderr: {}",
        out.stdout, out.stderr
    );
    assert!(out.stderr.contains(needle), "{needle}: {}", out.stderr);
    assert!(!out.stderr.contains("similar argument"), "{}", out.stderr);
}

#[test]
fn positional_url_and_dir_branch_ref_repo_and_depth_are_the_flags_form() {
    let fx = fixtures();
    let http = HttpServer::start();
    let url = http.http_url("public/basic.git");
    let dir = tempfile::tempdir().unwrap();

    // `gitinit clone URL DIR --depth 1`, as `git clone --depth 1 URL DIR`.
    let a = dir.path().join("a");
    ok(&run(gitinit()
        .args(["clone", &url])
        .arg(&a)
        .args(["--depth", "1"])));
    assert_eq!(head(&a), fx.sha("c3"));
    assert_eq!(git_out(&a, &["rev-list", "--count", "HEAD"]), "1");

    // --branch and --ref are --revision; --repo is --url; GITINIT_DEPTH is --depth.
    for (i, spelling) in ["--branch", "--ref", "--revision"].iter().enumerate() {
        let d = dir.path().join(format!("b{i}"));
        ok(&run(gitinit()
            .env("GITINIT_DEPTH", "1")
            .args(["clone", "--repo", &url, spelling, "feature", "--dest"])
            .arg(&d)));
        assert_eq!(head(&d), fx.sha("c4"), "{spelling}");
        assert_eq!(git_out(&d, &["rev-list", "--count", "HEAD"]), "1");
    }
    // The same URL and directory given both ways is no conflict.
    let c = dir.path().join("c");
    ok(&run(gitinit()
        .args(["clone", &url])
        .arg(&c)
        .args(["--url", &url, "--dest"])
        .arg(&c)));
}

#[test]
fn conflicting_spellings_are_refused_clearly() {
    let http = HttpServer::start();
    let url = http.http_url("public/basic.git");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("w");
    let clone = |extra: &[&str]| {
        run(gitinit()
            .args(["clone", "--url", &url, "--dest"])
            .arg(&d)
            .args(extra))
    };
    refused(
        &clone(&["--branch", "feature", "--ref", "trunk"]),
        "cannot be used multiple times",
    );
    refused(
        &clone(&["--branch", "feature", "--revision", "trunk"]),
        "cannot be used multiple times",
    );
    refused(
        &clone(&["--depth", "1", "--flags", "--depth 2"]),
        "--depth 1 and the flag `--depth 2` disagree",
    );
    refused(
        &clone(&["--submodules", "off", "--flags", "--recurse-submodules"]),
        "--submodules off and the flag `--recurse-submodules` disagree",
    );
    refused(&clone(&["--depth", "0"]), "--depth");
    refused(&clone(&["--submodules", "all"]), "recursive");
    let out = run(gitinit()
        .args([
            "clone",
            "https://u:hunter2@example.com/other.git",
            "--url",
            &url,
        ])
        .arg("--dest")
        .arg(&d));
    refused(&out, "the repository is given twice");
    assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
    refused(
        &run(gitinit()
            .args(["clone", &url, "elsewhere", "--dest"])
            .arg(&d)),
        "the destination is given twice",
    );
    assert!(!d.exists(), "nothing was written");
    // `initializer git` keeps Polyaxon's arguments: no positional spelling there.
    let out = run(gitinit()
        .args(["initializer", "git", "--url", &url, "--repo-path"])
        .arg(&d)
        .arg("extra"));
    assert_eq!(out.code, 2, "{}", out.stderr);
}

#[test]
fn submodules_option_is_the_submodule_flags() {
    let http = HttpServer::start();
    let url = http.http_url("public/super.git");
    let dir = tempfile::tempdir().unwrap();
    let off = dir.path().join("off");
    ok(&run(gitinit()
        .args(["clone", &url])
        .arg(&off)
        .args(["--submodules", "off"])));
    assert!(!off.join("libs/sub/.git").exists());
    let shallow = dir.path().join("shallow");
    ok(&run(gitinit()
        .env("GITINIT_SUBMODULES", "shallow")
        .args(["clone", &url])
        .arg(&shallow)));
    let sub = shallow.join("libs/sub");
    assert_eq!(
        git_out(&sub, &["rev-parse", "--is-shallow-repository"]),
        "true"
    );
    let recursive = dir.path().join("recursive");
    ok(&run(gitinit()
        .args(["clone", &url])
        .arg(&recursive)
        .args(["--submodules", "recursive"])));
    let sub = recursive.join("libs/sub");
    assert_eq!(
        git_out(&sub, &["rev-parse", "--is-shallow-repository"]),
        "false"
    );
}

#[test]
fn boolean_env_vars_take_what_people_write_and_name_the_variable() {
    let http = HttpServer::start();
    let url = http.http_url("public/basic.git");
    let dir = tempfile::tempdir().unwrap();
    for (i, yes) in ["1", "yes", "TRUE", "Yes"].iter().enumerate() {
        let d = dir.path().join(format!("y{i}"));
        std::fs::create_dir(&d).unwrap();
        std::fs::write(d.join("stray"), "x").unwrap();
        let out = run(gitinit()
            .env("GITINIT_CLEAN", yes)
            .args(["clone", "--url", &url, "--dest"])
            .arg(&d));
        ok(&out);
        assert!(!d.join("stray").exists(), "{yes}");
    }
    for (i, no) in ["0", "no", "False"].iter().enumerate() {
        let d = dir.path().join(format!("n{i}"));
        std::fs::create_dir(&d).unwrap();
        std::fs::write(d.join("stray"), "x").unwrap();
        let out = run(gitinit()
            .env("GITINIT_CLEAN", no)
            .args(["clone", "--url", &url, "--dest"])
            .arg(&d));
        assert_eq!(out.code, 7, "{no}: {}", out.stderr);
    }
    for var in ["GITINIT_CLEAN", "GITINIT_INSECURE_SKIP_HOST_KEY_CHECK"] {
        let out = run(gitinit()
            .env(var, "maybe")
            .args(["clone", "--url", &url, "--dest"])
            .arg(dir.path().join("bad")));
        assert_eq!(out.code, 2, "{}", out.stderr);
        assert!(out.stderr.contains(&format!("{var}=")), "{}", out.stderr);
        assert!(out.stderr.contains("yes or no"), "{}", out.stderr);
    }
}

#[test]
fn results_dir_holds_tektons_results_and_the_report_the_committer_date() {
    let fx = fixtures();
    let http = HttpServer::start();
    let url = http.http_url("public/basic.git");
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("w");
    let results = dir.path().join("results");
    let report = dir.path().join("r.json");
    ok(&run(gitinit()
        .env("GITINIT_RESULTS_DIR", &results)
        .args(["clone", &url])
        .arg(&dest)
        .arg("--report")
        .arg(&report)));
    let read = |name: &str| std::fs::read_to_string(results.join(name)).unwrap();
    assert_eq!(read("commit"), fx.sha("c3"), "no trailing newline");
    assert_eq!(read("url"), url);
    assert_eq!(
        read("committer-date"),
        git_out(&dest, &["log", "-1", "--pretty=%ct"])
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(
        v["committer_date"],
        git_out(&dest, &["log", "-1", "--pretty=%cI"])
    );
}

#[test]
fn an_unwritable_report_fails_before_the_network_and_a_failure_is_reported() {
    let http = HttpServer::start();
    let url = http.http_url("public/basic.git");
    let dir = tempfile::tempdir().unwrap();
    let out = run(gitinit()
        .args(["clone", &url])
        .arg(dir.path().join("w"))
        .args(["--report", "/nonexistent/r.json"]));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("--report /nonexistent/r.json"),
        "{}",
        out.stderr
    );
    assert_eq!(http.count_requests("GET"), 0, "no request was made");
    assert!(!dir.path().join("w").exists());

    // A failure of the run is written to the report as JSON.
    let report = dir.path().join("r.json");
    let out = run(gitinit()
        .args(["clone", &url.replace("basic", "nope")])
        .arg(dir.path().join("w"))
        .arg("--report")
        .arg(&report)
        .args(["--revision", "no-such-branch"]));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(v["exit_code"], out.code, "{v}");
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("repository not found"),
        "{v}"
    );
    assert_eq!(v["url"], url.replace("basic", "nope"));
    assert_eq!(v["revision"], "no-such-branch");
    // Invalid input is reported too.
    let out = run(gitinit()
        .args(["clone", "--depth", "1", "--flags", "--depth 2", &url])
        .arg(dir.path().join("w"))
        .arg("--report")
        .arg(&report));
    assert_eq!(out.code, 2);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(v["exit_code"], 2, "{v}");
}

#[test]
fn a_rerun_to_another_commit_counts_only_what_the_job_changed() {
    let fx = fixtures();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("w");
    let path = fx.repo("basic.git").display().to_string();
    ok(&run(gitinit()
        .args(["clone", &path, "--revision", "light"])
        .arg(&dest)));
    // file.txt changes upstream between c1 and c3, collide/ arrives: no local change.
    let out = run(gitinit()
        .args(["clone", &path, "--revision", "trunk"])
        .arg(&dest));
    ok(&out);
    assert!(!out.stderr.contains("discarded"), "{}", out.stderr);
    assert_eq!(git_out(&dest, &["rev-parse", "HEAD"]), fx.sha("c3"));
    assert_eq!(git_out(&dest, &["status", "--porcelain", "--ignored"]), "");
    // And back (collide/ leaves), with one real local change: only that one is counted.
    std::fs::write(dest.join("README.md"), "edited\n").unwrap();
    let out = run(gitinit()
        .args(["clone", &path, "--revision", "light"])
        .arg(&dest));
    ok(&out);
    assert!(
        out.stderr
            .contains("1 modified file(s) reset and 0 untracked"),
        "{}",
        out.stderr
    );
    assert_eq!(git_out(&dest, &["rev-parse", "HEAD"]), fx.sha("c1"));
    assert_eq!(git_out(&dest, &["status", "--porcelain", "--ignored"]), "");
}

#[test]
fn a_rerun_accepts_another_spelling_of_the_url_and_says_what_it_discarded() {
    let fx = fixtures();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("w");
    let path = fx.repo("basic.git").display().to_string();
    ok(&run(gitinit().args(["clone", &path]).arg(&dest)));
    for other in [format!("{path}/"), format!("file://{path}")] {
        let out = run(gitinit().args(["clone", &other]).arg(&dest));
        ok(&out);
        assert!(!out.stderr.contains("discarded"), "{}", out.stderr);
    }
    // Another repository is still refused.
    let out = run(gitinit()
        .args(["clone"])
        .arg(fx.repo("deep.git"))
        .arg(&dest));
    assert_eq!(out.code, 7, "{}", out.stderr);
    assert!(out.stderr.contains("another repository"), "{}", out.stderr);

    // What the job changed is put back, with a warning that counts it.
    let tracked = git_out(&dest, &["ls-files"]);
    let tracked = tracked.lines().next().unwrap();
    std::fs::write(dest.join(tracked), "edited\n").unwrap();
    std::fs::write(dest.join("untracked.txt"), "new").unwrap();
    let out = run(gitinit().args(["clone", &path]).arg(&dest));
    ok(&out);
    assert!(
        out.stderr
            .contains("1 modified file(s) reset and 1 untracked file(s)"),
        "{}",
        out.stderr
    );
    assert!(!dest.join("untracked.txt").exists());
    assert_eq!(head(&dest), fx.sha("c3"));
}

/// A server whose repository lost an object: upload-pack dies with `fatal: unable to read …`.
/// That is the repository's fault (exit 4, not retried), and the remote's own words are in the
/// error line, not only at `-v`.
#[test]
fn a_broken_repository_on_the_server_is_exit_4_with_the_remotes_message() {
    let root = tempfile::tempdir().unwrap();
    let bare = root.path().join("broken.git");
    let work = root.path().join("work");
    let git = |dir: &Path, args: &[&str]| {
        let st = common::git(dir).args(args).status().unwrap();
        assert!(st.success(), "git {args:?}");
    };
    std::fs::create_dir(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(work.join("a.txt"), "the lost blob\n").unwrap();
    git(&work, &["add", "a.txt"]);
    git(
        &work,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "commit",
            "-q",
            "-m",
            "one",
        ],
    );
    git(
        root.path(),
        &["clone", "-q", "--bare", "work", "broken.git"],
    );
    let blob = git_out(&work, &["rev-parse", "HEAD:a.txt"]);
    std::fs::remove_file(bare.join("objects").join(&blob[..2]).join(&blob[2..])).unwrap();

    let http = HttpServer::start_at(root.path());
    let dir = tempfile::tempdir().unwrap();
    let out = run(gitinit()
        .args(["clone", &http.http_url("public/broken.git")])
        .arg(dir.path().join("w")));
    assert_eq!(out.code, 4, "{}", out.stderr);
    let last = out.stderr.lines().last().unwrap();
    assert!(last.contains("remote: fatal:"), "{}", out.stderr);
    assert!(last.contains(&blob), "{}", out.stderr);
    assert!(!out.stderr.contains("retrying"), "{}", out.stderr);
    assert_eq!(http.count_requests("POST"), 1, "not retried");
}

/// On a terminal, `--log-format json` prints JSON lines only: no progress bar between them.
#[test]
fn json_logs_on_a_terminal_draw_no_progress_bar() {
    let fx = fixtures();
    let dir = tempfile::tempdir().unwrap();
    let shell_cmd = |extra: &str, dest: &str| {
        format!(
            "{} clone {} {} {extra}",
            env!("CARGO_BIN_EXE_gitinit"),
            fx.repo("basic.git").display(),
            dir.path().join(dest).display()
        )
    };
    // `script` gives the run a pseudo-terminal.
    let on_tty = |cmd: String| {
        let out = run(std::process::Command::new("script").args(["-qec", &cmd, "/dev/null"]));
        assert_eq!(out.code, 0, "{}", out.stdout);
        out.stdout
    };
    let text = on_tty(shell_cmd("", "text"));
    assert!(text.contains("checkout ["), "a bar is drawn: {text}");
    let json = on_tty(shell_cmd("--log-format json", "json"));
    for line in json
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.is_empty())
    {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "not JSON: {line:?}"
        );
    }
}

#[test]
fn a_schemeless_host_and_path_gets_did_you_mean_https() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(gitinit()
        .current_dir(dir.path())
        .args(["clone", "github.com/org/repo", "w"]));
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("did you mean https://github.com/org/repo?"),
        "{}",
        out.stderr
    );
    let out = run(gitinit()
        .current_dir(dir.path())
        .args(["clone", "no/such/dir", "w"]));
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(!out.stderr.contains("did you mean"), "{}", out.stderr);
}

/// A secret mounted root-owned 0400 cannot be read by the image's uid 65532: that is a file
/// permission problem, and the message says so instead of asking for the key.
#[test]
fn an_unreadable_ssh_key_is_called_a_permission_problem() {
    if !nix_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("id_ed25519");
    std::fs::write(&key, "-----BEGIN OPENSSH PRIVATE KEY-----\n").unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o400)).unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let out = run(std::process::Command::new("setpriv")
        .args(["--reuid=65532", "--regid=65532", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_gitinit"))
        .args([
            "clone",
            "ssh://git@127.0.0.1:1/r.git",
            "/tmp/never",
            "--ssh-key",
        ])
        .arg(&key));
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("permission problem"), "{}", out.stderr);
    assert!(out.stderr.contains("fsGroup"), "{}", out.stderr);
}

fn nix_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A run stopped by `--timeout` or SIGTERM writes its failure to `--report FILE` too: the failure
/// line as printed, and the exit code.
#[test]
fn a_stop_writes_its_failure_to_the_report_file() {
    use common::{Fault, FaultProxy};
    let http = HttpServer::start();
    let proxy = FaultProxy::start(http.http_port, Fault::Stall);
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let read = || -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap()
    };
    let out = run(gitinit()
        .args([
            "clone",
            "--timeout",
            "2s",
            "--url",
            &proxy.url("public/basic.git"),
        ])
        .arg("--dest")
        .arg(dir.path().join("t"))
        .arg("--report")
        .arg(&report));
    assert_eq!(out.code, 6, "{}", out.stderr);
    let v = read();
    assert_eq!(v["exit_code"], 6, "{v}");
    let line = v["error"].as_str().unwrap();
    assert!(
        line.starts_with("error: ") && line.contains("--timeout"),
        "{v}"
    );
    assert_eq!(out.stderr.lines().last(), Some(line), "the line as printed");

    std::fs::remove_file(&report).unwrap();
    let mut child = gitinit()
        .args(["clone", "--url", &proxy.url("public/basic.git")])
        .arg("--dest")
        .arg(dir.path().join("s"))
        .arg("--report")
        .arg(&report)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while proxy.connections.load(std::sync::atomic::Ordering::SeqCst) < 2 {
        assert!(std::time::Instant::now() < deadline, "no connection");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    assert_eq!(child.wait().unwrap().code(), Some(143));
    let v = read();
    assert_eq!(v["exit_code"], 143, "{v}");
    assert!(v["error"].as_str().unwrap().contains("SIGTERM"), "{v}");
}

/// The cosmetic findings of issue #19, each as a user saw it.
#[test]
fn what_a_run_says_reads_right() {
    let fx = fixtures();
    let http = HttpServer::start();
    let url = http.http_url("public/basic.git");
    let dir = tempfile::tempdir().unwrap();

    // "holds 1 entries" → one entry.
    let one = dir.path().join("one");
    std::fs::create_dir(&one).unwrap();
    std::fs::write(one.join("notes.txt"), "x").unwrap();
    let out = run(gitinit().args(["clone", &url]).arg(&one));
    assert_eq!(out.code, 7, "{}", out.stderr);
    assert!(
        out.stderr.contains("holds 1 entry that is not"),
        "{}",
        out.stderr
    );

    // A first run clones, a rerun updates: the log says which. The fetch ends with its count.
    let dest = dir.path().join("w");
    let out = run(gitinit().args(["clone", &url]).arg(&dest));
    ok(&out);
    assert!(
        out.stderr.contains("cloning (default branch)"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("received objects: "), "{}", out.stderr);
    let out = run(gitinit()
        .args(["clone", "--revision", "feature", &url])
        .arg(&dest));
    ok(&out);
    assert!(out.stderr.contains("updating to feature"), "{}", out.stderr);
    assert!(!out.stderr.contains("cloning"), "{}", out.stderr);

    // JSON logs: the refspecs are text, not a JSON list quoted inside JSON.
    let out = run(gitinit()
        .args(["clone", "--log-format", "json", &url])
        .arg(dir.path().join("j")));
    ok(&out);
    let fetching = out
        .stderr
        .lines()
        .find(|l| l.contains("\"refspecs\""))
        .unwrap_or_else(|| panic!("{}", out.stderr));
    let v: serde_json::Value = serde_json::from_str(fetching).unwrap();
    assert_eq!(
        v["refspecs"], "+refs/heads/trunk:refs/remotes/origin/trunk",
        "{v}"
    );

    // `check` of a SHA does not say "X resolves to X".
    let sha = fx.sha("c2");
    let out = run(gitinit().args(["check", "--url", &url, "--revision", sha]));
    ok(&out);
    assert!(
        !out.stderr.contains(&format!("{sha} resolves to {sha}")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!("commit {sha} is there")),
        "{}",
        out.stderr
    );

    // `clone --help` ends with examples and the exit codes.
    let out = run(gitinit().args(["clone", "--help"]));
    ok(&out);
    assert!(
        out.stdout.contains("Examples:") && out.stdout.contains("Exit codes:"),
        "{}",
        out.stdout
    );
}
