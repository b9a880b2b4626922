//! `gitinit clone` and `gitinit check` end to end: the real binary against real servers
//! (lighttpd + git-http-backend over HTTP and HTTPS, git daemon, local paths), results checked
//! with the git CLI.

#[path = "support/mod.rs"]
mod common;

use std::path::{Path, PathBuf};

use common::{fixtures, git_out, gitinit, run, GitDaemon, HttpServer, Output};
use tempfile::TempDir;

/// A scratch directory; `dest()` is where the clone goes.
struct Scratch {
    dir: TempDir,
}

impl Scratch {
    fn new() -> Self {
        Scratch {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn dest(&self) -> PathBuf {
        self.dir.path().join("work")
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn clone(&self, url: &str, extra: &[&str]) -> Output {
        let dest = self.dest();
        let mut cmd = gitinit();
        cmd.args(["clone", "--url", url, "--dest"])
            .arg(&dest)
            .args(extra);
        run(&mut cmd)
    }
}

fn head(dir: &Path) -> String {
    git_out(dir, &["rev-parse", "HEAD"])
}

fn assert_ok(out: &Output) {
    assert_eq!(
        out.code, 0,
        "gitinit failed:\nstdout: {}\nstderr: {}",
        out.stdout, out.stderr
    );
}

fn assert_code(out: &Output, code: i32) {
    assert_eq!(
        out.code, code,
        "expected exit {code}:\nstdout: {}\nstderr: {}",
        out.stdout, out.stderr
    );
    let last = out.stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: "),
        "the last stderr line is the error: {last:?}"
    );
}

fn assert_clean(dir: &Path) {
    assert_eq!(
        git_out(dir, &["status", "--porcelain", "--ignored"]),
        "",
        "status is not clean"
    );
}

fn assert_detached(dir: &Path) {
    let out = common::git(dir)
        .args(["symbolic-ref", "-q", "HEAD"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "HEAD should be detached");
}

fn assert_branch(dir: &Path, branch: &str) {
    assert_eq!(
        git_out(dir, &["symbolic-ref", "HEAD"]),
        format!("refs/heads/{branch}")
    );
    assert_eq!(
        git_out(
            dir,
            &[
                "rev-parse",
                "--abbrev-ref",
                &format!("{branch}@{{upstream}}")
            ]
        ),
        format!("origin/{branch}")
    );
}

fn report(out: &Output) -> serde_json::Value {
    let line = out.stdout.lines().last().expect("a report on stdout");
    serde_json::from_str(line).expect("the report is JSON")
}

#[test]
fn default_branch_is_read_from_the_remote_head() {
    let fx = fixtures();
    let http = HttpServer::start();
    let s = Scratch::new();
    let url = http.http_url("public/basic.git");
    let out = s.clone(&url, &["--report", "-"]);
    assert_ok(&out);
    let d = s.dest();
    assert_eq!(head(&d), fx.sha("c3"));
    assert_branch(&d, "trunk");
    assert_clean(&d);
    assert_eq!(git_out(&d, &["config", "remote.origin.url"]), url);
    // Only the needed ref was fetched, not every branch.
    let remotes = git_out(&d, &["for-each-ref", "--format=%(refname)", "refs/remotes"]);
    assert_eq!(remotes, "refs/remotes/origin/trunk");
    let r = report(&out);
    assert_eq!(r["commit"], fx.sha("c3"));
    assert_eq!(r["ref"], "refs/heads/trunk");
    assert_eq!(r["url"], url);
    assert_eq!(r["shallow"], false);
    assert!(r["revision"].is_null());
    assert!(r["received_bytes"].as_u64().unwrap() > 0);
    assert!(r["duration_ms"].is_u64());
}

#[test]
fn a_branch_becomes_a_local_tracking_branch() {
    let fx = fixtures();
    let http = HttpServer::start();
    let s = Scratch::new();
    assert_ok(&s.clone(
        &http.http_url("public/basic.git"),
        &["--revision", "feature"],
    ));
    assert_eq!(head(&s.dest()), fx.sha("c4"));
    assert_branch(&s.dest(), "feature");
    assert_clean(&s.dest());
}

#[test]
fn tags_lightweight_and_annotated_leave_a_detached_head() {
    let fx = fixtures();
    let http = HttpServer::start();
    for (tag, commit) in [("light", "c1"), ("v1.0", "c2"), ("refs/tags/v1.0", "c2")] {
        let s = Scratch::new();
        let out = s.clone(
            &http.http_url("public/basic.git"),
            &["--revision", tag, "--report", "-"],
        );
        assert_ok(&out);
        assert_eq!(head(&s.dest()), fx.sha(commit), "{tag}");
        assert_detached(&s.dest());
        assert_clean(&s.dest());
        let r = report(&out);
        assert_eq!(r["commit"], fx.sha(commit));
        assert_eq!(
            r["ref"],
            format!("refs/tags/{}", tag.trim_start_matches("refs/tags/"))
        );
    }
}

#[test]
fn a_full_ref_such_as_a_pull_request() {
    let fx = fixtures();
    let http = HttpServer::start();
    let s = Scratch::new();
    assert_ok(&s.clone(
        &http.http_url("public/basic.git"),
        &["--revision", "refs/pull/1/head"],
    ));
    assert_eq!(head(&s.dest()), fx.sha("c6"));
    assert_detached(&s.dest());
}

#[test]
fn a_full_sha_is_fetched_directly_when_the_server_allows_it() {
    let fx = fixtures();
    let http = HttpServer::start();
    let s = Scratch::new();
    let out = s.clone(
        &http.http_url("public/basic.git"),
        &[
            "--revision",
            fx.sha("c0"),
            "--flags",
            "--depth 1",
            "--report",
            "-",
        ],
    );
    assert_ok(&out);
    assert_eq!(head(&s.dest()), fx.sha("c0"));
    assert_detached(&s.dest());
    assert_eq!(git_out(&s.dest(), &["rev-list", "--count", "HEAD"]), "1");
    assert!(
        !out.stderr.contains("fetching branches and tags"),
        "{}",
        out.stderr
    );
    // The temporary ref of the SHA fetch is gone.
    assert_eq!(git_out(&s.dest(), &["for-each-ref", "refs/gitinit"]), "");
    let r = report(&out);
    assert_eq!(r["ref"], serde_json::Value::Null);
    assert_eq!(r["shallow"], true);
    assert_eq!(r["depth"], 1);
}

#[test]
fn a_sha_the_server_will_not_serve_is_found_through_branches_and_tags() {
    let fx = fixtures();
    let http = HttpServer::start();
    for flags in [&[][..], &["--flags", "--depth 1"][..]] {
        let s = Scratch::new();
        let mut args = vec!["--revision", fx.sha("c0")];
        args.extend_from_slice(flags);
        let out = s.clone(&http.http_url("public/nosha.git"), &args);
        assert_ok(&out);
        assert!(
            out.stderr.contains("does not serve commits by SHA"),
            "{}",
            out.stderr
        );
        assert_eq!(head(&s.dest()), fx.sha("c0"));
        assert_detached(&s.dest());
        assert_clean(&s.dest());
    }
}

#[test]
fn short_shas() {
    let fx = fixtures();
    let http = HttpServer::start();
    // A tip (c4 = feature) is settled from the ref list; c0 is found in the history.
    for key in ["c4", "c0"] {
        let s = Scratch::new();
        let short = &fx.sha(key)[..8];
        let out = s.clone(&http.http_url("public/nosha.git"), &["--revision", short]);
        assert_ok(&out);
        assert_eq!(head(&s.dest()), fx.sha(key), "{key}");
        assert_detached(&s.dest());
    }
    let s = Scratch::new();
    let out = s.clone(
        &http.http_url("public/basic.git"),
        &["--revision", &fx.ambiguous_prefix],
    );
    assert_code(&out, 5);
    assert!(out.stderr.contains("ambiguous"), "{}", out.stderr);
    assert!(
        !s.dest().exists(),
        "a failed fresh clone leaves nothing behind"
    );
}

#[test]
fn depth_limits_history_over_http_and_git_daemon() {
    let fx = fixtures();
    let http = HttpServer::start();
    let daemon = GitDaemon::start();
    for url in [http.http_url("public/deep.git"), daemon.url("deep.git")] {
        let s = Scratch::new();
        let out = s.clone(&url, &["--flags", r#"["--depth 5"]"#, "--report", "-"]);
        assert_ok(&out);
        assert_eq!(head(&s.dest()), fx.sha("deep39"));
        assert_eq!(
            git_out(&s.dest(), &["rev-list", "--count", "HEAD"]),
            "5",
            "{url}"
        );
        assert_eq!(report(&out)["depth"], 5);
        assert_branch(&s.dest(), "main");
    }
}

#[test]
fn every_url_scheme() {
    let fx = fixtures();
    let http = HttpServer::start();
    let daemon = GitDaemon::start();
    let local = fx.repo("basic.git");
    let urls = [
        http.http_url("public/basic.git"),
        http.https_url("public/basic.git"),
        daemon.url("basic.git"),
        format!("file://{}", local.display()),
        local.display().to_string(),
    ];
    let ca = common::ca_file();
    for url in urls {
        let s = Scratch::new();
        let out = s.clone(
            &url,
            &["--revision", "feature", "--ca-file", ca.to_str().unwrap()],
        );
        assert_ok(&out);
        assert_eq!(head(&s.dest()), fx.sha("c4"), "{url}");
        assert_clean(&s.dest());
    }
}

#[test]
fn depth_on_a_local_path_is_ignored_with_a_warning() {
    let fx = fixtures();
    let s = Scratch::new();
    let out = s.clone(
        fx.repo("deep.git").to_str().unwrap(),
        &["--flags", "--depth 1", "--report", "-"],
    );
    assert_ok(&out);
    assert!(
        out.stderr.contains("--depth 1 is ignored"),
        "{}",
        out.stderr
    );
    assert_eq!(git_out(&s.dest(), &["rev-list", "--count", "HEAD"]), "40");
    assert_eq!(report(&out)["shallow"], false);
}

/// The system's roots are where OpenSSL tools look (`SSL_CERT_FILE` first); `--ca-file` must
/// hold a PEM certificate, or nothing is attempted.
#[test]
fn system_roots_and_a_ca_file_that_is_no_certificate() {
    let fx = fixtures();
    let http = HttpServer::start();
    let ca = common::ca_file();
    let s = Scratch::new();
    let out = run(gitinit()
        .env("SSL_CERT_FILE", &ca)
        .args([
            "clone",
            "--url",
            &http.https_url("public/basic.git"),
            "--dest",
        ])
        .arg(s.dest()));
    assert_ok(&out);
    assert_eq!(head(&s.dest()), fx.sha("c3"));

    let s = Scratch::new();
    let not_pem = s.dir.path().join("ca.txt");
    std::fs::write(&not_pem, "not a certificate\n").unwrap();
    let out = s.clone(
        &http.https_url("public/basic.git"),
        &["--ca-file", not_pem.to_str().unwrap()],
    );
    assert_code(&out, 2);
    assert!(out.stderr.contains("no PEM certificate"), "{}", out.stderr);
    assert!(!s.dest().exists());
}

#[test]
fn https_with_an_untrusted_certificate_is_a_trust_failure() {
    let http = HttpServer::start();
    let s = Scratch::new();
    let out = s.clone(&http.https_url("public/basic.git"), &[]);
    assert_code(&out, 8);
    assert!(out.stderr.contains("--ca-file"), "{}", out.stderr);
    let other = common::other_ca_file();
    let out = s.clone(
        &http.https_url("public/basic.git"),
        &["--ca-file", other.to_str().unwrap()],
    );
    assert_code(&out, 8);
    // The explicit opt-out works, loudly.
    let out = s.clone(
        &http.https_url("public/basic.git"),
        &["--flags", "-c http.sslVerify=false"],
    );
    assert_ok(&out);
    assert!(
        out.stderr.to_lowercase().contains("insecure"),
        "{}",
        out.stderr
    );
}

#[test]
fn check_resolves_without_writing() {
    let fx = fixtures();
    let http = HttpServer::start();
    let url = http.http_url("public/nosha.git");
    let s = Scratch::new();
    let cases = [
        (None, format!("{}\trefs/heads/trunk", fx.sha("c3"))),
        (Some("v1.0"), format!("{}\trefs/tags/v1.0", fx.sha("c2"))),
        (
            Some("refs/pull/1/head"),
            format!("{}\trefs/pull/1/head", fx.sha("c6")),
        ),
        (Some(fx.sha("c0")), fx.sha("c0").to_string()),
        (Some(&fx.sha("c0")[..9]), fx.sha("c0").to_string()),
        (Some(fx.sha("c2")), fx.sha("c2").to_string()),
    ];
    for (rev, expected) in cases {
        let mut cmd = gitinit();
        cmd.current_dir(s.dir.path()).args(["check", "--url", &url]);
        if let Some(r) = rev {
            cmd.args(["--revision", r]);
        }
        let out = run(&mut cmd);
        assert_ok(&out);
        assert_eq!(out.stdout.trim_end(), expected, "{rev:?}");
    }
    assert_eq!(
        std::fs::read_dir(s.dir.path()).unwrap().count(),
        0,
        "check wrote nothing"
    );

    let out = run(gitinit().args(["check", "--url", &url, "--revision", "nope"]));
    assert_code(&out, 5);
    assert_eq!(out.stdout, "");
}

#[test]
fn missing_revisions_exit_5_with_close_names() {
    let http = HttpServer::start();
    let s = Scratch::new();
    let out = s.clone(
        &http.http_url("public/basic.git"),
        &["--revision", "release-1.0"],
    );
    assert_code(&out, 5);
    assert!(
        out.stderr.contains("Release-1.0"),
        "suggests the name that differs in case: {}",
        out.stderr
    );
    assert!(!s.dest().exists());
    for url in [
        http.http_url("public/basic.git"),
        http.http_url("public/nosha.git"),
    ] {
        let out = s.clone(
            &url,
            &["--revision", "0123456789abcdef0123456789abcdef01234567"],
        );
        assert_code(&out, 5);
    }
}

#[test]
fn an_empty_repository_exits_5() {
    let http = HttpServer::start();
    let s = Scratch::new();
    let out = s.clone(&http.http_url("public/empty.git"), &[]);
    assert_code(&out, 5);
    assert!(out.stderr.contains("no commits yet"), "{}", out.stderr);
}

#[test]
fn invalid_input_exits_2_before_any_network_access() {
    let s = Scratch::new();
    for url in [
        "htp://example.com/r.git",
        "https://",
        "https://example.com:70000/r.git",
        "ext::sh -c id",
    ] {
        let out = s.clone(url, &[]);
        assert_code(&out, 2);
    }
    let out = run(gitinit().args(["clone", "--dest"]).arg(s.dest()));
    assert_code(&out, 2);
    assert!(out.stderr.contains("--url"), "{}", out.stderr);
    for flag in [
        "--mirror",
        "--upload-pack=touch /tmp/x",
        "-c core.sshCommand=touch",
    ] {
        let out = s.clone("https://example.com/r.git", &["--flags", flag]);
        assert_code(&out, 2);
    }
    let out = s.clone("https://example.com/r.git", &["--flags", "--bogus"]);
    assert!(
        out.stderr.contains("--depth N"),
        "lists the supported flags: {}",
        out.stderr
    );
}

#[test]
fn a_missing_repository_exits_4() {
    let http = HttpServer::start();
    let daemon = GitDaemon::start();
    let s = Scratch::new();
    for url in [
        http.http_url("public/nothere.git"),
        daemon.url("nothere.git"),
        s.path("nothere").display().to_string(),
    ] {
        let out = s.clone(&url, &[]);
        assert_code(&out, 4);
        assert!(!s.dest().exists(), "{url}");
    }
}

#[test]
fn an_unreachable_server_exits_6() {
    let port = common::free_port();
    let s = Scratch::new();
    let out = s.clone(
        &format!("http://127.0.0.1:{port}/r.git"),
        &["--retries", "0"],
    );
    assert_code(&out, 6);
}

#[test]
fn a_destination_that_holds_something_else_exits_7_unless_clean() {
    let fx = fixtures();
    let http = HttpServer::start();
    let s = Scratch::new();
    std::fs::create_dir_all(s.dest()).unwrap();
    std::fs::write(s.dest().join("precious.txt"), "x").unwrap();
    let url = http.http_url("public/basic.git");
    let out = s.clone(&url, &[]);
    assert_code(&out, 7);
    assert!(out.stderr.contains("--clean"), "{}", out.stderr);
    assert!(
        s.dest().join("precious.txt").exists(),
        "nothing removed without --clean"
    );
    let out = s.clone(&url, &["--clean"]);
    assert_ok(&out);
    assert!(!s.dest().join("precious.txt").exists());
    assert_eq!(head(&s.dest()), fx.sha("c3"));

    // A checkout of another repository is not ours either.
    let out = s.clone(&http.http_url("public/deep.git"), &[]);
    assert_code(&out, 7);

    let file = s.path("a-file");
    std::fs::write(&file, "x").unwrap();
    let out = run(gitinit()
        .args(["clone", "--url", &url, "--dest"])
        .arg(&file));
    assert_code(&out, 7);
}

#[test]
fn lost_found_counts_as_empty_and_a_rerun_updates_in_place() {
    let fx = fixtures();
    let http = HttpServer::start();
    let s = Scratch::new();
    std::fs::create_dir_all(s.dest().join("lost+found")).unwrap();
    let url = http.http_url("public/basic.git");
    assert_ok(&s.clone(&url, &["--revision", "feature"]));
    std::fs::write(s.dest().join("untracked.txt"), "x").unwrap();
    let out = s.clone(&url, &["--revision", "v1.0", "--report", "-"]);
    assert_ok(&out);
    assert_eq!(head(&s.dest()), fx.sha("c2"));
    assert!(!s.dest().join("untracked.txt").exists());
    assert_detached(&s.dest());
    // Back to a branch, then the same revision again: nothing left to fetch.
    assert_ok(&s.clone(&url, &["--revision", "feature"]));
    assert_branch(&s.dest(), "feature");
    let out = s.clone(&url, &["--revision", "feature", "--report", "-"]);
    assert_ok(&out);
    assert_eq!(report(&out)["received_bytes"], 0);
    assert!(out.stderr.contains("nothing to fetch"), "{}", out.stderr);

    // Shallow: a rerun of the same revision asks the server nothing beyond the refs (libgit2
    // alone would negotiate twice for an empty pack); another revision is fetched.
    let s = Scratch::new();
    assert_ok(&s.clone(&url, &["--revision", "feature", "--flags", "--depth 1"]));
    let posts = http.count_requests("POST");
    let out = s.clone(
        &url,
        &[
            "--revision",
            "feature",
            "--flags",
            "--depth 1",
            "--report",
            "-",
        ],
    );
    assert_ok(&out);
    assert_eq!(report(&out)["received_bytes"], 0);
    assert_eq!(http.count_requests("POST"), posts, "{}", http.log());
    assert_eq!(head(&s.dest()), fx.sha("c4"));
    let out = s.clone(&url, &["--revision", "trunk", "--flags", "--depth 1"]);
    assert_ok(&out);
    assert!(!out.stderr.contains("nothing to fetch"), "{}", out.stderr);
    assert_eq!(head(&s.dest()), fx.sha("c3"));
    assert_clean(&s.dest());
}

#[test]
fn https_credentials_from_env_and_url_never_leak() {
    let fx = fixtures();
    let http = HttpServer::start();
    let url = http.http_url("private/basic.git");
    let password = "s3cr:et@/%x";

    // No credentials, wrong ones: exit 3, once (no loop).
    let s = Scratch::new();
    assert_code(&s.clone(&url, &[]), 3);
    let mut cmd = gitinit();
    cmd.env("POLYAXON_GIT_CREDENTIALS", "alice:wrong-password")
        .args(["clone", "--url", &url, "--dest"])
        .arg(s.dest());
    let out = run(&mut cmd);
    assert_code(&out, 3);
    assert!(!out.stderr.contains("wrong-password"));

    let term = s.path("termination-log");
    let mut cmd = gitinit();
    cmd.env("POLYAXON_GIT_CREDENTIALS", format!("alice:{password}"))
        .env("GITINIT_TERMINATION_LOG", &term)
        .args(["clone", "-v", "--report", "-", "--url", &url, "--dest"])
        .arg(s.dest());
    let out = run(&mut cmd);
    assert_ok(&out);
    assert_eq!(head(&s.dest()), fx.sha("c3"));
    common::assert_no_secret(&[&out.stdout, &out.stderr], &s.dest(), password);

    // user-info in the URL works and is stripped before it is stored or printed.
    let s2 = Scratch::new();
    let with_userinfo = url.replace("http://", "http://bob:plainpass@");
    let out = s2.clone(&with_userinfo, &["--report", "-"]);
    assert_ok(&out);
    assert_eq!(git_out(&s2.dest(), &["config", "remote.origin.url"]), url);
    assert_eq!(report(&out)["url"], url);
    common::assert_no_secret(&[&out.stdout, &out.stderr], &s2.dest(), "plainpass");
}

#[test]
fn failures_go_to_the_termination_log_and_json_logs_are_json() {
    let http = HttpServer::start();
    let s = Scratch::new();
    let term = s.path("termination-log");
    let mut cmd = gitinit();
    cmd.env("GITINIT_TERMINATION_LOG", &term)
        .args([
            "clone",
            "--url",
            &http.http_url("public/basic.git"),
            "--revision",
            "nope",
            "--dest",
        ])
        .arg(s.dest());
    let out = run(&mut cmd);
    assert_code(&out, 5);
    let last = out.stderr.lines().last().unwrap();
    assert_eq!(std::fs::read_to_string(&term).unwrap().trim_end(), last);

    let mut cmd = gitinit();
    cmd.env("GITINIT_PROGRESS_INTERVAL_MS", "0").args([
        "clone",
        "--log-format",
        "json",
        "--url",
        &http.http_url("public/deep.git"),
        "--dest",
    ]);
    cmd.arg(s.dest());
    let out = run(&mut cmd);
    assert_ok(&out);
    let mut saw_progress = false;
    for line in out.stderr.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            v["level"].is_string() && v["msg"].is_string() && v["ts"].is_string(),
            "{line}"
        );
        // Progress lines carry the phase, the counts and the (redacted) URL of their span.
        saw_progress |= v["phase"] == "fetch"
            && v["objects"].is_u64()
            && v["url"] == http.http_url("public/deep.git");
    }
    assert!(
        saw_progress,
        "progress lines while fetching: {}",
        out.stderr
    );
    let summary: serde_json::Value = serde_json::from_str(
        out.stderr
            .lines()
            .find(|l| l.contains("\"fetch_ms\""))
            .expect("a summary line"),
    )
    .unwrap();
    for key in [
        "commit",
        "received_bytes",
        "duration_ms",
        "fetch_ms",
        "checkout_ms",
    ] {
        assert!(!summary[key].is_null(), "{key} in {summary}");
    }
}

#[test]
fn version_names_libgit2_and_transports() {
    let out = run(gitinit().arg("--version"));
    assert_ok(&out);
    assert!(out.stdout.contains("libgit2 1."), "{}", out.stdout);
    for t in ["https", "ssh", "git", "file"] {
        assert!(out.stdout.contains(t), "{}", out.stdout);
    }
}

/// On a terminal the fetch shows a live bar instead of periodic log lines.
#[test]
fn a_terminal_gets_a_progress_bar() {
    let http = HttpServer::start();
    let s = Scratch::new();
    let cmd = format!(
        "{} clone --url {} --dest {}",
        env!("CARGO_BIN_EXE_gitinit"),
        http.http_url("public/deep.git"),
        s.dest().display()
    );
    // `script` runs the command on a pseudo-terminal.
    let mut script = std::process::Command::new("script");
    common::clean_env(&mut script, s.dir.path());
    script
        .env("TERM", "xterm")
        .args(["-qec", &cmd, "/dev/null"]);
    let out = run(&mut script);
    assert_ok(&out);
    assert!(out.stdout.contains(" receiving ["), "{}", out.stdout);
    assert!(
        out.stdout.contains("\r\x1b[2K"),
        "redrawn in place: {:?}",
        out.stdout
    );
    assert!(!out.stdout.contains("receiving objects:"), "{}", out.stdout);
}

/// A local source is read directly and its objects hard-linked, as `git clone --local` does;
/// every revision kind resolves as over the network.
#[test]
fn local_paths_link_objects_and_resolve_every_revision_kind() {
    use std::os::unix::fs::MetadataExt;
    let fx = fixtures();
    let local = fx.repo("basic.git").display().to_string();
    let short_c0 = fx.sha("c0")[..8].to_string();
    for (rev, key, branch) in [
        (None, "c3", Some("trunk")),
        (Some("feature"), "c4", Some("feature")),
        (Some("v1.0"), "c2", None),
        (Some("light"), "c1", None),
        (Some("refs/pull/1/head"), "c6", None),
        (Some(fx.sha("c0")), "c0", None),
        (Some(short_c0.as_str()), "c0", None),
    ] {
        let s = Scratch::new();
        let mut args = vec!["--report", "-"];
        if let Some(r) = rev {
            args.extend(["--revision", r]);
        }
        let out = s.clone(&local, &args);
        assert_ok(&out);
        assert_eq!(head(&s.dest()), fx.sha(key), "{rev:?}");
        match branch {
            Some(b) => assert_branch(&s.dest(), b),
            None => assert_detached(&s.dest()),
        }
        assert_clean(&s.dest());
        assert!(out.stderr.contains("linked the objects"), "{}", out.stderr);
    }
    let s = Scratch::new();
    assert_ok(&s.clone(&local, &[]));
    // Every object file (loose or packed) that came from the source is a hard link to it.
    let mut files = vec![];
    for dir in std::fs::read_dir(s.dest().join(".git/objects")).unwrap() {
        let dir = dir.unwrap().path();
        if dir.ends_with("info") {
            continue;
        }
        files.extend(std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()));
    }
    assert!(files.len() > 10, "{files:?}");
    for f in files {
        assert!(
            std::fs::metadata(&f).unwrap().nlink() >= 2,
            "{} is hard-linked",
            f.display()
        );
    }
    let s = Scratch::new();
    assert_code(&s.clone(&local, &["--revision", &fx.ambiguous_prefix]), 5);
    assert_code(&s.clone(&local, &["--revision", "nope"]), 5);
    assert!(!s.dest().exists());
}

/// `dest` holds what `git clone --branch rev` writes: the same files, modes, symlink and
/// submodule directory, and an index whose stat data matches the files (`git diff-files`
/// reports nothing without a refresh).
fn assert_same_as_git_clone(dest: &Path, url: &str, rev: &str) {
    let scratch = tempfile::tempdir().unwrap();
    let theirs = scratch.path().join("git-clone");
    git_out(
        scratch.path(),
        &[
            "clone",
            "-q",
            "--branch",
            rev,
            url,
            theirs.to_str().unwrap(),
        ],
    );
    let diff = std::process::Command::new("diff")
        .args(["-r", "--no-dereference", "--exclude=.git"])
        .arg(dest)
        .arg(&theirs)
        .output()
        .unwrap();
    assert!(
        diff.status.success(),
        "{rev}: {}",
        String::from_utf8_lossy(&diff.stdout)
    );
    assert_eq!(
        git_out(dest, &["ls-files", "-s"]),
        git_out(&theirs, &["ls-files", "-s"]),
        "{rev}"
    );
    assert_eq!(git_out(dest, &["diff-files", "--name-only"]), "", "{rev}");
    assert_clean(dest);
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().permissions().mode();
    for f in ["run.sh", "empty.txt", "d1/e1/f1.txt"] {
        assert_eq!(mode(&dest.join(f)), mode(&theirs.join(f)), "{rev}: {f}");
    }
    assert_eq!(
        std::fs::read_link(dest.join("link-to-f1")).unwrap(),
        Path::new("d1/e1/f1.txt")
    );
}

/// A fresh checkout is written on every core, except a tree with a .gitattributes (line-end
/// conversion), which goes through libgit2's checkout; a rerun to another revision goes
/// through libgit2 too, with filters off when the tree has no attributes. Each result is
/// what `git clone` writes.
#[test]
fn checkouts_are_what_git_clone_writes() {
    let http = HttpServer::start();
    let url = http.http_url("public/wide.git");
    for rev in ["main", "attrs"] {
        let s = Scratch::new();
        let out = s.clone(&url, &["-v", "--revision", rev]);
        assert_ok(&out);
        assert_eq!(
            out.stderr.contains("fresh checkout in parallel"),
            rev == "main",
            "{rev}: {}",
            out.stderr
        );
        assert_same_as_git_clone(&s.dest(), &url, rev);
        // A rerun to the other revision converts line ends, or stops converting them.
        let other = if rev == "main" { "attrs" } else { "main" };
        assert_ok(&s.clone(&url, &["--revision", other]));
        assert_same_as_git_clone(&s.dest(), &url, other);
    }
}

/// A fresh shallow clone over HTTP sends one request for the pack: libgit2 alone sends its
/// wants and `deepen` twice, the second time with `done`. The result is the same shallow clone,
/// also with credentials (the 401 comes first) and by SHA.
#[test]
fn a_fresh_shallow_clone_is_one_request_for_the_pack() {
    let fx = fixtures();
    let http = HttpServer::start();
    for (path, env, rev) in [
        ("public/deep.git", None, "main".to_string()),
        (
            "private/deep.git",
            Some("bob:plainpass"),
            fx.sha("deep39").to_string(),
        ),
    ] {
        let s = Scratch::new();
        let before = http.count_requests("POST");
        let mut cmd = gitinit();
        if let Some(c) = env {
            cmd.env("POLYAXON_GIT_CREDENTIALS", c);
        }
        cmd.args(["clone", "--url", &http.http_url(path), "--dest"])
            .arg(s.dest())
            .args(["--revision", &rev, "--flags", "--depth 1"]);
        assert_ok(&run(&mut cmd));
        assert_eq!(
            http.count_requests("POST") - before,
            1,
            "{path}: {}",
            http.log()
        );
        assert_eq!(head(&s.dest()), fx.sha("deep39"));
        assert_eq!(git_out(&s.dest(), &["rev-list", "--count", "HEAD"]), "1");
        assert_eq!(
            std::fs::read_to_string(s.dest().join(".git/shallow"))
                .unwrap()
                .trim(),
            fx.sha("deep39")
        );
        git_out(&s.dest(), &["fsck", "--no-progress"]);
        assert_clean(&s.dest());
    }
}

/// A rerun of the revision already checked out, after a job changed the tree (a file edited,
/// one removed, one added, a directory added, a mode changed), puts it back as a fresh clone
/// has it.
#[test]
fn a_rerun_of_the_same_revision_restores_what_a_job_changed() {
    let http = HttpServer::start();
    let url = http.http_url("public/wide.git");
    let s = Scratch::new();
    assert_ok(&s.clone(&url, &["--revision", "main"]));

    use std::os::unix::fs::PermissionsExt;
    type Change<'a> = (&'a str, &'a dyn Fn(&Path));
    let changes: [Change; 5] = [
        ("an edit", &|d| {
            std::fs::write(d.join("d1/e1/f1.txt"), "edited\n").unwrap()
        }),
        ("a removal", &|d| {
            std::fs::remove_file(d.join("d2/e2/f2.txt")).unwrap()
        }),
        ("a new file", &|d| {
            std::fs::write(d.join("d3/new.txt"), "new").unwrap()
        }),
        ("a new directory", &|d| {
            std::fs::create_dir(d.join("scratch")).unwrap()
        }),
        ("a mode", &|d| {
            std::fs::set_permissions(d.join("run.sh"), std::fs::Permissions::from_mode(0o644))
                .unwrap()
        }),
    ];
    for (what, change) in changes {
        change(&s.dest());
        assert_ok(&s.clone(&url, &["--revision", "main"]));
        assert_same_as_git_clone(&s.dest(), &url, "main");
        assert!(!s.dest().join("scratch").exists(), "{what}");
    }
}

/// The pack of a fresh clone with many objects is indexed by gix-pack (every core, while it
/// arrives); a small one (depth 1 here), and a rerun's, whose pack may be thin, by libgit2.
/// Either way the result is git's: the `.idx` is byte for byte what `git index-pack` writes
/// for the same pack, `git fsck` finds every object, and no `.keep` or temporary file stays in
/// `objects/pack`.
#[test]
fn a_large_fresh_pack_is_indexed_as_git_indexes_it_and_others_by_libgit2() {
    let http = HttpServer::start();
    let url = http.http_url("public/many.git");
    let gix_said = "indexed the pack with gix-pack";
    let packs = |dest: &Path, ext: &str| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dest.join(".git/objects/pack"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == ext))
            .collect();
        v.sort();
        v
    };
    let no_leftovers = |dest: &Path| {
        for e in std::fs::read_dir(dest.join(".git/objects/pack")).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(
                name.ends_with(".pack") || name.ends_with(".idx"),
                "left in objects/pack: {name}"
            );
        }
    };

    // The whole history: 4,084 objects.
    let s = Scratch::new();
    let out = s.clone(&url, &["-v", "--revision", "main"]);
    assert_ok(&out);
    assert!(out.stderr.contains(gix_said), "{}", out.stderr);
    let pack = packs(&s.dest(), "pack");
    assert_eq!(pack.len(), 1, "{pack:?}");
    let scratch = tempfile::tempdir().unwrap();
    let theirs = scratch.path().join("git.idx");
    git_out(
        scratch.path(),
        &[
            "index-pack",
            "-o",
            theirs.to_str().unwrap(),
            pack[0].to_str().unwrap(),
        ],
    );
    assert!(
        std::fs::read(&theirs).unwrap() == std::fs::read(&packs(&s.dest(), "idx")[0]).unwrap(),
        "gix-pack's index differs from git's"
    );
    git_out(&s.dest(), &["fsck", "--full", "--strict", "--no-progress"]);
    assert_eq!(git_out(&s.dest(), &["rev-list", "--count", "HEAD"]), "2");
    no_leftovers(&s.dest());

    // Depth 1: 2,042 objects, libgit2's; then the rest of the history, a rerun's pack.
    let s = Scratch::new();
    for depth in ["--depth 1", "--depth 5"] {
        let out = s.clone(&url, &["-v", "--revision", "main", "--flags", depth]);
        assert_ok(&out);
        assert!(!out.stderr.contains(gix_said), "{depth}: {}", out.stderr);
        git_out(&s.dest(), &["fsck", "--full", "--strict", "--no-progress"]);
        no_leftovers(&s.dest());
    }
    assert_eq!(packs(&s.dest(), "pack").len(), 2);
    assert_eq!(git_out(&s.dest(), &["rev-list", "--count", "HEAD"]), "2");
}
