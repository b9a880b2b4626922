//! `--recurse-submodules`: nested, relative URLs, at the recorded commit, with credentials, over
//! SSH, shallow; a submodule that cannot be fetched fails the run naming it.

#[path = "support/mod.rs"]
mod common;

use std::path::Path;

use common::sshd::{keygen, SshServer};
use common::{assert_no_secret, fixtures, git_out, gitinit, ok, run, HttpServer};

fn assert_tree(dest: &Path) {
    let fx = fixtures();
    assert_eq!(git_out(dest, &["rev-parse", "HEAD"]), fx.sha("p1"));
    // At the commit the superproject records (s1), not the submodule's branch tip (s2).
    assert_eq!(
        git_out(&dest.join("libs/sub"), &["rev-parse", "HEAD"]),
        fx.sha("s1")
    );
    assert_eq!(
        git_out(&dest.join("libs/sub/nested"), &["rev-parse", "HEAD"]),
        fx.sha("n1")
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("libs/sub/nested/nested.txt")).unwrap(),
        "nested\n"
    );
    assert_eq!(git_out(dest, &["status", "--porcelain"]), "");
}

#[test]
fn nested_relative_submodules_over_http_with_credentials() {
    let http = HttpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("w");
    let url = http.http_url("private/super.git");
    let out = run(gitinit()
        .env("POLYAXON_GIT_CREDENTIALS", "bob:plainpass")
        .args([
            "clone",
            "--url",
            &url,
            "--flags",
            "--recurse-submodules",
            "--report",
            "-",
            "--dest",
        ])
        .arg(&dest));
    ok(&out);
    assert_tree(&dest);
    let report: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    let subs = report["submodules"].as_array().unwrap();
    assert_eq!(subs.len(), 2, "{report}");
    assert_eq!(subs[0]["path"], "libs/sub");
    assert_eq!(subs[0]["url"], http.http_url("private/sub.git"));
    assert_eq!(subs[0]["commit"], fixtures().sha("s1"));
    assert_eq!(subs[1]["path"], "libs/sub/nested");
    assert_no_secret(&[&out.stdout, &out.stderr], &dest, "plainpass");

    // Without the flag the submodules stay empty directories.
    let plain = dir.path().join("plain");
    ok(&run(gitinit()
        .args([
            "clone",
            "--url",
            &http.http_url("public/super.git"),
            "--dest",
        ])
        .arg(&plain)));
    assert_eq!(
        std::fs::read_dir(plain.join("libs/sub")).unwrap().count(),
        0
    );
}

#[test]
fn shallow_submodules_fetch_the_recorded_commit_at_depth_1() {
    let http = HttpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("w");
    let out = run(gitinit()
        .args(["clone", "--url", &http.http_url("public/super.git")])
        .args([
            "--flags",
            "--depth 1 --recurse-submodules --shallow-submodules",
            "--dest",
        ])
        .arg(&dest));
    ok(&out);
    assert_tree(&dest);
    assert_eq!(
        git_out(
            &dest.join("libs/sub"),
            &["rev-parse", "--is-shallow-repository"]
        ),
        "true"
    );
    assert_eq!(
        git_out(&dest.join("libs/sub"), &["rev-list", "--count", "HEAD"]),
        "1"
    );
    // A rerun is a no-op that still checks every submodule.
    ok(&run(gitinit()
        .args(["clone", "--url", &http.http_url("public/super.git")])
        .args([
            "--flags",
            "--depth 1 --recurse-submodules --shallow-submodules",
            "--dest",
        ])
        .arg(&dest)));
    assert_tree(&dest);
}

#[test]
fn submodules_over_ssh_and_local_paths() {
    let fx = fixtures();
    let dir = tempfile::tempdir().unwrap();
    let (key, key_pub) = keygen(dir.path(), "id_ed25519", "ed25519", "", false);
    let ssh = SshServer::start(&fx.repos, &[&key_pub]);
    let kh = dir.path().join("known_hosts");
    std::fs::write(&kh, ssh.known_hosts_line()).unwrap();
    let dest = dir.path().join("ssh");
    ok(&run(gitinit()
        .args([
            "clone",
            "--url",
            &ssh.url("super.git"),
            "--flags",
            "--recurse-submodules",
        ])
        .args([
            "--ssh-key",
            key.to_str().unwrap(),
            "--known-hosts",
            kh.to_str().unwrap(),
            "--dest",
        ])
        .arg(&dest)));
    assert_tree(&dest);

    let dest = dir.path().join("local");
    ok(&run(gitinit()
        .args([
            "clone",
            "--url",
            fx.repo("super.git").to_str().unwrap(),
            "--flags",
            "--recurse-submodules",
            "--dest",
        ])
        .arg(&dest)));
    assert_tree(&dest);
}

#[test]
fn a_submodule_that_cannot_be_fetched_fails_naming_it() {
    let http = HttpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let out = run(gitinit()
        .args([
            "clone",
            "--url",
            &http.http_url("public/broken-super.git"),
            "--flags",
            "--recurse-submodules",
            "--dest",
        ])
        .arg(dir.path().join("w")));
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(
        out.stderr.contains("submodule `vendor/missing`"),
        "{}",
        out.stderr
    );
}

/// What a run killed while fetching a submodule leaves: the superproject checked out but still
/// marked unfinished, the submodule's repository created with no objects, its directory empty.
/// The next run finishes the job without help.
#[test]
fn a_run_killed_during_the_submodules_is_recovered() {
    let http = HttpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("w");
    let url = http.http_url("public/super.git");
    let clone = || {
        run(gitinit()
            .args([
                "clone",
                "--url",
                &url,
                "--flags",
                "--recurse-submodules",
                "--dest",
            ])
            .arg(&dest))
    };
    ok(&clone());
    let modules = dest.join(".git/modules/libs/sub");
    assert!(
        modules.is_dir(),
        "the submodule's repository lives in .git/modules"
    );
    std::fs::remove_dir_all(modules.join("objects")).unwrap();
    std::fs::create_dir_all(modules.join("objects/pack")).unwrap();
    std::fs::remove_dir_all(modules.join("modules")).unwrap();
    for entry in std::fs::read_dir(dest.join("libs/sub")).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != ".git" {
            let p = entry.path();
            if p.is_dir() {
                std::fs::remove_dir_all(p).unwrap();
            } else {
                std::fs::remove_file(p).unwrap();
            }
        }
    }
    std::fs::write(dest.join(".git/gitinit-incomplete"), "").unwrap();

    let out = clone();
    ok(&out);
    assert!(out.stderr.contains("resuming"), "{}", out.stderr);
    assert_tree(&dest);
    assert!(!dest.join(".git/gitinit-incomplete").exists());
}
