//! Connection specs as users write them: the Polyaxon connections catalog with its precedence,
//! and the `initializer git` drop-in, end to end against the HTTP server.

#[path = "support/mod.rs"]
mod common;

use std::path::Path;

use common::{fixtures, git_out, gitinit, ok, run, HttpServer};

fn catalog(dir: &Path, http: &HttpServer) -> std::path::PathBuf {
    let path = dir.join("connections.yaml");
    std::fs::write(
        &path,
        format!(
            "connections:\n  - name: repo1\n    kind: git\n    description: the basic fixture\n    schema:\n      url: {}\n      revision: feature\n      flags: [\"--depth 1\", \"--no-tags\"]\n    secret:\n      name: http-connection\n  - name: deep\n    kind: git\n    schema:\n      url: {}\n",
            http.http_url("public/basic.git"),
            http.http_url("public/deep.git")
        ),
    )
    .unwrap();
    path
}

#[test]
fn a_connection_from_the_catalog_with_its_defaults() {
    let fx = fixtures();
    let http = HttpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let cat = catalog(dir.path(), &http);
    let dest = dir.path().join("w");
    let out = run(gitinit()
        .args([
            "clone",
            "--connections",
            cat.to_str().unwrap(),
            "--connection",
            "repo1",
            "--report",
            "-",
            "--dest",
        ])
        .arg(&dest));
    ok(&out);
    assert_eq!(git_out(&dest, &["rev-parse", "HEAD"]), fx.sha("c4"));
    assert_eq!(
        git_out(&dest, &["rev-list", "--count", "HEAD"]),
        "1",
        "the catalog's --depth 1"
    );
    assert_eq!(git_out(&dest, &["tag"]), "", "the catalog's --no-tags");
    let report: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(report["connection"], "repo1");
    assert_eq!(report["depth"], 1);
}

#[test]
fn env_vars_and_options_override_the_catalog() {
    let fx = fixtures();
    let http = HttpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let cat = catalog(dir.path(), &http);
    // An env var beats the catalog's revision...
    let dest = dir.path().join("env");
    let out = run(gitinit()
        .env("GITINIT_CONNECTIONS", &cat)
        .env("GITINIT_CONNECTION", "repo1")
        .env("GITINIT_REVISION", "v1.0")
        .args(["clone", "--dest"])
        .arg(&dest));
    ok(&out);
    assert_eq!(git_out(&dest, &["rev-parse", "HEAD"]), fx.sha("c2"));
    // ...and an option beats the env var; options replace the catalog's flags.
    let dest = dir.path().join("opt");
    let out = run(gitinit()
        .env("GITINIT_CONNECTIONS", &cat)
        .env("GITINIT_CONNECTION", "repo1")
        .env("GITINIT_REVISION", "v1.0")
        .args([
            "clone",
            "--revision",
            "light",
            "--flags",
            "--depth 2",
            "--dest",
        ])
        .arg(&dest));
    ok(&out);
    assert_eq!(git_out(&dest, &["rev-parse", "HEAD"]), fx.sha("c1"));
    assert_eq!(git_out(&dest, &["rev-list", "--count", "HEAD"]), "2");
    // --url beats the catalog's URL.
    let dest = dir.path().join("url");
    let out = run(gitinit()
        .args([
            "clone",
            "--connections",
            cat.to_str().unwrap(),
            "--connection",
            "repo1",
        ])
        .args([
            "--url",
            &http.http_url("public/deep.git"),
            "--revision",
            "main",
            "--dest",
        ])
        .arg(&dest));
    ok(&out);
    assert_eq!(git_out(&dest, &["rev-parse", "HEAD"]), fx.sha("deep39"));
}

#[test]
fn catalog_mistakes_exit_2_with_where() {
    let http = HttpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let cat = catalog(dir.path(), &http);
    let clone = |args: &[&str]| {
        run(gitinit()
            .args(["clone", "--dest"])
            .arg(dir.path().join("w"))
            .args(args))
    };

    let out = clone(&[
        "--connections",
        cat.to_str().unwrap(),
        "--connection",
        "rep1",
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("repo1, deep"), "{}", out.stderr);

    let out = clone(&["--connections", cat.to_str().unwrap()]);
    assert_eq!(
        out.code, 2,
        "two connections and no --connection: {}",
        out.stderr
    );

    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "connections:\n  - name: x\n    kind: git\n    schema:\n      url: https://h/r.git\n      brnach: main\n").unwrap();
    let out = clone(&["--connections", bad.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!("{}:6:", bad.display())),
        "{}",
        out.stderr
    );

    let out = clone(&[
        "--connections",
        dir.path().join("missing.yaml").to_str().unwrap(),
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(!dir.path().join("w").exists());
}

#[test]
fn a_single_connection_file_needs_no_name() {
    let fx = fixtures();
    let http = HttpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let one = dir.path().join("one.yaml");
    std::fs::write(
        &one,
        format!(
            "name: solo\nkind: git\nschema:\n  url: {}\n",
            http.http_url("public/basic.git")
        ),
    )
    .unwrap();
    let dest = dir.path().join("w");
    ok(&run(gitinit()
        .args(["clone", "--connections", one.to_str().unwrap(), "--dest"])
        .arg(&dest)));
    assert_eq!(git_out(&dest, &["rev-parse", "HEAD"]), fx.sha("c3"));
}

/// Exactly what Polyaxon's converter runs: command `polyaxon initializer git`, args
/// `--repo-path=…`, `--url=…`, `--revision=…`, `--connection=…`, `--flags=<JSON list>`.
#[test]
fn polyaxon_drop_in() {
    let fx = fixtures();
    let http = HttpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let polyaxon = dir.path().join("polyaxon");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_gitinit"), &polyaxon).unwrap();
    let dest = dir.path().join("artifacts/repo1");
    let mut cmd = std::process::Command::new(&polyaxon);
    common::clean_env(&mut cmd, dir.path());
    cmd.args(["initializer", "git"])
        .arg(format!("--repo-path={}", dest.display()))
        .arg(format!("--url={}", http.http_url("private/basic.git")))
        .arg("--revision=feature")
        .arg("--connection=repo1")
        .arg(r#"--flags=["--depth 1","--no-tags"]"#)
        .env("POLYAXON_GIT_CREDENTIALS", "bob:plainpass");
    let out = run(&mut cmd);
    ok(&out);
    assert_eq!(git_out(&dest, &["rev-parse", "HEAD"]), fx.sha("c4"));
    assert_eq!(git_out(&dest, &["rev-list", "--count", "HEAD"]), "1");
    assert_eq!(
        git_out(&dest, &["symbolic-ref", "HEAD"]),
        "refs/heads/feature"
    );
    common::assert_no_secret(&[&out.stdout, &out.stderr], &dest, "plainpass");
}
