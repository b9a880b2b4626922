//! The binary run the way the image runs it: uid/gid 65532 with no passwd entry and no HOME, a
//! read-only root filesystem with only the destination writable (a tmpfs, like an emptyDir),
//! cloning over HTTPS with the harness CA.

#[path = "support/mod.rs"]
mod common;

use std::process::Command;

use common::{fixtures, run, HttpServer};

#[test]
fn as_the_image_runs_it() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root for a mount namespace");
        return;
    }
    let fx = fixtures();
    let http = HttpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let volume = dir.path().join("volume");
    std::fs::create_dir(&volume).unwrap();
    let mut up = Some(dir.path());
    while let Some(d) = up {
        let _ = Command::new("chmod").arg("a+rx").arg(d).status();
        up = d.parent();
    }
    // The checks run inside the namespace too, as root, once gitinit is done.
    let script = format!(
        "set -e
mount --make-rprivate /
mount -t tmpfs -o mode=0777 tmpfs {volume}
mount -o remount,bind,ro /
if touch {dir}/probe 2>/dev/null; then echo 'root is writable' >&2; exit 99; fi
setpriv --reuid=65532 --regid=65532 --clear-groups -- env -i PATH=/usr/bin:/bin \\
  {bin} clone --url {url} --ca-file {ca} --dest {volume}/code --report {volume}/report.json
echo \"head=$(git -c safe.directory='*' -C {volume}/code rev-parse HEAD)\"
echo \"owner=$(stat -c %u {volume}/code/.git/config)\"
echo \"status=$(git -c safe.directory='*' -C {volume}/code status --porcelain | wc -l)\"
",
        volume = volume.display(),
        dir = dir.path().display(),
        bin = env!("CARGO_BIN_EXE_gitinit"),
        url = http.https_url("public/basic.git"),
        ca = fx.ca.display(),
    );
    let mut cmd = Command::new("unshare");
    common::clean_env(&mut cmd, dir.path());
    cmd.args(["-m", "sh", "-c", &script]);
    let out = run(&mut cmd);
    assert_eq!(
        out.code, 0,
        "stdout: {}\nstderr: {}",
        out.stdout, out.stderr
    );
    assert!(
        out.stdout.contains(&format!("head={}", fx.sha("c3"))),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("owner=65532"), "{}", out.stdout);
    assert!(out.stdout.contains("status=0"), "{}", out.stdout);
    assert!(!dir.path().join("probe").exists());
}
