//! The LFS test server (tests/support/lfs.rs) proved with the real client only: git and Debian's
//! git-lfs push fixtures into it and clone them back, over HTTP and HTTPS, public and private.
//! No gitinit code runs here: when a gitinit LFS test fails, this one says whether the server is
//! to blame.

#[path = "support/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;

use common::lfs::{git_in_home, git_lfs_home, lfs_pointer, sha256_hex, LfsServer};
use common::{fixtures, ok, run, Output};

/// Deterministic bytes that do not compress (an xorshift stream).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// git with git-lfs installed in `home`; `env` on top.
fn git(dir: &Path, home: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = git_in_home(dir, home);
    cmd.envs(env.iter().copied()).args(args);
    run(&mut cmd)
}

/// One HTTP/1.0 request on loopback (no chunked answer), answered with (status, body).
fn http(port: u16, method: &str, path: &str, headers: &[&str], body: &str) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n");
    req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).unwrap();
    let head_end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer");
    let status = String::from_utf8_lossy(&answer[..head_end])
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, answer[head_end + 4..].to_vec())
}

fn batch_request(oid: &str, size: usize) -> String {
    format!(
        r#"{{"operation":"download","transfers":["basic"],"objects":[{{"oid":"{oid}","size":{size}}}]}}"#
    )
}

const LFS_JSON: [&str; 2] = [
    "Accept: application/vnd.git-lfs+json",
    "Content-Type: application/vnd.git-lfs+json",
];

#[test]
fn git_lfs_pushes_and_clones_through_the_lfs_server() {
    let server = LfsServer::start();
    let model = noise(300_000, 1);
    let weights = noise(120_000, 2);
    let readme = b"# models\n".as_slice();
    let first = server.push(
        "models",
        &[
            ("model.bin", &model, true),
            ("data/weights v1.bin", &weights, true),
            ("README.md", readme, false),
        ],
    );
    assert_eq!(first.len(), 40, "{first}");
    let home = git_lfs_home();
    let home = home.path();
    let scratch = tempfile::tempdir().unwrap();
    let s = scratch.path();

    // What git stores is the pointer (a clone that skips the smudge filter shows it).
    let out = git(
        s,
        home,
        &[("GIT_LFS_SKIP_SMUDGE", "1")],
        &[
            "clone",
            "-q",
            &server.http_url("public/models.git"),
            "pointers",
        ],
    );
    ok(&out);
    let pointer = std::fs::read_to_string(s.join("pointers/model.bin")).unwrap();
    assert_eq!(pointer, lfs_pointer(&model));
    let attrs = std::fs::read_to_string(s.join("pointers/.gitattributes")).unwrap();
    assert!(
        attrs.contains("model.bin filter=lfs diff=lfs merge=lfs -text"),
        "{attrs}"
    );
    assert_eq!(server.downloads(), 0, "{}", server.log());

    // Public over HTTP: the real contents, one download per object.
    let out = git(
        s,
        home,
        &[],
        &[
            "clone",
            "-q",
            &server.http_url("public/models.git"),
            "public",
        ],
    );
    ok(&out);
    assert_eq!(std::fs::read(s.join("public/model.bin")).unwrap(), model);
    assert_eq!(
        std::fs::read(s.join("public/data/weights v1.bin")).unwrap(),
        weights
    );
    assert_eq!(std::fs::read(s.join("public/README.md")).unwrap(), readme);
    assert_eq!(
        git(&s.join("public"), home, &[], &["rev-parse", "HEAD"])
            .stdout
            .trim(),
        first
    );
    assert_eq!(server.downloads(), 2, "{}", server.log());

    // Private over HTTP with credentials in the URL.
    let private = server
        .http_url("private/models.git")
        .replace("http://", "http://bob:plainpass@");
    ok(&git(s, home, &[], &["clone", "-q", &private, "private"]));
    assert_eq!(std::fs::read(s.join("private/model.bin")).unwrap(), model);
    assert_eq!(server.downloads(), 4, "{}", server.log());

    // Public over HTTPS: the links giftless hands out are https too (else git-lfs would fail).
    let ca = fixtures().ca.display().to_string();
    let out = git(
        s,
        home,
        &[("GIT_SSL_CAINFO", &ca)],
        &[
            "clone",
            "-q",
            &server.https_url("public/models.git"),
            "https",
        ],
    );
    ok(&out);
    assert_eq!(std::fs::read(s.join("https/model.bin")).unwrap(), model);
    assert_eq!(server.downloads(), 6, "{}", server.log());

    // The batch API of /private/ wants Basic auth; the link it hands out carries its own token.
    let oid = sha256_hex(&model);
    let batch = "/private/models.git/info/lfs/objects/batch";
    let (status, _) = http(
        server.http_port,
        "POST",
        batch,
        &LFS_JSON,
        &batch_request(&oid, model.len()),
    );
    assert_eq!(status, 401);
    let mut headers = LFS_JSON.to_vec();
    headers.push("Authorization: Basic Ym9iOnBsYWlucGFzcw=="); // bob:plainpass
    let (status, body) = http(
        server.http_port,
        "POST",
        batch,
        &headers,
        &batch_request(&oid, model.len()),
    );
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    let href = answer["objects"][0]["actions"]["download"]["href"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"));
    let prefix = format!("http://127.0.0.1:{}/", server.http_port);
    assert!(href.starts_with(&prefix) && href.contains("jwt="), "{href}");
    let (status, got) = http(server.http_port, "GET", &href[prefix.len() - 1..], &[], "");
    assert_eq!(status, 200);
    assert!(got == model, "{} bytes", got.len());
    assert_eq!(server.downloads(), 7, "{}", server.log());

    // A second commit: the tip moves, and a fresh clone has the new file too.
    let extra = noise(50_000, 3);
    let second = server.push_more("models", &[("extra.bin", &extra, true)]);
    assert_ne!(second, first);
    ok(&git(
        s,
        home,
        &[],
        &[
            "clone",
            "-q",
            &server.http_url("public/models.git"),
            "second",
        ],
    ));
    assert_eq!(
        git(&s.join("second"), home, &[], &["rev-parse", "HEAD"])
            .stdout
            .trim(),
        second
    );
    assert_eq!(std::fs::read(s.join("second/extra.bin")).unwrap(), extra);
    assert_eq!(server.downloads(), 10, "{}", server.log());

    // An object the server no longer has: `git lfs pull` fails, naming it.
    let extra_oid = sha256_hex(&extra);
    server.delete_object("models", &extra_oid);
    let skip = [("GIT_LFS_SKIP_SMUDGE", "1")];
    ok(&git(
        s,
        home,
        &skip,
        &[
            "clone",
            "-q",
            &server.http_url("public/models.git"),
            "missing",
        ],
    ));
    let missing = s.join("missing");
    // Only the missing object asked for: giftless answers the whole batch with 404.
    let out = git(&missing, home, &[], &["lfs", "pull", "--include=extra.bin"]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(
        server
            .requests()
            .contains("POST /lfs/models.git/info/lfs/objects/batch 404"),
        "{}",
        server.log()
    );
    assert_eq!(
        std::fs::read_to_string(missing.join("extra.bin")).unwrap(),
        lfs_pointer(&extra)
    );
    // Together with objects it has: a per-object 404, and the others arrive.
    let out = git(&missing, home, &[], &["lfs", "pull"]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(
        format!("{}{}", out.stdout, out.stderr).contains(&extra_oid),
        "{out:?}"
    );
    assert_eq!(std::fs::read(missing.join("model.bin")).unwrap(), model);
    assert_eq!(server.downloads(), 12, "{}", server.log());
}
