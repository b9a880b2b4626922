//! Git-style flags (SPEC §6): each supported flag changes what happens; refused flags have no
//! side effect.

#[path = "support/mod.rs"]
mod common;

use std::path::Path;

use common::{fixtures, git_out, gitinit, ok, run, HttpServer, Output};

fn clone(url: &str, dest: &Path, extra: &[&str]) -> Output {
    run(gitinit()
        .args(["clone", "--url", url, "--dest"])
        .arg(dest)
        .args(extra))
}

fn refs(dest: &Path, prefix: &str) -> Vec<String> {
    git_out(dest, &["for-each-ref", "--format=%(refname)", prefix])
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn tags_follow_by_default_and_no_tags_stops_them() {
    let http = HttpServer::start();
    let url = http.http_url("public/basic.git");
    let dir = tempfile::tempdir().unwrap();
    ok(&clone(&url, &dir.path().join("a"), &[]));
    assert_eq!(
        refs(&dir.path().join("a"), "refs/tags"),
        ["refs/tags/light", "refs/tags/v1.0"]
    );
    ok(&clone(
        &url,
        &dir.path().join("b"),
        &["--flags", "--no-tags"],
    ));
    assert!(refs(&dir.path().join("b"), "refs/tags").is_empty());
}

#[test]
fn no_single_branch_fetches_every_branch() {
    let http = HttpServer::start();
    let url = http.http_url("public/basic.git");
    let dir = tempfile::tempdir().unwrap();
    ok(&clone(
        &url,
        &dir.path().join("a"),
        &["--flags", "--single-branch"],
    ));
    assert_eq!(
        refs(&dir.path().join("a"), "refs/remotes"),
        ["refs/remotes/origin/trunk"]
    );
    ok(&clone(
        &url,
        &dir.path().join("b"),
        &["--flags", "--no-single-branch"],
    ));
    assert_eq!(
        refs(&dir.path().join("b"), "refs/remotes"),
        [
            "refs/remotes/origin/Release-1.0",
            "refs/remotes/origin/feature",
            "refs/remotes/origin/trunk"
        ]
    );
}

#[test]
fn branch_flag_is_the_revision_unless_revision_is_given() {
    let fx = fixtures();
    let http = HttpServer::start();
    let url = http.http_url("public/basic.git");
    let dir = tempfile::tempdir().unwrap();
    for (i, flags) in [
        "-b feature",
        "--branch feature",
        "--branch=feature",
        r#"["-b", "feature"]"#,
    ]
    .iter()
    .enumerate()
    {
        let dest = dir.path().join(format!("b{i}"));
        ok(&clone(&url, &dest, &["--flags", flags]));
        assert_eq!(
            git_out(&dest, &["rev-parse", "HEAD"]),
            fx.sha("c4"),
            "{flags}"
        );
    }
    let dest = dir.path().join("both");
    ok(&clone(
        &url,
        &dest,
        &["--flags", "-b feature", "--revision", "v1.0"],
    ));
    assert_eq!(git_out(&dest, &["rev-parse", "HEAD"]), fx.sha("c2"));
}

/// A server without `filter` (the fixtures' git-http-backend has no uploadpack.allowFilter):
/// a warning, a full fetch, and the partial clone's configuration all the same, as git does.
#[test]
fn filter_on_a_server_without_it_is_a_warning_with_the_same_result() {
    let fx = fixtures();
    let http = HttpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("w");
    let out = clone(
        &http.http_url("public/basic.git"),
        &dest,
        &["--flags", "--filter=blob:none --depth 1"],
    );
    ok(&out);
    assert!(
        out.stderr.contains("does not support --filter=blob:none"),
        "{}",
        out.stderr
    );
    assert_eq!(git_out(&dest, &["rev-parse", "HEAD"]), fx.sha("c3"));
    assert_eq!(
        git_out(&dest, &["config", "remote.origin.partialclonefilter"]),
        "blob:none"
    );
    assert_eq!(git_out(&dest, &["status", "--porcelain"]), "");
}

#[test]
fn quiet_and_verbose() {
    let http = HttpServer::start();
    let url = http.http_url("public/basic.git");
    let dir = tempfile::tempdir().unwrap();
    let out = clone(&url, &dir.path().join("q"), &["--flags", "--quiet"]);
    ok(&out);
    assert!(!out.stderr.contains("checking out files"), "{}", out.stderr);
    let out = clone(&url, &dir.path().join("v"), &["--flags", "--verbose"]);
    ok(&out);
    let last = out.stderr.lines().last().unwrap();
    let v: serde_json::Value = serde_json::from_str(last).expect("the JSON result ends stderr");
    assert!(v["commit"].is_string());
    assert_eq!(out.stdout, "", "stdout carries results only when asked");
}

#[test]
fn refused_flags_never_run_anything() {
    let http = HttpServer::start();
    let url = http.http_url("public/basic.git");
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("pwned");
    let m = marker.display().to_string();
    for flags in [
        format!("--upload-pack='touch {m}'"),
        format!("-u 'touch {m}'"),
        format!("--template={}", dir.path().display()),
        format!("--separate-git-dir {}", dir.path().join("sep").display()),
        format!("--reference {}", dir.path().display()),
        format!("-c core.sshCommand='touch {m}'"),
        format!("--config core.hooksPath={}", dir.path().display()),
        format!("-c url.file:///.insteadOf={url}"),
    ] {
        let dest = dir.path().join("w");
        let out = clone(&url, &dest, &["--flags", &flags]);
        assert_eq!(out.code, 2, "{flags}: {}", out.stderr);
        assert!(out.stderr.contains("refused"), "{flags}: {}", out.stderr);
        assert!(!marker.exists(), "{flags} ran a program");
        assert!(!dest.exists(), "{flags} wrote the destination");
        assert!(!dir.path().join("sep").exists());
    }
}
