//! Git LFS (SPEC §10) against a real LFS server: giftless behind lighttpd (tests/support/lfs.rs),
//! with repositories pushed by Debian's git-lfs. One server for the whole test binary would
//! need a server that outlives the test thread that started it; each test starts its own
//! (about a second).

#[path = "support/mod.rs"]
mod common;

use std::path::Path;

use common::lfs::{git_in_home, git_lfs_home, lfs_pointer, sha256_hex, LfsServer};
use common::{assert_no_secret, ca_file, git_out, gitinit, ok, run, Output};

fn clone(url: &str, dest: &Path, extra: &[&str]) -> Output {
    run(gitinit()
        .env("POLYAXON_GIT_CREDENTIALS", "bob:plainpass")
        .args(["clone", "--url", url, "--report", "-", "--dest"])
        .arg(dest)
        .arg("--ca-file")
        .arg(ca_file())
        .args(extra))
}

fn report(out: &Output) -> serde_json::Value {
    serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

/// Bytes that do not compress and are not a pointer.
fn payload(seed: u8, len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9 ^ seed as u32;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn lfs_files_arrive_whole_over_https_with_credentials_and_a_rerun_downloads_nothing() {
    let lfs = LfsServer::start();
    let weights = payload(1, 300_000);
    let data = payload(2, 40_000);
    lfs.push(
        "models",
        &[
            ("weights.bin", &weights[..], true),
            ("data/train.csv", &data[..], true),
            ("README.md", &b"# model\n"[..], false),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("w");
    let url = lfs.https_url("private/models.git");
    let out = clone(&url, &dest, &[]);
    ok(&out);
    assert_eq!(std::fs::read(dest.join("weights.bin")).unwrap(), weights);
    assert_eq!(std::fs::read(dest.join("data/train.csv")).unwrap(), data);
    let total = (weights.len() + data.len()) as u64;
    assert_eq!(
        report(&out)["lfs"],
        serde_json::json!({"objects": 2, "bytes": total, "downloaded_bytes": total})
    );
    let oid = sha256_hex(&weights);
    assert!(dest
        .join(".git/lfs/objects")
        .join(&oid[0..2])
        .join(&oid[2..4])
        .join(&oid)
        .is_file());
    assert_eq!(lfs.downloads(), 2);
    assert!(
        out.stderr.contains("downloading LFS objects: "),
        "progress: {}",
        out.stderr
    );
    // Clean for git without git-lfs (this process's git has no LFS filter)...
    assert_eq!(git_out(&dest, &["status", "--porcelain"]), "");
    // ...and with it, where git-lfs also lists both files as downloaded (`*`).
    let home = git_lfs_home();
    let with_lfs = |args: &[&str]| {
        let o = git_in_home(&dest, home.path()).args(args).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert_eq!(with_lfs(&["status", "--porcelain"]), "");
    let listed = with_lfs(&["lfs", "ls-files"]);
    assert_eq!(listed.matches(" * ").count(), 2, "{listed}");
    assert_no_secret(&[&out.stdout, &out.stderr], &dest, "plainpass");

    // A rerun at the same commit downloads nothing.
    let out = clone(&url, &dest, &[]);
    ok(&out);
    assert_eq!(report(&out)["lfs"]["downloaded_bytes"], 0);
    assert_eq!(report(&out)["lfs"]["objects"], 2);
    assert_eq!(lfs.downloads(), 2, "{}", lfs.requests());
    assert_eq!(git_out(&dest, &["status", "--porcelain"]), "");

    // A new commit that changes one file downloads only that one.
    let weights2 = payload(3, 200_000);
    lfs.push_more("models", &[("weights.bin", &weights2[..], true)]);
    let out = clone(&url, &dest, &[]);
    ok(&out);
    assert_eq!(std::fs::read(dest.join("weights.bin")).unwrap(), weights2);
    assert_eq!(
        report(&out)["lfs"]["downloaded_bytes"],
        weights2.len() as u64
    );
    assert_eq!(lfs.downloads(), 3);
    assert_eq!(git_out(&dest, &["status", "--porcelain"]), "");
}

#[test]
fn lfs_off_skip_smudge_and_patterns_choose_what_is_replaced() {
    let lfs = LfsServer::start();
    let a = payload(4, 10_000);
    let b = payload(5, 10_000);
    lfs.push(
        "pick",
        &[("models/a.bin", &a[..], true), ("data/b.bin", &b[..], true)],
    );
    let url = lfs.http_url("public/pick.git");
    let dir = tempfile::tempdir().unwrap();

    let off = dir.path().join("off");
    let out = clone(&url, &off, &["--lfs", "off"]);
    ok(&out);
    assert_eq!(
        std::fs::read_to_string(off.join("models/a.bin")).unwrap(),
        lfs_pointer(&a)
    );
    assert!(report(&out).get("lfs").is_none(), "{}", out.stdout);

    let skip = dir.path().join("skip");
    let out = run(gitinit()
        .env("GIT_LFS_SKIP_SMUDGE", "1")
        .args(["clone", "--url", &url, "--dest"])
        .arg(&skip));
    ok(&out);
    assert_eq!(
        std::fs::read_to_string(skip.join("data/b.bin")).unwrap(),
        lfs_pointer(&b)
    );
    // The option beats git-lfs's variable.
    let forced = dir.path().join("forced");
    ok(&run(gitinit()
        .env("GIT_LFS_SKIP_SMUDGE", "1")
        .args(["clone", "--lfs", "auto", "--url", &url, "--dest"])
        .arg(&forced)));
    assert_eq!(std::fs::read(forced.join("data/b.bin")).unwrap(), b);

    let only = dir.path().join("only");
    let out = clone(&url, &only, &["--lfs-include", "models"]);
    ok(&out);
    assert_eq!(std::fs::read(only.join("models/a.bin")).unwrap(), a);
    assert_eq!(
        std::fs::read_to_string(only.join("data/b.bin")).unwrap(),
        lfs_pointer(&b)
    );
    assert_eq!(report(&out)["lfs"]["objects"], 1);

    let not = dir.path().join("not");
    ok(&run(gitinit()
        .env("GITINIT_LFS_EXCLUDE", "*.bin")
        .args(["clone", "--url", &url, "--dest"])
        .arg(&not)));
    assert_eq!(
        std::fs::read_to_string(not.join("models/a.bin")).unwrap(),
        lfs_pointer(&a)
    );
    assert_eq!(git_out(&not, &["status", "--porcelain"]), "");
}

#[test]
fn a_missing_object_is_exit_4_naming_path_and_oid_and_leaves_no_partial_file() {
    let lfs = LfsServer::start();
    let present = payload(6, 50_000);
    let gone = payload(7, 50_000);
    lfs.push(
        "holes",
        &[
            ("ok.bin", &present[..], true),
            ("lost/gone.bin", &gone[..], true),
        ],
    );
    let gone_oid = sha256_hex(&gone);
    lfs.delete_object("holes", &gone_oid);
    let url = lfs.http_url("public/holes.git");
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("w");
    let out = clone(&url, &dest, &[]);
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(out.stderr.contains(&gone_oid), "{}", out.stderr);
    assert!(out.stderr.contains("lost/gone.bin"), "{}", out.stderr);
    assert!(!out.stderr.contains("internal error"), "{}", out.stderr);
    // A fresh clone that failed leaves the destination as it found it.
    assert!(!dest.exists());

    // The whole batch missing (giftless answers 404 for the request) says the same.
    lfs.delete_object("holes", &sha256_hex(&present));
    let out = clone(&url, &dest, &[]);
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(
        out.stderr.contains("does not have the object"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_corrupt_object_is_retried_then_exit_6_and_never_placed() {
    let lfs = LfsServer::start();
    let good = payload(8, 30_000);
    lfs.push("bad", &[("model.bin", &good[..], true)]);
    let oid = sha256_hex(&good);
    let stored = lfs.object_path("bad", &oid);
    let mut tampered = good.clone();
    tampered[100] ^= 0xff;
    std::fs::write(&stored, &tampered).unwrap();
    let url = lfs.http_url("public/bad.git");
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("w");
    // First a good clone, so that the failure below is an update that keeps its checkout.
    std::fs::write(&stored, &good).unwrap();
    ok(&clone(&url, &dest, &[]));
    let more = payload(9, 30_000);
    lfs.push_more("bad", &[("model.bin", &more[..], true)]);
    let more_oid = sha256_hex(&more);
    let stored_more = lfs.object_path("bad", &more_oid);
    let mut tampered = more.clone();
    tampered[5] ^= 0x01;
    std::fs::write(&stored_more, &tampered).unwrap();
    let before = lfs.downloads();
    let out = clone(&url, &dest, &["--retries", "1"]);
    assert_eq!(out.code, 6, "{}", out.stderr);
    assert!(
        out.stderr.contains("not what its pointer says"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("retrying"),
        "a mismatch is retried: {}",
        out.stderr
    );
    assert_eq!(lfs.downloads(), before + 2, "one retry: {}", lfs.requests());
    // The path holds its pointer (the checkout's), never the bad bytes; nothing was stored.
    assert_eq!(
        std::fs::read_to_string(dest.join("model.bin")).unwrap(),
        lfs_pointer(&more)
    );
    assert!(!dest
        .join(".git/lfs/objects")
        .join(&more_oid[0..2])
        .join(&more_oid[2..4])
        .join(&more_oid)
        .exists());
    assert!(
        dest.join(".git/gitinit-incomplete").exists(),
        "marked unfinished"
    );
    // Once the server has the right bytes, the rerun completes it.
    std::fs::write(&stored_more, &more).unwrap();
    ok(&clone(&url, &dest, &[]));
    assert_eq!(std::fs::read(dest.join("model.bin")).unwrap(), more);
    assert_eq!(git_out(&dest, &["status", "--porcelain"]), "");
}

/// An `.lfsconfig` that sends the batch API to another port of the same host: the clone's
/// credentials must not go there (git-lfs keys credentials by scheme, host and port too).
#[test]
fn credentials_never_go_to_an_lfs_server_on_another_origin() {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            log.lock().unwrap().push(head);
            let _ = stream.write_all(
                b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"x\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    let lfs = LfsServer::start();
    let file = payload(10, 5_000);
    lfs.push("elsewhere", &[("f.bin", &file[..], true)]);
    // In a second commit: the pushing git-lfs would read it too.
    lfs.push_more(
        "elsewhere",
        &[(
            ".lfsconfig",
            format!("[lfs]\n\turl = http://127.0.0.1:{port}/lfs\n").as_bytes(),
            false,
        )],
    );
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("w");
    let out = clone(&lfs.http_url("private/elsewhere.git"), &dest, &[]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    let heads = seen.lock().unwrap().join("\n");
    assert!(heads.contains("POST /lfs/objects/batch"), "{heads}");
    assert!(
        !heads.to_ascii_lowercase().contains("authorization"),
        "{heads}"
    );
    assert_no_secret(&[&out.stdout, &out.stderr], dir.path(), "plainpass");
}

/// An SSH remote: `git-lfs-authenticate` over SSH (with the clone's key, the host key checked)
/// gives the endpoint and the header that authorises it, as GitHub, GitLab and Bitbucket do.
/// The server side is a stand-in (Debian has none): sshd's forced command answers the JSON a
/// hosting service would, pointing at the real LFS server's private endpoint, which refuses a
/// batch without that header.
#[test]
fn an_ssh_remote_finds_its_lfs_server_through_git_lfs_authenticate() {
    use base64::Engine;
    use common::sshd::{keygen, SshServer};
    let lfs = LfsServer::start();
    let weights = payload(11, 120_000);
    lfs.push("viassh", &[("weights.bin", &weights[..], true)]);
    let dir = tempfile::tempdir().unwrap();
    let (key, key_pub) = keygen(dir.path(), "deploy", "ed25519", "", false);
    let ssh = SshServer::start(&lfs.repos(), &[&key_pub]);
    let known_hosts = dir.path().join("known_hosts");
    std::fs::write(&known_hosts, ssh.known_hosts_line()).unwrap();
    let token = base64::engine::general_purpose::STANDARD.encode("bob:plainpass");
    ssh.set_lfs_answer(&format!(
        r#"{{"href": "{}", "header": {{"Authorization": "Basic {token}"}}, "expires_in": 3600}}"#,
        lfs.http_url("private/viassh.git/info/lfs")
    ));
    let dest = dir.path().join("w");
    let out = run(gitinit()
        .args(["clone", "--url", &ssh.url("viassh.git"), "--report", "-"])
        .arg("--ssh-key")
        .arg(&key)
        .arg("--known-hosts")
        .arg(&known_hosts)
        .arg("--dest")
        .arg(&dest));
    ok(&out);
    assert_eq!(std::fs::read(dest.join("weights.bin")).unwrap(), weights);
    assert_eq!(report(&out)["lfs"]["objects"], 1);
    assert!(
        ssh.lfs_asked()
            .contains("git-lfs-authenticate 'viassh.git' download"),
        "{}",
        ssh.lfs_asked()
    );
    assert_eq!(git_out(&dest, &["status", "--porcelain"]), "");
    assert_no_secret(&[&out.stdout, &out.stderr], &dest, &token);
}

/// A local source (a path): its objects come from its own `.git/lfs/objects`, verified; one
/// that lacks an object is exit 4 naming it.
#[test]
fn a_local_source_gives_its_own_lfs_objects() {
    let lfs = LfsServer::start();
    let weights = payload(12, 60_000);
    lfs.push("local", &[("weights.bin", &weights[..], true)]);
    let source = lfs.work_dir("local");
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("w");
    let out = run(gitinit()
        .args(["clone", "--report", "-", "--url"])
        .arg(&source)
        .arg("--dest")
        .arg(&dest));
    ok(&out);
    assert_eq!(std::fs::read(dest.join("weights.bin")).unwrap(), weights);
    assert_eq!(
        report(&out)["lfs"]["downloaded_bytes"],
        weights.len() as u64
    );
    assert_eq!(git_out(&dest, &["status", "--porcelain"]), "");

    let oid = sha256_hex(&weights);
    std::fs::remove_file(
        source
            .join(".git/lfs/objects")
            .join(&oid[0..2])
            .join(&oid[2..4])
            .join(&oid),
    )
    .unwrap();
    let again = dir.path().join("again");
    let out = run(gitinit()
        .args(["clone", "--url"])
        .arg(&source)
        .arg("--dest")
        .arg(&again));
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(
        out.stderr.contains(&oid) && out.stderr.contains("weights.bin"),
        "{}",
        out.stderr
    );
}

/// `--timeout` while an object is on its way: exit 6, no partial download kept, the path still
/// holds its pointer; the next run completes it.
#[test]
fn a_run_stopped_during_a_download_leaves_no_partial_object() {
    use common::{Fault, FaultProxy};
    let lfs = LfsServer::start();
    let big = payload(13, 2_000_000);
    lfs.push("slow", &[("big.bin", &big[..], true)]);
    let proxy = FaultProxy::start(lfs.http_port, Fault::StallAfter { bytes: 300_000 });
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("w");
    // A first good run through the server itself, then a new commit fetched through the proxy.
    ok(&clone(&lfs.http_url("public/slow.git"), &dest, &[]));
    let bigger = payload(14, 2_000_000);
    lfs.push_more("slow", &[("big.bin", &bigger[..], true)]);
    // Through the stalling proxy (HTTP_PROXY: it forwards absolute-form requests as they are).
    let out = run(gitinit()
        .args(["clone", "--url", &lfs.http_url("public/slow.git")])
        .args(["--timeout", "4s", "--retries", "0", "--dest"])
        .arg(&dest)
        .env("HTTP_PROXY", format!("http://127.0.0.1:{}", proxy.port)));
    assert_eq!(out.code, 6, "{}", out.stderr);
    assert!(
        out.stderr.contains("downloading 1 LFS object") && out.stderr.contains("--timeout"),
        "stopped while downloading: {}",
        out.stderr
    );
    let tmp = dest.join(".git/lfs/tmp");
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "partial downloads left: {left:?}");
    assert_eq!(
        std::fs::read_to_string(dest.join("big.bin")).unwrap(),
        lfs_pointer(&bigger)
    );
    ok(&clone(&lfs.http_url("public/slow.git"), &dest, &[]));
    assert_eq!(std::fs::read(dest.join("big.bin")).unwrap(), bigger);
}

/// A submodule's LFS files arrive too (the submodule goes through the same stages); the
/// report's count is the top-level tree's.
#[test]
fn a_submodules_lfs_files_arrive_too() {
    let lfs = LfsServer::start();
    let weights = payload(15, 80_000);
    let sub_commit = lfs.push("weights", &[("w.bin", &weights[..], true)]);
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let git = |args: &[&str]| common::git_out(w, args);
    git(&["init", "-q", "-b", "main", "."]);
    std::fs::write(
        w.join(".gitmodules"),
        "[submodule \"m\"]\n\tpath = vendor/m\n\turl = ../weights.git\n",
    )
    .unwrap();
    git(&[
        "update-index",
        "--add",
        "--cacheinfo",
        &format!("160000,{sub_commit},vendor/m"),
    ]);
    git(&["add", ".gitmodules"]);
    git(&[
        "-c",
        "user.name=A",
        "-c",
        "user.email=a@x",
        "commit",
        "-qm",
        "super",
    ]);
    let bare = lfs.repos().join("super.git");
    git(&["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()]);
    git(&["push", "-q", bare.to_str().unwrap(), "main"]);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("w");
    let out = clone(
        &lfs.http_url("private/super.git"),
        &dest,
        &["--flags", "--recurse-submodules"],
    );
    ok(&out);
    assert_eq!(std::fs::read(dest.join("vendor/m/w.bin")).unwrap(), weights);
    assert_eq!(report(&out)["lfs"]["objects"], 0, "{}", out.stdout);
    assert_eq!(
        git_out(&dest.join("vendor/m"), &["status", "--porcelain"]),
        ""
    );
    assert_no_secret(&[&out.stdout, &out.stderr], &dest, "plainpass");
}
