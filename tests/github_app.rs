//! GitHub App credentials (SPEC §14) end to end: the binary signs the App's JWT, a stand-in of
//! GitHub's two REST endpoints (`support/github_app.py`) verifies it with the App's PUBLIC key
//! through the openssl command and mints a token, and the harness's git server accepts that
//! token and nothing else under `/private/`. The token and the JWTs are grepped for in every
//! output and every file of the destination.

#[path = "support/mod.rs"]
mod common;

use std::path::Path;

use common::github_app::{app_key, ApiOptions, GitHubApi};
use common::{assert_no_secret, fixtures, git_out, gitinit, ok, run, HttpServer, Output};

const APP_ID: &str = "12345";

/// A git server, the App's key pair and the API stand-in for it.
struct Setup {
    git: HttpServer,
    api: GitHubApi,
    keys: tempfile::TempDir,
    key: std::path::PathBuf,
}

fn setup(opts: ApiOptions) -> Setup {
    let git = HttpServer::start();
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = app_key(keys.path(), "app");
    let api = GitHubApi::start(&git, APP_ID, &public, opts);
    Setup {
        git,
        api,
        keys,
        key,
    }
}

/// `gitinit clone` of `url` into a new directory's `work`, at trace level, with the report on
/// stdout and a termination log.
fn clone(url: &str, env: &[(&str, &str)], extra: &[&str]) -> (Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = gitinit();
    cmd.envs(env.iter().copied())
        .env(
            "GITINIT_TERMINATION_LOG",
            dir.path().join("termination-log"),
        )
        .args(["clone", "-vv", "--report", "-", "--url", url, "--dest"])
        .arg(dir.path().join("work"))
        .args(extra);
    (run(&mut cmd), dir)
}

/// The App's options against the stand-in.
fn app_args<'a>(s: &'a Setup, key: &'a Path) -> Vec<&'a str> {
    vec![
        "--github-app-id",
        &s.api.app_id,
        "--github-app-private-key-file",
        key.to_str().unwrap(),
        "--github-api-url",
        leak(s.api.url()),
    ]
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// No token minted, no JWT sent, is in any output, the destination or the termination log.
fn assert_no_app_secret(s: &Setup, out: &Output, dir: &Path) {
    let secrets: Vec<String> = s.api.tokens().into_iter().chain(s.api.jwts()).collect();
    for secret in &secrets {
        assert_no_secret(&[&out.stdout, &out.stderr], dir, secret);
    }
}

fn assert_failed(out: &Output, code: i32) {
    assert_eq!(
        out.code, code,
        "expected exit {code}:\nstdout: {}\nstderr: {}",
        out.stdout, out.stderr
    );
}

#[test]
fn an_app_clones_a_private_repository_with_its_installation_looked_up_or_given() {
    let fx = fixtures();
    let s = setup(ApiOptions::default());
    let url = s.git.http_url("private/basic.git");
    // The git server refuses without the App's token, and with a made-up one.
    let (out, _) = clone(&url, &[], &[]);
    assert_failed(&out, 3);
    let (out, _) = clone(
        &url,
        &[("POLYAXON_GIT_CREDENTIALS", "x-access-token:ghs_madeup")],
        &[],
    );
    assert_failed(&out, 3);

    // The installation looked up from the repository's owner (`private`).
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (out, dir) = clone(&url, &[], &app_args(&s, &s.key));
    ok(&out);
    let work = dir.path().join("work");
    assert_eq!(git_out(&work, &["rev-parse", "HEAD"]), fx.sha("c3"));
    assert_eq!(
        s.api.requests(),
        [
            "GET /api/v3/repos/private/basic/installation 200",
            "POST /api/v3/app/installations/4242/access_tokens 201"
        ],
        "{}",
        s.api.stderr()
    );
    assert_eq!(s.api.tokens().len(), 1);
    assert!(
        s.api
            .bodies()
            .iter()
            .all(|b| b == r#"{"permissions":{"contents":"read"}}"#),
        "a read-only token is asked for: {:?}",
        s.api.bodies()
    );
    // The claims GitHub checks, as the stand-in decoded them from a verified JWT.
    for c in s.api.claims() {
        let (iat, exp) = (c["iat"].as_i64().unwrap(), c["exp"].as_i64().unwrap());
        assert!((started - 62..=started - 55).contains(&iat), "iat {iat}");
        assert!(exp - iat <= 600, "{c}");
        assert_eq!(c["iss"], serde_json::json!(12345));
    }
    assert!(
        out.stderr.contains("insecure"),
        "http:// API: {}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("authenticated as GitHub App 12345 (installation 4242)"),
        "{}",
        out.stderr
    );
    let report: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(report["commit"], fx.sha("c3"));
    assert_eq!(report["url"], url);
    assert_no_app_secret(&s, &out, dir.path());

    // The installation given, and the key's contents in the env var, flattened onto one line
    // as people paste it: no look-up.
    let flat = std::fs::read_to_string(&s.key)
        .unwrap()
        .trim()
        .replace('\n', "\\n");
    let (out, dir) = clone(
        &url,
        &[
            ("GITINIT_GITHUB_APP_ID", APP_ID),
            ("GITINIT_GITHUB_APP_INSTALLATION_ID", "4242"),
            ("GITINIT_GITHUB_APP_PRIVATE_KEY", &flat),
            ("GITINIT_GITHUB_API_URL", &s.api.url()),
        ],
        &[],
    );
    ok(&out);
    assert_eq!(s.api.requests().len(), 3, "{:?}", s.api.requests());
    assert!(s.api.requests()[2].starts_with("POST /api/v3/app/installations/4242/"));
    assert_no_app_secret(&s, &out, dir.path());

    // `check` proves the same credentials without writing anything.
    let out = run(gitinit()
        .args(["check", "--url", &url])
        .args(app_args(&s, &s.key)));
    ok(&out);
    assert!(out.stdout.starts_with(fx.sha("c3")), "{}", out.stdout);
    assert_no_app_secret(&s, &out, s.keys.path());
}

#[test]
fn same_host_private_submodules_get_the_apps_token() {
    let fx = fixtures();
    let s = setup(ApiOptions::default());
    let mut extra = app_args(&s, &s.key);
    extra.extend(["--flags", "--recurse-submodules"]);
    let (out, dir) = clone(&s.git.http_url("private/super.git"), &[], &extra);
    ok(&out);
    let work = dir.path().join("work");
    assert_eq!(
        git_out(&work.join("libs/sub"), &["rev-parse", "HEAD"]),
        fx.sha("s1")
    );
    let report: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(
        report["submodules"].as_array().unwrap().len(),
        2,
        "{report}"
    );
    assert_eq!(s.api.tokens().len(), 1, "one token for the whole run");
    assert_no_app_secret(&s, &out, dir.path());
}

#[test]
fn a_jwt_github_refuses_is_exit_3_with_the_hint() {
    let s = setup(ApiOptions::default());
    let url = s.git.http_url("private/basic.git");
    let hint = |out: &Output| {
        for word in ["clock", "App id", "private key"] {
            assert!(out.stderr.contains(word), "{word}: {}", out.stderr);
        }
    };
    // Another key than the App's: the signature does not verify.
    let (other, _) = app_key(s.keys.path(), "other");
    let (out, dir) = clone(&url, &[], &app_args(&s, &other));
    assert_failed(&out, 3);
    hint(&out);
    assert!(
        out.stderr.contains("A JSON web token could not be decoded"),
        "GitHub's message is quoted: {}",
        out.stderr
    );
    assert!(s.api.requests().contains(&"signature rejected".to_string()));
    // The App's key, another App's id.
    let mut args = app_args(&s, &s.key);
    args[1] = "999";
    let (out2, _) = clone(&url, &[], &args);
    assert_failed(&out2, 3);
    hint(&out2);
    assert!(s.api.tokens().is_empty());
    assert_eq!(s.git.count_requests("GET"), 0, "git was never tried");
    assert_no_app_secret(&s, &out, dir.path());
    let termination = std::fs::read_to_string(dir.path().join("termination-log")).unwrap();
    assert!(termination.contains("clock"), "{termination}");
}

#[test]
fn an_app_not_installed_on_the_owner_is_exit_3() {
    let s = setup(ApiOptions {
        installations: vec![("someone-else".into(), 77)],
        ..ApiOptions::default()
    });
    let url = s.git.http_url("private/basic.git");
    let (out, _) = clone(&url, &[], &app_args(&s, &s.key));
    assert_failed(&out, 3);
    assert!(
        out.stderr.contains("not installed on private"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("--github-app-installation-id"),
        "{}",
        out.stderr
    );
    let mut args = app_args(&s, &s.key);
    args.extend(["--github-app-installation-id", "78"]);
    let (out, _) = clone(&url, &[], &args);
    assert_failed(&out, 3);
    assert!(out.stderr.contains("no installation 78"), "{}", out.stderr);
}

/// GitHub's clock, seen in its `Date` header, ten minutes ahead of or behind this machine's:
/// the first JWT is refused (expired, or issued in the future), the second one, signed at
/// GitHub's time, is accepted; the log says to fix the clock.
#[test]
fn a_node_clock_off_githubs_is_corrected_once() {
    for offset in [600, -600] {
        let s = setup(ApiOptions {
            clock_offset: offset,
            ..ApiOptions::default()
        });
        let (out, dir) = clone(
            &s.git.http_url("private/basic.git"),
            &[],
            &app_args(&s, &s.key),
        );
        ok(&out);
        let requests = s.api.requests();
        assert_eq!(
            requests[0], "GET /api/v3/repos/private/basic/installation 401",
            "{requests:?}"
        );
        assert_eq!(requests.len(), 3, "{requests:?}");
        assert!(out.stderr.contains("NTP"), "{}", out.stderr);
        assert_no_app_secret(&s, &out, dir.path());
    }
}

#[test]
fn the_api_over_https_trusts_the_ca_file() {
    let fx = fixtures();
    let s = setup(ApiOptions {
        tls: true,
        ..ApiOptions::default()
    });
    let url = s.git.http_url("private/basic.git");
    let ca = common::ca_file();
    let mut args = app_args(&s, &s.key);
    args.extend(["--ca-file", ca.to_str().unwrap()]);
    let (out, dir) = clone(&url, &[], &args);
    ok(&out);
    assert!(!out.stderr.contains("insecure"), "{}", out.stderr);
    assert_eq!(
        git_out(&dir.path().join("work"), &["rev-parse", "HEAD"]),
        fx.sha("c3")
    );
    // Without the CA, the API's certificate is not trusted: exit 8, nothing sent.
    let (out, _) = clone(&url, &[], &app_args(&s, &s.key));
    assert_failed(&out, 8);
    assert!(out.stderr.contains("--ca-file"), "{}", out.stderr);
    assert_eq!(s.api.tokens().len(), 1);

    // HTTPS_PROXY applies to the API (the http:// git server goes direct).
    let proxy = common::Proxy::start(None);
    let (out, dir) = clone(&url, &[("HTTPS_PROXY", &proxy.url())], &args);
    ok(&out);
    assert!(
        proxy
            .log()
            .contains(&format!("CONNECT 127.0.0.1:{}", s.api.port)),
        "the API's calls went through the proxy: {}",
        proxy.log()
    );
    assert_no_app_secret(&s, &out, dir.path());
}

#[test]
fn a_busy_api_is_retried_then_exit_6() {
    let fx = fixtures();
    let s = setup(ApiOptions {
        fail_first: 1,
        ..ApiOptions::default()
    });
    let url = s.git.http_url("private/basic.git");
    let (out, dir) = clone(&url, &[], &app_args(&s, &s.key));
    ok(&out);
    assert_eq!(
        git_out(&dir.path().join("work"), &["rev-parse", "HEAD"]),
        fx.sha("c3")
    );
    assert!(out.stderr.contains("retrying"), "{}", out.stderr);

    let s = setup(ApiOptions {
        fail_first: 100,
        fail_status: 429,
        ..ApiOptions::default()
    });
    let mut args = app_args(&s, &s.key);
    args.extend(["--retries", "1"]);
    let (out, _) = clone(&s.git.http_url("private/basic.git"), &[], &args);
    assert_failed(&out, 6);
    assert!(out.stderr.contains("HTTP 429"), "{}", out.stderr);
    assert_eq!(s.api.requests().len(), 2, "{:?}", s.api.requests());
}

/// Arguments, env vars, the exit code and what the message says.
type Refusal<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], i32, &'a str);

/// What cannot work is refused before anything is sent: exit 2 for options that do not go
/// together, exit 3 (as for an SSH key, SPEC §3) for a key that cannot be used.
#[test]
fn options_that_cannot_work_are_refused_with_what_to_do() {
    let keys = tempfile::tempdir().unwrap();
    let (key, _) = app_key(keys.path(), "app");
    let key = key.to_str().unwrap();
    let api = ["--github-api-url", "https://127.0.0.1:1/api/v3"];
    let https = "https://127.0.0.1:1/org/repo.git";
    let cases: &[Refusal] = &[
        (
            &["--github-app-id", "1", "--github-api-url", api[1]],
            &[],
            2,
            "--github-app-private-key-file",
        ),
        (
            &["--github-app-private-key-file", key],
            &[],
            2,
            "--github-app-id",
        ),
        (
            &["--github-app-installation-id", "5"],
            &[],
            2,
            "--github-app-id",
        ),
        (
            &["--github-app-id", "1", "--github-app-private-key-file", key],
            &[],
            2,
            "--github-api-url",
        ),
        (
            &[
                "--github-app-id",
                "1",
                "--github-app-private-key-file",
                key,
                "--github-app-installation-id",
                "abc",
            ],
            &[],
            2,
            "installation id",
        ),
        (
            &["--github-app-id", "1", "--github-app-private-key-file", key],
            &[("POLYAXON_GIT_CREDENTIALS", "u:p")],
            2,
            "give one of them",
        ),
        (
            &[
                "--github-app-id",
                "1",
                "--github-app-private-key-file",
                "/nonexistent/app.pem",
            ],
            &[],
            3,
            "cannot read",
        ),
        (
            &["--github-app-id", "1"],
            &[("GITINIT_GITHUB_APP_PRIVATE_KEY", "not a key")],
            3,
            "not a PEM",
        ),
        (
            &["--github-app-id", "1", "--github-api-url", "ftp://x/api"],
            &[("GITINIT_GITHUB_APP_PRIVATE_KEY_FILE", key)],
            2,
            "not an https:// URL",
        ),
    ];
    for (args, env, code, says) in cases {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = gitinit();
        cmd.envs(env.iter().copied())
            .args(["clone", "--url", https, "--dest"])
            .arg(dir.path().join("w"))
            .args(*args);
        if !args.contains(&"--github-api-url") && *says != "--github-api-url" {
            cmd.args(api);
        }
        let out = run(&mut cmd);
        assert_eq!(out.code, *code, "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains(says),
            "{args:?}: {says}: {}",
            out.stderr
        );
    }
    // An SSH URL: the App's token is for HTTPS; the message gives the https:// spelling.
    let out = run(gitinit().args([
        "check",
        "--url",
        "git@github.com:org/repo.git",
        "--github-app-id",
        "1",
        "--github-app-private-key-file",
        key,
    ]));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("https://github.com/org/repo.git"),
        "{}",
        out.stderr
    );
}
