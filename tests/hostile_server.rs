//! Hostile servers and hostile input on the network side (issue #12, classes 6, 9, 10 and 11):
//! redirects that would carry credentials to another origin or off HTTP, secrets in URLs that
//! do not parse, a remote whose pack or ref advertisement lies, and env values in `--help`.
//! The servers are a few lines of Rust on 127.0.0.1 in this file; every run is greped for the
//! secret it was given (stdout, stderr, the termination log, the report, the destination).

#[path = "support/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{assert_no_secret, gitinit, ok, run, Output};
use tempfile::TempDir;

// ---------------------------------------------------------------------------------------------
// A tiny HTTP/1.1 server

/// A server that answers each request with `handler(head, connection)` and closes the
/// connection; it records every request head (or the first bytes of a connection that sent no
/// HTTP at all). Its thread lives as long as the test process.
struct Tiny {
    port: u16,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Tiny {
    fn start(handler: impl Fn(&str, &mut TcpStream) + Send + 'static) -> Tiny {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = heads.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let head = read_head(&mut conn);
                seen.lock().unwrap().push(head.clone());
                let len = head
                    .lines()
                    .filter_map(|l| l.split_once(':'))
                    .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.trim().parse::<u64>().ok())
                    .unwrap_or(0);
                let _ = std::io::copy(&mut (&conn).take(len), &mut std::io::sink());
                handler(&head, &mut conn);
            }
        });
        Tiny { port, heads }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }

    fn count(&self, prefix: &str) -> usize {
        self.heads()
            .iter()
            .filter(|h| h.starts_with(prefix))
            .count()
    }
}

fn read_head(conn: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 64 * 1024 {
        match conn.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    if head.is_empty() {
        "(a connection that sent nothing)".into()
    } else {
        String::from_utf8_lossy(&head).into_owned()
    }
}

fn respond(conn: &mut TcpStream, status: &str, headers: &[&str], body: &[u8]) {
    let mut out = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for h in headers {
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let _ = conn.write_all(out.as_bytes());
    let _ = conn.write_all(body);
}

fn has_authorization(head: &str) -> bool {
    head.lines().any(|l| {
        l.split_once(':')
            .is_some_and(|(n, _)| n.eq_ignore_ascii_case("authorization"))
    })
}

fn pkt(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:04x}", data.len() + 4).into_bytes();
    out.extend_from_slice(data);
    out
}

const SHA: &str = "5f08cc064b779ad1701ffe202ec4b235ad6b0946";
const ADVERTISEMENT_TYPE: &str = "Content-Type: application/x-git-upload-pack-advertisement";
const RESULT_TYPE: &str = "Content-Type: application/x-git-upload-pack-result";

/// A ref advertisement of one branch, `main`, at [`SHA`], with `caps` on its first line.
fn advertisement(caps: &str) -> Vec<u8> {
    advertisement_at(SHA, caps)
}

/// A ref advertisement of one branch, `main`, at `sha`, with `caps` on its first line.
fn advertisement_at(sha: &str, caps: &str) -> Vec<u8> {
    let mut out = pkt(b"# service=git-upload-pack\n");
    out.extend_from_slice(b"0000");
    out.extend(pkt(format!("{sha} HEAD\0{caps}\n").as_bytes()));
    out.extend(pkt(format!("{sha} refs/heads/main\n").as_bytes()));
    out.extend_from_slice(b"0000");
    out
}

/// A server of one repository that advertises `refs` (the whole body of GET info/refs) and
/// answers the fetch (POST git-upload-pack) with `pack` (the whole body).
fn fake_repo(refs: Vec<u8>, pack: Vec<u8>) -> Tiny {
    Tiny::start(move |head, conn| {
        if head.starts_with("GET ") && head.contains("/info/refs") {
            respond(conn, "200 OK", &[ADVERTISEMENT_TYPE], &refs);
        } else if head.starts_with("POST ") {
            respond(conn, "200 OK", &[RESULT_TYPE], &pack);
        } else {
            respond(conn, "404 Not Found", &[], b"");
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Running gitinit

struct Run {
    out: Output,
    dir: TempDir,
}

impl Run {
    fn termination_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("termination-log")).unwrap_or_default()
    }

    /// Every output of the run holds none of `secrets`, nor does any file it wrote.
    fn assert_no_secret(&self, secrets: &[&str]) {
        let log = self.termination_log();
        for s in secrets {
            assert_no_secret(
                &[&self.out.stdout, &self.out.stderr, &log],
                self.dir.path(),
                s,
            );
        }
    }

    fn assert_code(&self, code: i32) {
        assert_eq!(
            self.out.code, code,
            "expected exit {code}:\nstdout: {}\nstderr: {}",
            self.out.stdout, self.out.stderr
        );
        assert!(
            !self.out.stderr.contains("bug") && !self.out.stderr.contains("internal error"),
            "the remote's fault is not a bug: {}",
            self.out.stderr
        );
    }
}

/// `gitinit <subcommand> --url URL --report - [--dest D] extra` with `env`, writing the
/// termination log in a scratch directory.
fn gitinit_run(sub: &str, url: &str, env: &[(&str, &str)], extra: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = gitinit();
    cmd.envs(env.iter().copied())
        .env(
            "GITINIT_TERMINATION_LOG",
            dir.path().join("termination-log"),
        )
        .args([sub, "-v", "--report", "-", "--url", url]);
    if sub != "check" {
        cmd.arg("--dest").arg(dir.path().join("work"));
    }
    cmd.args(extra);
    Run {
        out: run(&mut cmd),
        dir,
    }
}

fn clone(url: &str, env: &[(&str, &str)], extra: &[&str]) -> Run {
    gitinit_run("clone", url, env, extra)
}

fn scratch_file(dir: &Path, name: &str, text: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p
}

// ---------------------------------------------------------------------------------------------
// Class 6: credentials and redirects

const PASSWORD: &str = "hunter2-Zq9";

/// A server that asks for credentials first (401 without them) and then redirects to `to`;
/// with `ask_first: false` it redirects at once.
fn redirector(to: String, ask_first: bool) -> Tiny {
    Tiny::start(move |head, conn| {
        if ask_first && !has_authorization(head) {
            respond(
                conn,
                "401 Unauthorized",
                &["WWW-Authenticate: Basic realm=\"git\""],
                b"",
            );
        } else {
            respond(conn, "302 Found", &[&format!("Location: {to}")], b"");
        }
    })
}

/// A server that asks for credentials and records whether it got any.
fn credential_sink() -> Tiny {
    Tiny::start(|head, conn| {
        if has_authorization(head) {
            respond(conn, "404 Not Found", &[], b"got them");
        } else {
            respond(
                conn,
                "401 Unauthorized",
                &["WWW-Authenticate: Basic realm=\"git\""],
                b"",
            );
        }
    })
}

/// Credentials belong to one origin: scheme, host AND port (without credentials, a redirect to
/// another port is followed). Before the fix only the host name
/// was compared, so a redirect from 127.0.0.1:A to 127.0.0.1:B sent alice's password to B.
/// git 2.47.3 on the same servers (`git ls-remote http://alice:...@127.0.0.1:A/repo.git`, tried
/// by hand) sends the password to A only, follows the redirect, sends B no credentials and
/// fails with "fatal: Authentication failed for 'http://127.0.0.1:A/repo.git/'".
#[test]
fn a_redirect_to_another_port_never_carries_the_credentials() {
    for ask_first in [true, false] {
        let sink = credential_sink();
        let target = sink.url("repo.git/info/refs?service=git-upload-pack");
        let from = redirector(target, ask_first);
        let with_userinfo = format!("http://alice:{PASSWORD}@127.0.0.1:{}/repo.git", from.port);
        let creds = format!("alice:{PASSWORD}");
        for (url, env) in [
            (with_userinfo, vec![]),
            (
                from.url("repo.git"),
                vec![("POLYAXON_GIT_CREDENTIALS", creds.as_str())],
            ),
        ] {
            let r = clone(&url, &env, &["--retries", "0"]);
            let sent: Vec<String> = sink
                .heads()
                .into_iter()
                .filter(|h| has_authorization(h))
                .collect();
            assert!(
                sent.is_empty(),
                "the other port got credentials: {sent:?}\n{}",
                r.out.stderr
            );
            r.assert_code(3);
            assert!(
                r.out.stderr.contains("redirected to another origin"),
                "{}",
                r.out.stderr
            );
            r.assert_no_secret(&[PASSWORD]);
        }
    }
    // Without credentials there is nothing to protect: a redirect to another port is followed.
    let fx = common::fixtures();
    let http = common::HttpServer::start();
    let from = redirector(
        http.http_url("public/basic.git/info/refs?service=git-upload-pack"),
        false,
    );
    let r = clone(&from.url("basic.git"), &[], &[]);
    ok(&r.out);
    assert_eq!(
        common::git_out(&r.dir.path().join("work"), &["rev-parse", "HEAD"]),
        fx.sha("c3")
    );
}

/// Only http and https are followed. Before the fix, a `file://` Location made libcurl read a
/// local file as the ref advertisement, and `ws://`, `mqtt://`, `ftp://`... made it connect
/// with that protocol. git 2.47.3 restricts libcurl's redirect protocols
/// (`CURLOPT_REDIR_PROTOCOLS`): on the `file://` redirect it fails with "Protocol "file" not
/// supported or disabled in libcurl" (tried by hand).
#[test]
fn a_redirect_off_http_is_refused() {
    let scratch = tempfile::tempdir().unwrap();
    let local = scratch.path().join("repo.git");
    scratch_file(&local, "info/refs", &advertisement(""));
    let listener = Tiny::start(|_, _| {});
    for to in [
        format!(
            "file://{}/info/refs?service=git-upload-pack",
            local.display()
        ),
        format!(
            "ws://127.0.0.1:{}/repo.git/info/refs?service=git-upload-pack",
            listener.port
        ),
        format!(
            "mqtt://127.0.0.1:{}/repo.git/info/refs?service=git-upload-pack",
            listener.port
        ),
        format!(
            "ftp://127.0.0.1:{}/repo.git/info/refs?service=git-upload-pack",
            listener.port
        ),
    ] {
        let from = redirector(to.clone(), false);
        let r = clone(&from.url("repo.git"), &[], &["--retries", "0"]);
        r.assert_code(8);
        assert!(
            r.out.stderr.contains("only to http:// and https://"),
            "{to}: {}",
            r.out.stderr
        );
        assert!(
            listener.heads().is_empty(),
            "{to} was followed: {:?}",
            listener.heads()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Class 9: secrets in URLs that do not parse

/// A password holding `/`, `#` or `?` unencoded ends the URL's authority early: whatever the
/// parser made of it, no piece of the secret is printed (error line, termination log, report),
/// nothing is sent anywhere (a host name taken from the secret would go to DNS), and the error
/// says to percent-encode it. git 2.47.3 prints the whole URL, token included: "fatal: unable
/// to access 'https://alice:ghp_Ab1/Cd2x@example.invalid/org/r.git/': URL using bad/illegal
/// format or missing URL".
#[test]
fn a_secret_in_a_url_that_does_not_parse_is_never_printed() {
    let (a, b) = ("ghp_Ab1", "Cd2x");
    let listener = Tiny::start(|_, conn| respond(conn, "404 Not Found", &[], b""));
    let port = listener.port;
    let urls = [
        format!("https://alice:{a}/{b}@example.invalid/org/r.git"),
        format!("https://alice:{a}#{b}@example.invalid/org/r.git"),
        format!("https://alice:{a}?{b}@example.invalid/org/r.git"),
        format!("http://{a}/{b}@127.0.0.1:{port}/r.git"),
        format!("http://{a}?{b}@example.invalid/r.git"),
        format!("http://127.0.0.1:{port}#{a}{b}@example.invalid/r.git"),
        format!("ssh://alice:{a}/{b}@example.invalid/org/r.git"),
        format!("alice:{a}{b}@example.invalid:org/r.git"),
    ];
    for url in &urls {
        for sub in ["clone", "check"] {
            let r = gitinit_run(sub, url, &[], &["--retries", "0"]);
            r.assert_code(2);
            assert!(
                r.out.stderr.contains("percent-encode"),
                "{url}: {}",
                r.out.stderr
            );
            r.assert_no_secret(&[a, b]);
            assert!(
                r.termination_log().contains("percent-encode"),
                "{}",
                r.termination_log()
            );
        }
        // The same through the environment.
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = gitinit();
        cmd.env("GITINIT_URL", url)
            .env("GITINIT_TERMINATION_LOG", dir.path().join("t"))
            .args(["check", "--retries", "0"]);
        let out = run(&mut cmd);
        assert_eq!(out.code, 2, "{url}: {}", out.stderr);
        let log = std::fs::read_to_string(dir.path().join("t")).unwrap_or_default();
        for s in [a, b] {
            assert_no_secret(&[&out.stdout, &out.stderr, &log], dir.path(), s);
        }
    }
    assert!(
        listener.heads().is_empty(),
        "a malformed URL was used: {:?}",
        listener.heads()
    );
}

/// A proxy URL with an unencoded `/` in its password, of a scheme gitinit refuses: the error
/// names the proxy without any piece of the password.
#[test]
fn a_secret_in_a_refused_proxy_url_is_never_printed() {
    let r = clone(
        "https://example.invalid/org/r.git",
        &[("HTTPS_PROXY", "socks5://user:pa55/w0rd@proxy.invalid:1080")],
        &["--retries", "0"],
    );
    r.assert_code(2);
    r.assert_no_secret(&["pa55", "w0rd"]);
}

/// Proxy passwords are percent-decoded, as libcurl and git read them: `+` is a plus, not a
/// space (it was form-decoded before).
#[test]
fn a_plus_in_a_proxy_password_stays_a_plus() {
    let fx = common::fixtures();
    let http = common::HttpServer::start();
    let password = "pro+xy%pass";
    let proxy = common::AuthProxy::start("proxyuser", password);
    let ca = common::ca_file();
    let r = clone(
        &http.https_url("public/basic.git"),
        &[(
            "HTTPS_PROXY",
            &proxy.url_with_credentials("proxyuser", "pro+xy%25pass"),
        )],
        &["--ca-file", ca.to_str().unwrap(), "--retries", "0"],
    );
    ok(&r.out);
    assert_eq!(
        common::git_out(&r.dir.path().join("work"), &["rev-parse", "HEAD"]),
        fx.sha("c3")
    );
    r.assert_no_secret(&[password, "pro+xy"]);
}

// ---------------------------------------------------------------------------------------------
// Class 10: hostile input is the remote's fault, not a bug

/// A pack whose header claims 2^32-1 objects: libgit2 reserved room for all of them up front
/// (32 GiB here: "out of memory", exit 1 "this is a bug"). Now the claim is refused as a broken
/// pack (exit 4) before anything is reserved. git 2.47.3 answers the same server with "fatal:
/// size_t overflow: 18446744073709551615 + 1 / fatal: fetch-pack: invalid index-pack output"
/// (exit 128, tried by hand).
#[test]
fn a_pack_that_claims_four_billion_objects_is_a_broken_repository() {
    let mut pack = pkt(b"NAK\n");
    pack.extend_from_slice(b"PACK\x00\x00\x00\x02\xff\xff\xff\xff");
    pack.extend_from_slice(&[0x78; 64]);
    let server = fake_repo(advertisement(""), pack);
    let r = clone(&server.url("repo.git"), &[], &["--retries", "0"]);
    r.assert_code(4);
    assert!(
        r.out.stderr.contains("too many objects"),
        "{}",
        r.out.stderr
    );
}

/// Bytes that are not a pack where the pack should be: a broken repository (exit 4), not
/// retried.
#[test]
fn garbage_instead_of_a_pack_is_a_broken_repository() {
    let mut pack = pkt(b"NAK\n");
    pack.extend_from_slice(b"JUNK\x00\x00\x00\x02\x00\x00\x00\x01xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    let server = fake_repo(advertisement(""), pack);
    let r = clone(&server.url("repo.git"), &[], &[]);
    r.assert_code(4);
    assert_eq!(server.count("POST "), 1, "{:?}", server.heads());
}

/// Garbage where pkt-lines belong, a pkt-line length of 1 to 3 (libgit2 fails on it without a
/// message, and its last unrelated one, "config value 'http.followRedirects' was not found",
/// was reported as a bug): the server does not speak git's protocol
/// (exit 6), said so, and not retried (it would answer the same). git 2.47 says "protocol
/// error: bad line length character".
#[test]
fn a_server_that_does_not_speak_the_protocol_is_said_so_and_not_retried() {
    let mut garbage = pkt(b"# service=git-upload-pack\n");
    garbage.extend_from_slice(b"0000zzzzthis is not a pkt-line\n");
    let mut short = pkt(b"# service=git-upload-pack\n");
    short.extend_from_slice(b"00000002");
    for refs in [garbage, short] {
        let server = fake_repo(refs.clone(), vec![]);
        let r = clone(&server.url("repo.git"), &[], &["--retries", "2"]);
        r.assert_code(6);
        assert!(
            r.out.stderr.contains("does not answer as a git server"),
            "{}: {}",
            String::from_utf8_lossy(&refs),
            r.out.stderr
        );
        assert_eq!(server.count("GET "), 1, "retried: {:?}", server.heads());
    }
}

/// A ref advertisement sent gzip-encoded (libcurl inflates it) that inflates to 1 GiB of
/// refs: reading stops at the cap (256 MiB: a v0 advertisement of nixpkgs with all its pull
/// request refs is about 60 MiB) with a clear error (exit 6), and the process never holds the
/// rest. Before, every byte was read and every ref kept (1.1 GB resident). git 2.47 has no cap.
#[test]
fn a_ref_advertisement_that_inflates_without_bound_is_cut() {
    let scratch = tempfile::tempdir().unwrap();
    let gz = scratch.path().join("refs.gz");
    let mut gzip = std::process::Command::new("gzip")
        .arg("-1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::fs::File::create(&gz).unwrap())
        .spawn()
        .unwrap();
    {
        let mut input = gzip.stdin.take().unwrap();
        let mut refs = advertisement("");
        refs.truncate(refs.len() - 4);
        input.write_all(&refs).unwrap();
        // Long ref names: few refs, so the memory is the bytes themselves.
        let name = "a".repeat(65_000);
        let line = pkt(format!("{SHA} refs/heads/{name}\n").as_bytes());
        for _ in 0..(1 << 30) / line.len() {
            input.write_all(&line).unwrap();
        }
        input.write_all(b"0000").unwrap();
    }
    assert!(gzip.wait().unwrap().success());
    let body = std::fs::read(&gz).unwrap();
    let server = Tiny::start(move |head, conn| {
        if head.starts_with("GET ") {
            respond(
                conn,
                "200 OK",
                &[ADVERTISEMENT_TYPE, "Content-Encoding: gzip"],
                &body,
            );
        } else {
            respond(conn, "404 Not Found", &[], b"");
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = gitinit();
    cmd.env("GITINIT_TERMINATION_LOG", dir.path().join("t"))
        .args(["clone", "--retries", "0", "--url", &server.url("repo.git")])
        .arg("--dest")
        .arg(dir.path().join("work"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let mut peak_kib = 0u64;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.id()));
        if let Some(kib) = status.ok().and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        }) {
            peak_kib = peak_kib.max(kib);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let log = std::fs::read_to_string(dir.path().join("t")).unwrap_or_default();
    assert_eq!(status.code(), Some(6), "{log}");
    assert!(log.contains("more than 256 MiB"), "{log}");
    assert!(
        peak_kib < 450 * 1024,
        "the process held {peak_kib} KiB: {log}"
    );
}

// ---------------------------------------------------------------------------------------------
// Class 11: secrets in help

/// Every subcommand path of the CLI (`clone`, `initializer git`, ...), found by walking clap's
/// command tree, so a future subcommand is covered too; with every env var any of them reads.
fn command_paths() -> (Vec<Vec<String>>, Vec<String>) {
    fn walk(
        cmd: &clap::Command,
        path: &mut Vec<String>,
        paths: &mut Vec<Vec<String>>,
        envs: &mut Vec<String>,
    ) {
        for a in cmd.get_arguments() {
            if let Some(e) = a.get_env() {
                envs.push(e.to_string_lossy().into_owned());
            }
        }
        paths.push(path.clone());
        for sc in cmd.get_subcommands() {
            path.push(sc.get_name().to_string());
            walk(sc, path, paths, envs);
            path.pop();
        }
    }
    let cmd = gitinit::cli::command("0".into());
    let (mut paths, mut envs) = (vec![], vec![]);
    walk(&cmd, &mut vec![], &mut paths, &mut envs);
    envs.sort();
    envs.dedup();
    (paths, envs)
}

/// `GITINIT_URL=https://alice:hunter2@host/r.git gitinit initializer git --help` printed
/// `[env: GITINIT_URL=https://alice:hunter2@…]`: only the first level of subcommands hid env
/// values. Now every level does, in `--help`, `-h` and `help <path>`.
#[test]
fn help_never_shows_an_env_value_at_any_depth() {
    let (paths, envs) = command_paths();
    assert!(
        paths.iter().any(|p| p.len() >= 2),
        "the walk found the nested subcommands: {paths:?}"
    );
    assert!(envs.contains(&"GITINIT_URL".to_string()), "{envs:?}");
    let secret = "hunter2-Hq7";
    for path in &paths {
        let mut variants = vec![
            [path.clone(), vec!["--help".to_string()]].concat(),
            [path.clone(), vec!["-h".to_string()]].concat(),
        ];
        if !path.is_empty() {
            variants.push([vec!["help".to_string()], path.clone()].concat());
        }
        for args in variants {
            let mut cmd = gitinit();
            for e in &envs {
                cmd.env(e, format!("https://alice:{secret}@host/r.git"));
            }
            let out = run(cmd.args(&args));
            assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
            assert!(
                out.stdout.contains("Usage"),
                "{args:?} printed help: {}",
                out.stdout
            );
            assert!(
                !out.stdout.contains(secret) && !out.stderr.contains(secret),
                "{args:?} shows an env value:\n{}",
                out.stdout
            );
        }
    }
}

/// Both indexers judge a broken pack alike (the header's count picks gix-pack from 3,000
/// objects up): bytes that are no objects after a valid header, or a response that ends cleanly
/// after the header, are a broken repository (exit 4, not retried). (A transfer cut short is
/// the transport's failure, before any indexer is asked to finish: retried, see rerun.rs.)
#[test]
fn a_broken_or_truncated_pack_is_judged_alike_by_both_indexers() {
    for count in [1u32, 5_000] {
        let header = |pack: &mut Vec<u8>| {
            pack.extend_from_slice(b"PACK\x00\x00\x00\x02");
            pack.extend_from_slice(&count.to_be_bytes());
        };
        let mut broken = pkt(b"NAK\n");
        header(&mut broken);
        broken.extend_from_slice(&[0xff; 64]);
        let server = fake_repo(advertisement(""), broken);
        let r = clone(&server.url("repo.git"), &[], &["--retries", "1"]);
        r.assert_code(4);
        assert_eq!(server.count("POST "), 1, "{count}: {:?}", server.heads());

        let mut truncated = pkt(b"NAK\n");
        header(&mut truncated);
        let server = fake_repo(advertisement(""), truncated);
        let r = clone(&server.url("repo.git"), &[], &["--retries", "1"]);
        r.assert_code(4);
        assert_eq!(server.count("POST "), 1, "{count}: {:?}", server.heads());
    }
}

/// A whole, valid pack followed by more bytes: refused as a broken repository (exit 4, not
/// retried) by both indexers, as git's index-pack refuses it ("pack has junk at the end").
/// The packs are git's own for deep.git (40 commits: libgit2's indexer) and many.git (4,084
/// objects: gix-pack's).
#[test]
fn data_after_the_end_of_a_pack_is_refused_by_both_indexers() {
    let fx = common::fixtures();
    for repo in ["deep.git", "many.git"] {
        let dir = fx.repo(repo);
        let tip = common::git_out(&dir, &["rev-parse", "main"]);
        let mut packer = common::git(&dir)
            .args(["pack-objects", "--stdout", "--revs", "-q"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        packer
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{tip}\n").as_bytes())
            .unwrap();
        let out = packer.wait_with_output().unwrap();
        assert!(out.status.success());
        let mut body = pkt(b"NAK\n");
        body.extend_from_slice(&out.stdout);
        body.extend_from_slice(b"and this is not part of it");
        let server = fake_repo(advertisement_at(&tip, ""), body);
        let r = clone(&server.url("repo.git"), &[], &["--retries", "1"]);
        r.assert_code(4);
        assert_eq!(server.count("POST "), 1, "{repo}: {:?}", server.heads());
    }
}
