//! The shared cache (SPEC §11): many concurrent runs on one cache cost the remote one pack
//! fetch; a run killed at any moment leaves a usable cache; a damaged entry is rebuilt; the
//! cache never lets a run read what its own credentials cannot; the destination does not need
//! the cache afterwards. Pack fetches are counted in the server's request log (each is a POST
//! to git-upload-pack; listing the refs is a GET).

#[path = "support/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{assert_no_secret, fixtures, git_out, gitinit, ok, run, HttpServer, Output};

fn clone_cmd(url: &str, dest: &Path, cache: &Path, extra: &[&str]) -> Command {
    let mut cmd = gitinit();
    cmd.args(["clone", "-v", "--report", "-", "--url", url, "--dest"])
        .arg(dest)
        .arg("--cache")
        .arg(cache)
        .args(extra);
    cmd
}

fn report(out: &Output) -> serde_json::Value {
    let line = out.stdout.lines().last().expect("a report line");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

/// The working tree is at `commit`, clean, and its repository is whole by itself.
fn assert_checkout(dest: &Path, commit: &str) {
    assert_eq!(git_out(dest, &["rev-parse", "HEAD"]), commit);
    assert_eq!(git_out(dest, &["status", "--porcelain", "--ignored"]), "");
    assert!(
        !dest.join(".git/objects/info/alternates").exists(),
        "no alternates: the destination must not need the cache"
    );
}

fn entries(cache: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "git"))
        .collect();
    v.sort();
    v
}

fn fsck(git_dir: &Path) {
    let out = Command::new("git")
        .args(["--git-dir"])
        .arg(git_dir)
        .args(["fsck", "--no-dangling", "--connectivity-only"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git fsck {}: {}",
        git_dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn twenty_concurrent_runs_cost_the_remote_one_pack_fetch() {
    let fx = fixtures();
    let http = HttpServer::start();
    let url = http.http_url("public/basic.git");
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let children: Vec<_> = (0..20)
        .map(|i| {
            clone_cmd(&url, &dir.path().join(format!("pod{i}")), &cache, &[])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut kinds = vec![];
    for (i, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        let out = Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into(),
            stderr: String::from_utf8_lossy(&out.stderr).into(),
        };
        ok(&out);
        kinds.push(report(&out)["cache"].as_str().unwrap().to_string());
        assert_checkout(&dir.path().join(format!("pod{i}")), fx.sha("c3"));
    }
    assert_eq!(
        http.count_requests("POST"),
        1,
        "one pack fetch for 20 runs; reports: {kinds:?}\n{}",
        http.log()
    );
    assert_eq!(
        kinds.iter().filter(|k| *k == "filled").count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| *k == "hit").count(),
        19,
        "{kinds:?}"
    );
    // Every run still asked the remote for its refs.
    assert!(http.count_requests("GET") >= 20);
    assert_eq!(entries(&cache).len(), 1);

    // The destinations stand on their own: the cache may go.
    std::fs::remove_dir_all(&cache).unwrap();
    for i in [0, 19] {
        let dest = dir.path().join(format!("pod{i}"));
        fsck(&dest.join(".git"));
        assert_eq!(
            git_out(&dest, &["log", "--format=%s", "-1", "v1.0"]),
            "c2",
            "tags come along as a fetch's auto-follow brings them"
        );
    }
}

#[test]
fn a_new_commit_is_fetched_once_and_the_rest_is_taken_from_the_cache() {
    let fx = fixtures();
    let http = HttpServer::start();
    let url = http.http_url("public/basic.git");
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let first = run(&mut clone_cmd(
        &url,
        &dir.path().join("a"),
        &cache,
        &["--revision", "feature"],
    ));
    ok(&first);
    assert_eq!(report(&first)["cache"], "filled");
    // Another revision the entry lacks: one more pack fetch, into the cache.
    let second = run(&mut clone_cmd(
        &url,
        &dir.path().join("b"),
        &cache,
        &["--revision", "Release-1.0"],
    ));
    ok(&second);
    assert_eq!(report(&second)["cache"], "filled");
    assert!(second.stderr.contains("cache filled"), "{}", second.stderr);
    // A revision whose history the entry already holds: nothing fetched.
    let third = run(&mut clone_cmd(
        &url,
        &dir.path().join("c"),
        &cache,
        &["--revision", "light"],
    ));
    ok(&third);
    assert_eq!(report(&third)["cache"], "hit");
    assert_eq!(report(&third)["received_bytes"], 0);
    assert!(third.stderr.contains("cache hit"), "{}", third.stderr);
    assert_checkout(&dir.path().join("c"), fx.sha("c1"));
    assert_eq!(http.count_requests("POST"), 2, "{}", http.log());
    // A rerun of a destination through the cache, to a revision the cache has.
    let rerun = run(&mut clone_cmd(
        &url,
        &dir.path().join("a"),
        &cache,
        &["--revision", "v1.0"],
    ));
    ok(&rerun);
    assert_eq!(report(&rerun)["cache"], "hit");
    assert_checkout(&dir.path().join("a"), fx.sha("c2"));
    // The branch checked out tracks origin, as without the cache.
    let branch = run(&mut clone_cmd(
        &url,
        &dir.path().join("d"),
        &cache,
        &["--revision", "feature"],
    ));
    ok(&branch);
    assert_eq!(
        git_out(
            &dir.path().join("d"),
            &["rev-parse", "--abbrev-ref", "HEAD@{upstream}"]
        ),
        "origin/feature"
    );
    assert_eq!(http.count_requests("POST"), 2, "{}", http.log());
}

#[test]
fn a_shallow_entry_serves_shallow_runs_and_is_deepened_for_a_full_one() {
    let http = HttpServer::start();
    let url = http.http_url("public/deep.git");
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let shallow = run(&mut clone_cmd(
        &url,
        &dir.path().join("a"),
        &cache,
        &["--depth", "1"],
    ));
    ok(&shallow);
    assert_eq!(report(&shallow)["cache"], "filled");
    assert_eq!(report(&shallow)["shallow"], true);
    let again = run(&mut clone_cmd(
        &url,
        &dir.path().join("b"),
        &cache,
        &["--depth", "1"],
    ));
    ok(&again);
    assert_eq!(report(&again)["cache"], "hit");
    assert_eq!(report(&again)["shallow"], true);
    assert_eq!(
        git_out(&dir.path().join("b"), &["rev-list", "--count", "HEAD"]),
        "1"
    );
    // More history than the entry has: fetched into it.
    let deeper = run(&mut clone_cmd(
        &url,
        &dir.path().join("c"),
        &cache,
        &["--depth", "5"],
    ));
    ok(&deeper);
    assert_eq!(report(&deeper)["cache"], "filled");
    assert_eq!(
        git_out(&dir.path().join("c"), &["rev-list", "--count", "HEAD"]),
        "5"
    );
    let full = run(&mut clone_cmd(&url, &dir.path().join("d"), &cache, &[]));
    ok(&full);
    assert_eq!(report(&full)["cache"], "filled");
    assert_eq!(report(&full)["shallow"], false);
    assert_eq!(
        git_out(&dir.path().join("d"), &["rev-list", "--count", "HEAD"]),
        "40"
    );
    fsck(&dir.path().join("d/.git"));
    // Now whole: a depth-1 run is a hit (and gets what the entry has).
    let after = run(&mut clone_cmd(
        &url,
        &dir.path().join("e"),
        &cache,
        &["--depth", "1"],
    ));
    ok(&after);
    assert_eq!(report(&after)["cache"], "hit");
    fsck(&dir.path().join("e/.git"));
}

#[test]
fn a_private_repository_needs_credentials_even_with_a_warm_cache() {
    let fx = fixtures();
    let http = HttpServer::start();
    let url = http.http_url("private/basic.git");
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let mut warm = clone_cmd(&url, &dir.path().join("a"), &cache, &[]);
    warm.env("POLYAXON_GIT_CREDENTIALS", "bob:plainpass");
    let warm = run(&mut warm);
    ok(&warm);
    assert_eq!(report(&warm)["cache"], "filled");
    assert_no_secret(&[&warm.stdout, &warm.stderr], &cache, "plainpass");
    assert_no_secret(&[], &dir.path().join("a"), "plainpass");

    let none = run(&mut clone_cmd(&url, &dir.path().join("b"), &cache, &[]));
    assert_eq!(none.code, 3, "{}", none.stderr);
    assert!(!dir.path().join("b/file.txt").exists());
    let mut wrong = clone_cmd(&url, &dir.path().join("c"), &cache, &[]);
    wrong.env("POLYAXON_GIT_CREDENTIALS", "bob:wrong");
    let wrong = run(&mut wrong);
    assert_eq!(wrong.code, 3, "{}", wrong.stderr);
    assert!(!dir.path().join("c/file.txt").exists());

    let mut good = clone_cmd(&url, &dir.path().join("d"), &cache, &[]);
    good.env("POLYAXON_GIT_CREDENTIALS", "bob:plainpass");
    let good = run(&mut good);
    ok(&good);
    assert_eq!(report(&good)["cache"], "hit");
    assert_checkout(&dir.path().join("d"), fx.sha("c3"));
}

#[test]
fn runs_killed_during_a_fill_leave_a_usable_cache() {
    let fx = fixtures();
    let http = HttpServer::start();
    let url = http.http_url("public/big.git");
    let dir = tempfile::tempdir().unwrap();
    // Killed at many moments of a fill (listing, negotiation, pack, index, refs), each on a
    // cache the previous kill left: the next run always succeeds on it.
    let cache = dir.path().join("cache");
    for (i, ms) in [0u64, 5, 10, 20, 30, 45, 60, 80, 100, 130, 170, 220]
        .into_iter()
        .enumerate()
    {
        let dest = dir.path().join(format!("killed{i}"));
        let mut child = clone_cmd(&url, &dest, &cache, &[])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(ms));
        let _ = child.kill();
        let _ = child.wait();
        // Start over on every other kill, so that most kills land in a fill.
        if i % 2 == 1 {
            let next = run(&mut clone_cmd(
                &url,
                &dir.path().join(format!("next{i}")),
                &cache,
                &[],
            ));
            ok(&next);
            fsck(&dir.path().join(format!("next{i}/.git")));
            for e in entries(&cache) {
                fsck(&e);
            }
            std::fs::remove_dir_all(&cache).unwrap();
        }
    }
    // A kill while the pack is arriving, for sure: the server stalls mid-pack.
    let proxy =
        common::FaultProxy::start(http.http_port, common::Fault::StallAfter { bytes: 60_000 });
    let purl = proxy.url("public/big.git");
    let mut child = clone_cmd(&purl, &dir.path().join("stalled"), &cache, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(child.try_wait().unwrap().is_none(), "the fill is stalled");
    let _ = child.kill();
    let _ = child.wait();
    proxy.heal();
    let next = run(&mut clone_cmd(
        &purl,
        &dir.path().join("after-stall"),
        &cache,
        &[],
    ));
    ok(&next);
    assert_eq!(report(&next)["cache"], "filled");
    assert_checkout(
        &dir.path().join("after-stall"),
        &git_out(&fx.repo("big.git"), &["rev-parse", "HEAD"]),
    );
    for e in entries(&cache) {
        fsck(&e);
        let leftovers: Vec<_> = std::fs::read_dir(e.join("objects/pack"))
            .unwrap()
            .map(|f| f.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| {
                n.starts_with("pack_git2_") || n.starts_with("tmp_") || n.starts_with(".tmp")
            })
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}

#[test]
fn a_damaged_entry_is_rebuilt_and_the_run_succeeds() {
    let fx = fixtures();
    let http = HttpServer::start();
    let url = http.http_url("public/basic.git");
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    ok(&run(&mut clone_cmd(
        &url,
        &dir.path().join("a"),
        &cache,
        &[],
    )));
    let pack_dir = entries(&cache)[0].join("objects/pack");
    let pack_file = |ext: &str| {
        std::fs::read_dir(&pack_dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == ext))
            .unwrap()
    };
    // A pack cut short.
    let pack = pack_file("pack");
    let len = std::fs::metadata(&pack).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&pack)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let out = run(&mut clone_cmd(&url, &dir.path().join("b"), &cache, &[]));
    ok(&out);
    assert_eq!(report(&out)["cache"], "filled");
    assert!(out.stderr.contains("damaged"), "{}", out.stderr);
    assert_checkout(&dir.path().join("b"), fx.sha("c3"));
    fsck(&dir.path().join("b/.git"));
    // An index gone.
    std::fs::remove_file(pack_file("idx")).unwrap();
    let out = run(&mut clone_cmd(&url, &dir.path().join("c"), &cache, &[]));
    ok(&out);
    assert_eq!(report(&out)["cache"], "filled");
    assert_checkout(&dir.path().join("c"), fx.sha("c3"));
    // An entry that is no repository at all.
    let entry = entries(&cache)[0].clone();
    std::fs::remove_dir_all(&entry).unwrap();
    std::fs::create_dir_all(entry.join("objects")).unwrap();
    std::fs::write(entry.join("HEAD"), "garbage").unwrap();
    let out = run(&mut clone_cmd(&url, &dir.path().join("d"), &cache, &[]));
    ok(&out);
    assert_checkout(&dir.path().join("d"), fx.sha("c3"));
    assert_eq!(http.count_requests("POST"), 4, "{}", http.log());
}

#[test]
fn an_unusable_cache_is_a_warning_and_the_run_goes_on() {
    let fx = fixtures();
    let http = HttpServer::start();
    let url = http.http_url("public/basic.git");
    let dir = tempfile::tempdir().unwrap();
    // A file where the cache directory should be: it cannot be created (root can write
    // anywhere else).
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "").unwrap();
    let out = run(&mut clone_cmd(
        &url,
        &dir.path().join("a"),
        &blocker.join("cache"),
        &[],
    ));
    ok(&out);
    assert_eq!(report(&out)["cache"], "off");
    assert!(
        out.stderr.contains("the cache cannot be used"),
        "{}",
        out.stderr
    );
    assert_checkout(&dir.path().join("a"), fx.sha("c3"));
    // Without --cache the report says so too.
    let mut plain = gitinit();
    plain
        .args(["clone", "--report", "-", "--url", &url, "--dest"])
        .arg(dir.path().join("b"));
    let plain = run(&mut plain);
    ok(&plain);
    assert_eq!(report(&plain)["cache"], "off");
}

/// Holds a lock on a cache entry's lock file from another process, as a run using it does.
fn hold_entry(lock: &Path) -> std::process::Child {
    hold_entry_as(lock, "F_RDLCK")
}

fn hold_entry_as(lock: &Path, kind: &str) -> std::process::Child {
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import fcntl, os, struct, sys, time\n\
             fd = os.open(sys.argv[1], os.O_RDWR)\n\
             fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack('hhqqi', getattr(fcntl, sys.argv[2]), 0, 0, 0, 0))\n\
             print('locked', flush=True)\n\
             time.sleep(60)\n",
        ])
        .arg(lock)
        .arg(kind)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked");
    child
}

#[test]
fn eviction_takes_the_least_recently_used_entry_never_one_in_use() {
    let http = HttpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let clone = |repo: &str, dest: &str, extra: &[&str]| {
        let out = run(&mut clone_cmd(
            &http.http_url(&format!("public/{repo}")),
            &dir.path().join(dest),
            &cache,
            extra,
        ));
        ok(&out);
        report(&out)
    };
    // big.git's entry alone is ~400 kB; a bound of 300 kB leaves room for the others only.
    clone("big.git", "a", &[]);
    std::thread::sleep(Duration::from_millis(20));
    clone("basic.git", "b", &[]);
    let big_entry: Vec<_> = entries(&cache);
    assert_eq!(big_entry.len(), 2);
    std::thread::sleep(Duration::from_millis(20));
    // An entry in use is never taken, however old.
    let big_name = big_entry
        .iter()
        .find(|e| {
            e.join("objects/pack")
                .read_dir()
                .unwrap()
                .any(|f| f.unwrap().metadata().unwrap().len() > 300_000)
        })
        .unwrap()
        .clone();
    let lock = big_name.with_extension("lock");
    let mut holder = hold_entry(&lock);
    clone("deep.git", "c", &["--cache-max-size", "300K"]);
    assert!(big_name.exists(), "in use: kept");
    // Over the bound still: the next least recently used one went instead.
    assert_eq!(entries(&cache).len(), 2, "basic.git's entry evicted");
    let _ = holder.kill();
    let _ = holder.wait();
    // Free now, and least recently used: evicted by the next fill over the bound.
    clone("wide.git", "d", &["--cache-max-size", "300K"]);
    assert!(!big_name.exists(), "evicted: {:?}", entries(&cache));
    assert_eq!(entries(&cache).len(), 2);
    // The evicted entry's destination did not need it.
    fsck(&dir.path().join("a/.git"));
    // Evicted entries come back on the next use.
    let again = clone("big.git", "e", &[]);
    assert_eq!(again["cache"], "filled");
}

#[test]
fn a_bad_size_is_invalid_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(gitinit()
        .args(["clone", "--url", "https://example.com/r", "--dest"])
        .arg(dir.path().join("d"))
        .args(["--cache", "/tmp/c", "--cache-max-size", "lots"]));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--cache-max-size"), "{}", out.stderr);
}

#[test]
fn submodules_get_entries_of_their_own() {
    let fx = fixtures();
    let http = HttpServer::start();
    let url = http.http_url("public/super.git");
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    for (i, expected_posts) in [(0, 3), (1, 3)] {
        let dest = dir.path().join(format!("w{i}"));
        let out = run(&mut clone_cmd(
            &url,
            &dest,
            &cache,
            &["--submodules", "recursive"],
        ));
        ok(&out);
        assert_eq!(
            git_out(&dest.join("libs/sub/nested"), &["rev-parse", "HEAD"]),
            fx.sha("n1")
        );
        assert_eq!(git_out(&dest, &["status", "--porcelain"]), "");
        assert_eq!(
            http.count_requests("POST"),
            expected_posts,
            "the second run fetches no pack: {}",
            http.log()
        );
    }
    assert_eq!(entries(&cache).len(), 3, "super, sub and nested");
}

#[test]
fn waiting_for_another_runs_fill_is_bounded_by_the_timeout() {
    let fx = fixtures();
    let http = HttpServer::start();
    let url = http.http_url("public/basic.git");
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    ok(&run(&mut clone_cmd(
        &url,
        &dir.path().join("a"),
        &cache,
        &["--revision", "light"],
    )));
    // Another run "fills" the entry (holds it exclusively) and never ends.
    let lock = entries(&cache)[0].with_extension("lock");
    let mut filler = hold_entry_as(&lock, "F_WRLCK");
    let started = std::time::Instant::now();
    let out = run(&mut clone_cmd(
        &url,
        &dir.path().join("b"),
        &cache,
        &["--timeout", "2s"],
    ));
    assert_eq!(out.code, 6, "{}", out.stderr);
    assert!(out.stderr.contains("waiting"), "{}", out.stderr);
    assert!(started.elapsed() < Duration::from_secs(60));
    assert!(!dir.path().join("b/file.txt").exists());
    // The holder gone, the same run succeeds.
    let _ = filler.kill();
    let _ = filler.wait();
    let out = run(&mut clone_cmd(
        &url,
        &dir.path().join("b"),
        &cache,
        &["--timeout", "60s"],
    ));
    ok(&out);
    assert_checkout(&dir.path().join("b"), fx.sha("c3"));
}

#[test]
fn a_partial_clone_goes_without_the_cache() {
    let fx = fixtures();
    let http = HttpServer::start();
    let url = http.http_url("public/basic.git");
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let out = run(&mut clone_cmd(
        &url,
        &dir.path().join("a"),
        &cache,
        &["--filter", "blob:none"],
    ));
    ok(&out);
    assert_eq!(report(&out)["cache"], "off");
    assert!(
        out.stderr.contains("--cache is not used with --filter"),
        "{}",
        out.stderr
    );
    assert_checkout(&dir.path().join("a"), fx.sha("c3"));
    assert!(!cache.exists() || entries(&cache).is_empty());
}

#[test]
fn a_planted_symlink_in_the_cache_is_never_followed() {
    let fx = fixtures();
    let http = HttpServer::start();
    let url = http.http_url("public/basic.git");
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    ok(&run(&mut clone_cmd(
        &url,
        &dir.path().join("a"),
        &cache,
        &[],
    )));
    let entry = entries(&cache)[0].clone();
    // Outside the cache: what a killed fill's leftovers look like, which a fill removes.
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(outside.join("objects/pack")).unwrap();
    std::fs::write(outside.join("config.lock"), "keep").unwrap();
    std::fs::write(outside.join("objects/pack/tmp_pack_x"), "keep").unwrap();
    std::fs::remove_dir_all(&entry).unwrap();
    std::os::unix::fs::symlink(&outside, &entry).unwrap();
    let out = run(&mut clone_cmd(&url, &dir.path().join("b"), &cache, &[]));
    ok(&out);
    assert_eq!(report(&out)["cache"], "filled");
    assert_checkout(&dir.path().join("b"), fx.sha("c3"));
    assert!(
        outside.join("config.lock").exists() && outside.join("objects/pack/tmp_pack_x").exists()
    );
    assert!(!std::fs::symlink_metadata(&entry)
        .unwrap()
        .file_type()
        .is_symlink());
    // A lock file planted as a symlink: no file appears where it points; the run goes on
    // without the cache.
    let lock = entry.with_extension("lock");
    let target = dir.path().join("created-through-the-link");
    std::fs::remove_file(&lock).unwrap();
    std::os::unix::fs::symlink(&target, &lock).unwrap();
    let out = run(&mut clone_cmd(&url, &dir.path().join("c"), &cache, &[]));
    ok(&out);
    assert_eq!(report(&out)["cache"], "off");
    assert!(
        out.stderr.contains("the cache cannot be used"),
        "{}",
        out.stderr
    );
    assert!(!target.exists());
    assert_checkout(&dir.path().join("c"), fx.sha("c3"));
}
