//! SPEC §13: inside a Polyaxon run, `initializer git` reports the coderef it checked out, or its
//! failure line as a warning status, to the run's Polyaxon API; a real one (`haupt sandbox`,
//! one per test process), read back through Polyaxon's own client. And what an API that is
//! down, slow or refusing does: nothing to the exit code.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::polyaxon::PolyaxonApi;
use support::*;

const ALICE_PASSWORD: &str = "s3cr:et@/%x";
const TOKEN: &str = "plx-token-9f8e7d6c";

/// The env Polyaxon's converter gives a git init container (`_get_service_env_vars`), for the
/// run `owner.project.runs.uuid` of the API at `host`; the token in the auth file that
/// Polyaxon's auth init container writes under the context root.
fn in_polyaxon(cmd: &mut std::process::Command, host: &str, instance: &str, ctx: &Path) {
    std::fs::create_dir_all(ctx.join(".configs")).unwrap();
    std::fs::write(
        ctx.join(".configs/.auth"),
        format!(r#"{{"POLYAXON_AUTH_USERNAME":"root","POLYAXON_AUTH_TOKEN":"{TOKEN}"}}"#),
    )
    .unwrap();
    cmd.env("POLYAXON_HOST", host)
        .env("POLYAXON_IS_MANAGED", "true")
        .env("POLYAXON_API_VERSION", "v1")
        .env("POLYAXON_RUN_INSTANCE", instance)
        .env("POLYAXON_HEADER", "X-POLYAXON-SERVICE")
        .env("POLYAXON_HEADER_SERVICE", "initializer")
        .env("POLYAXON_AUTHENTICATION_TYPE", "Token")
        .env("POLYAXON_K8S_NODE_NAME", "node-1")
        .env("POLYAXON_K8S_POD_ID", "pod-1")
        .env("POLYAXON_CONTEXT_ROOT", ctx);
}

/// `gitinit <command> git --repo-path DIR --url URL [args]` (command `initializer git` or
/// `clone`), in a Polyaxon run when `instance` is given.
fn gitinit_in(
    command: &[&str],
    url: &str,
    args: &[&str],
    polyaxon: Option<(&str, &str)>,
    extra_env: &[(&str, &str)],
) -> (Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = gitinit();
    cmd.args(command)
        .args(["--repo-path", dir.path().join("code").to_str().unwrap()])
        .args(["--url", url])
        .args(args);
    if let Some((host, instance)) = polyaxon {
        in_polyaxon(&mut cmd, host, instance, &dir.path().join("plx-context"));
    }
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    (run(&mut cmd), dir)
}

const INIT: &[&str] = &["initializer", "git"];

fn coderefs(read: &Value) -> Vec<Value> {
    read["lineage"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "coderef")
        .cloned()
        .collect()
}

fn warnings(read: &Value) -> Vec<Value> {
    read["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["type"] == "warning")
        .cloned()
        .collect()
}

#[test]
fn a_runs_lineage_and_statuses_show_what_gitinit_did() {
    let fx = fixtures();
    let http = HttpServer::start();
    let api = PolyaxonApi::shared();
    let runs = api.create_runs("default", "gitinit", 5);
    let instance = |i: usize| format!("default.gitinit.runs.{}", runs[i]);
    let host = api.host();
    let private = http
        .http_url("private/basic.git")
        .replace("http://", "http://alice:s3cr%3Aet%40%2F%25x@");

    // 0: a clone of the default branch, credentials in the URL.
    let (ok0, d0) = gitinit_in(
        INIT,
        &private,
        &["--connection", "repo"],
        Some((&host, &instance(0))),
        &[],
    );
    ok(&ok0);
    // 1: a commit, checked out detached.
    let (ok1, _d1) = gitinit_in(
        INIT,
        &http.http_url("public/basic.git"),
        &["--revision", fx.sha("c2")],
        Some((&host, &instance(1))),
        &[],
    );
    ok(&ok1);
    // 2: a failure (wrong password): its exit code is the one without Polyaxon.
    let wrong = http
        .http_url("private/basic.git")
        .replace("http://", "http://alice:wrong-password@");
    let (failed, d2) = gitinit_in(INIT, &wrong, &[], Some((&host, &instance(2))), &[]);
    let (alone, _) = gitinit_in(INIT, &wrong, &[], None, &[]);
    assert_ne!(failed.code, 0, "{failed:?}");
    assert_eq!(failed.code, alone.code, "{failed:?}\n{alone:?}");
    // 3: POLYAXON_NO_API=true; 4: `gitinit clone`, in the same environment: nothing sent.
    let (ok3, _d3) = gitinit_in(
        INIT,
        &http.http_url("public/basic.git"),
        &[],
        Some((&host, &instance(3))),
        &[("POLYAXON_NO_API", "true")],
    );
    ok(&ok3);
    let (ok4, _d4) = gitinit_in(
        &["clone"],
        &http.http_url("public/basic.git"),
        &[],
        Some((&host, &instance(4))),
        &[],
    );
    ok(&ok4);

    let read: Vec<Value> = (0..5)
        .map(|i| api.read("default", "gitinit", &runs[i]))
        .collect();

    let refs = coderefs(&read[0]);
    assert_eq!(refs.len(), 1, "{}", read[0]);
    let r = &refs[0];
    assert_eq!(r["name"], fx.sha("c3"), "{r}");
    assert_eq!(r["is_input"], true, "{r}");
    assert_eq!(r["summary"]["commit"], fx.sha("c3"), "{r}");
    assert_eq!(r["summary"]["branch"], "trunk", "{r}");
    assert_eq!(
        r["summary"]["url"],
        http.http_url("private/basic.git"),
        "{r}"
    );
    assert_eq!(r["summary"]["is_dirty"], false, "{r}");
    assert!(warnings(&read[0]).is_empty(), "{}", read[0]);
    assert!(
        ok0.stderr
            .contains("reported the code reference to Polyaxon"),
        "{}",
        ok0.stderr
    );

    let refs = coderefs(&read[1]);
    assert_eq!(refs.len(), 1, "{}\n{}", read[1], ok1.stderr);
    let r = &refs[0];
    assert_eq!(r["summary"]["commit"], fx.sha("c2"), "{r}");
    assert_eq!(r["summary"]["branch"], "HEAD", "{r}");

    assert!(coderefs(&read[2]).is_empty(), "{}", read[2]);
    let w = warnings(&read[2]);
    assert_eq!(w.len(), 1, "{}", read[2]);
    assert_eq!(w[0]["reason"], "GitInitializer", "{}", w[0]);
    let failure_line = failed.stderr.lines().last().unwrap();
    assert!(failure_line.starts_with("error: "), "{}", failed.stderr);
    assert_eq!(w[0]["message"], failure_line, "{}", w[0]);

    for i in [3, 4] {
        assert!(coderefs(&read[i]).is_empty(), "run {i}: {}", read[i]);
        assert!(warnings(&read[i]).is_empty(), "run {i}: {}", read[i]);
    }
    assert!(!ok4.stderr.contains("Polyaxon"), "{}", ok4.stderr);

    // No secret in what the API holds, nor in any output or file of the destinations.
    let held = format!("{}{}", read[0], read[2]);
    for secret in [ALICE_PASSWORD, "s3cr%3Aet", "wrong-password", TOKEN] {
        assert!(!held.contains(secret), "the API holds {secret}: {held}");
        let outs = [&ok0.stdout, &ok0.stderr, &failed.stdout, &failed.stderr];
        assert_no_secret(&outs.map(String::as_str), &d0.path().join("code"), secret);
        assert_no_secret(&[], &d2.path().join("code"), secret);
    }
}

/// What a fake API saw: one request per connection (head and body), answered with `status`,
/// or never answered (`None`).
struct Capture {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Capture {
    fn start(status: Option<u16>) -> Capture {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(vec![]));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let seen = seen.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut head = String::new();
                    let mut length = 0;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                        head.push_str(&line);
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let mut body = vec![0; length];
                    let _ = reader.read_exact(&mut body);
                    seen.lock()
                        .unwrap()
                        .push(format!("{head}{}", String::from_utf8_lossy(&body)));
                    match status {
                        Some(s) => {
                            let _ = write!(
                                stream,
                                "HTTP/1.1 {s} Nope\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            );
                        }
                        None => std::thread::sleep(Duration::from_secs(60)),
                    }
                });
            }
        });
        Capture { port, requests }
    }

    fn host(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

#[test]
fn an_api_that_is_down_or_refuses_changes_nothing_but_a_warning() {
    let http = HttpServer::start();
    let public = http.http_url("public/basic.git");
    let instance = "acme.vision.runs.8f2e0c9a";

    // Answers 503: tried three times (1 s, 2 s apart), with Polyaxon's headers; exit 0.
    let api = Capture::start(Some(503));
    let t = Instant::now();
    let (out, dir) = gitinit_in(
        INIT,
        &public,
        &["--connection", "repo"],
        Some((&api.host(), instance)),
        &[],
    );
    ok(&out);
    assert!(t.elapsed() >= Duration::from_secs(3), "{:?}", t.elapsed());
    let seen = api.requests();
    assert_eq!(seen.len(), 3, "{seen:#?}");
    let first = seen[0].to_ascii_lowercase();
    assert!(
        first.starts_with("post /api/v1/acme/vision/runs/8f2e0c9a/lineage/artifacts http/1.1\r\n"),
        "{first}"
    );
    assert!(
        first.contains(&format!("\r\nauthorization: token {TOKEN}\r\n")),
        "{first}"
    );
    assert!(
        first.contains("\r\nx-polyaxon-service: initializer\r\n"),
        "{first}"
    );
    assert!(
        first.contains("\r\ncontent-type: application/json\r\n"),
        "{first}"
    );
    let body: Value = serde_json::from_str(seen[0].split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["artifacts"][0]["kind"], "coderef", "{body}");
    assert_eq!(body["artifacts"][0]["connection"], "repo", "{body}");
    assert!(
        out.stderr.contains("could not report to Polyaxon"),
        "{}",
        out.stderr
    );
    assert_no_secret(
        &[&out.stdout, &out.stderr],
        dir.path().join("code").as_path(),
        TOKEN,
    );

    // A failing clone with the API refusing (403, not retried): the clone's exit code.
    let api = Capture::start(Some(403));
    let missing = http.http_url("public/missing.git");
    let (failed, _d) = gitinit_in(INIT, &missing, &[], Some((&api.host(), instance)), &[]);
    let (alone, _d) = gitinit_in(INIT, &missing, &[], None, &[]);
    assert_ne!(alone.code, 0);
    assert_eq!(failed.code, alone.code, "{failed:?}");
    let seen = api.requests();
    assert_eq!(seen.len(), 1, "{seen:#?}");
    assert!(
        seen[0].starts_with("POST /api/v1/acme/vision/runs/8f2e0c9a/statuses "),
        "{}",
        seen[0]
    );
    assert!(
        failed.stderr.lines().last().unwrap().starts_with("error: "),
        "{}",
        failed.stderr
    );

    // Nothing listening: a warning, exit 0.
    let (out, _d) = gitinit_in(
        INIT,
        &public,
        &[],
        Some((&format!("http://127.0.0.1:{}", free_port()), instance)),
        &[],
    );
    ok(&out);
    assert!(
        out.stderr.contains("could not report to Polyaxon"),
        "{}",
        out.stderr
    );

    // An API that never answers, within --timeout 4s: the report gives up in time, exit 0.
    let api = Capture::start(None);
    let t = Instant::now();
    let (out, _d) = gitinit_in(
        INIT,
        &public,
        &["--timeout", "4s"],
        Some((&api.host(), instance)),
        &[],
    );
    ok(&out);
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    assert!(!api.requests().is_empty());
}

#[test]
fn outside_polyaxon_nothing_is_sent() {
    // A run instance without a host, or none at all: no request, a clone as usual.
    let http = HttpServer::start();
    let api = Capture::start(Some(201));
    let public = http.http_url("public/basic.git");
    let (out, _d) = gitinit_in(INIT, &public, &[], None, &[("POLYAXON_HOST", &api.host())]);
    ok(&out);
    let (out, _d) = gitinit_in(
        INIT,
        &public,
        &[],
        None,
        &[("POLYAXON_RUN_INSTANCE", "acme.vision.runs.8f2e0c9a")],
    );
    ok(&out);
    assert!(
        out.stderr.contains("POLYAXON_HOST is not"),
        "{}",
        out.stderr
    );
    std::thread::sleep(Duration::from_millis(100));
    assert!(api.requests().is_empty(), "{:#?}", api.requests());
}
