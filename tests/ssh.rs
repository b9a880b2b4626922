//! SSH deploy keys and host-key trust against a real sshd (SPEC §2, §8): every key source and
//! format, the errors users meet, and no key material in any output.

#[path = "support/mod.rs"]
mod common;

use std::path::{Path, PathBuf};

use common::sshd::{keygen, SshServer};
use common::{assert_no_secret, fixtures, git_out, gitinit, run, Output};

struct Setup {
    dir: tempfile::TempDir,
    server: SshServer,
    ed25519: PathBuf,
    known_hosts: PathBuf,
}

fn setup() -> Setup {
    let fx = fixtures();
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    let (ed, ed_pub) = keygen(&keys, "id_ed25519", "ed25519", "", false);
    let (_, rsa_pub) = keygen(&keys, "id_rsa", "rsa", "", true);
    let (_, ecdsa_pub) = keygen(&keys, "id_ecdsa", "ecdsa", "", false);
    let (_, enc_pub) = keygen(&keys, "id_encrypted", "ed25519", "correct horse", false);
    keygen(&keys, "id_stranger", "ed25519", "", false);
    let server = SshServer::start(&fx.repos, &[&ed_pub, &rsa_pub, &ecdsa_pub, &enc_pub]);
    let known_hosts = dir.path().join("known_hosts");
    std::fs::write(&known_hosts, server.known_hosts_line()).unwrap();
    Setup {
        dir,
        server,
        ed25519: ed,
        known_hosts,
    }
}

impl Setup {
    fn key(&self, name: &str) -> PathBuf {
        self.dir.path().join("keys").join(name)
    }
    fn dest(&self) -> PathBuf {
        self.dir.path().join("work")
    }
    fn clone(&self, env: &[(&str, &str)], extra: &[&str]) -> Output {
        let _ = std::fs::remove_dir_all(self.dest());
        let mut cmd = gitinit();
        cmd.envs(env.iter().copied())
            .args([
                "clone",
                "-v",
                "--retries",
                "0",
                "--url",
                &self.server.url("basic.git"),
                "--dest",
            ])
            .arg(self.dest())
            .args(extra);
        run(&mut cmd)
    }
    fn with_key_file(&self, key: &Path, extra: &[&str]) -> Output {
        let mut args = vec![
            "--ssh-key",
            key.to_str().unwrap(),
            "--known-hosts",
            self.known_hosts.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        self.clone(&[], &args)
    }
    fn assert_cloned(&self, out: &Output) {
        assert_eq!(
            out.code,
            0,
            "stderr: {}\nsshd: {}",
            out.stderr,
            self.server.log()
        );
        assert_eq!(
            git_out(&self.dest(), &["rev-parse", "HEAD"]),
            fixtures().sha("c3")
        );
        assert_eq!(
            git_out(&self.dest(), &["config", "remote.origin.url"]),
            self.server.url("basic.git")
        );
    }
    fn assert_no_key_material(&self, out: &Output, key: &Path) {
        let text = std::fs::read_to_string(key).unwrap();
        // A line from the middle of the key body is a secret no output may hold.
        let line = text.lines().nth(2).unwrap();
        assert_no_secret(&[&out.stdout, &out.stderr], &self.dest(), line);
    }
}

#[test]
fn ed25519_key_file_with_known_hosts() {
    let s = setup();
    let out = s.with_key_file(&s.ed25519, &[]);
    s.assert_cloned(&out);
    s.assert_no_key_material(&out, &s.ed25519);
}

#[test]
fn rsa_pem_key_pasted_flat_into_an_env_var() {
    let s = setup();
    let text = std::fs::read_to_string(s.key("id_rsa")).unwrap();
    assert!(text.contains("BEGIN RSA PRIVATE KEY"), "PEM format");
    // As pasted into a secret that lost its line breaks.
    let flat = text.replace('\n', "\\n");
    let out = s.clone(
        &[("GITINIT_SSH_KEY", &flat)],
        &["--known-hosts", s.known_hosts.to_str().unwrap()],
    );
    s.assert_cloned(&out);
    s.assert_no_key_material(&out, &s.key("id_rsa"));
    let crlf = text.replace('\n', "\r\n");
    let out = s.clone(
        &[("GITINIT_SSH_KEY", &crlf)],
        &["--known-hosts", s.known_hosts.to_str().unwrap()],
    );
    s.assert_cloned(&out);
}

#[test]
fn polyaxon_ssh_path_with_its_known_hosts() {
    let s = setup();
    let secret = s.dir.path().join("secret");
    std::fs::create_dir(&secret).unwrap();
    std::fs::copy(s.key("id_ecdsa"), secret.join("deploy")).unwrap();
    std::fs::copy(&s.known_hosts, secret.join("known_hosts")).unwrap();
    let out = s.clone(
        &[
            ("POLYAXON_SSH_PATH", secret.to_str().unwrap()),
            ("POLYAXON_SSH_PRIVATE_KEY", "deploy"),
        ],
        &[],
    );
    s.assert_cloned(&out);
    // Without POLYAXON_SSH_PRIVATE_KEY the first of id_ed25519, id_ecdsa, id_rsa is used.
    std::fs::rename(secret.join("deploy"), secret.join("id_ecdsa")).unwrap();
    let out = s.clone(&[("POLYAXON_SSH_PATH", secret.to_str().unwrap())], &[]);
    s.assert_cloned(&out);
}

#[test]
fn encrypted_key_and_its_passphrase() {
    let s = setup();
    let key = s.key("id_encrypted");
    let kh = s.known_hosts.to_str().unwrap();
    let out = s.clone(
        &[("GITINIT_SSH_KEY_PASSPHRASE", "correct horse")],
        &["--ssh-key", key.to_str().unwrap(), "--known-hosts", kh],
    );
    s.assert_cloned(&out);
    assert!(!out.stderr.contains("correct horse"));

    let out = s.clone(
        &[("GITINIT_SSH_KEY_PASSPHRASE", "wrong battery")],
        &["--ssh-key", key.to_str().unwrap(), "--known-hosts", kh],
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("passphrase"), "{}", out.stderr);
    assert!(!out.stderr.contains("wrong battery"));

    let out = s.with_key_file(&key, &[]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("GITINIT_SSH_KEY_PASSPHRASE"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_key_that_is_not_a_deploy_key_is_denied_once() {
    let s = setup();
    let out = s.with_key_file(&s.key("id_stranger"), &[]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("Permission denied (publickey)"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("deploy key"), "{}", out.stderr);
    assert!(!s.dest().exists());
}

#[test]
fn wrong_things_given_as_the_key() {
    let s = setup();
    let pubkey = s.dir.path().join("keys/id_ed25519.pub");
    let out = s.with_key_file(&pubkey, &[]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("this is a public key (ssh-ed25519"),
        "{}",
        out.stderr
    );

    let ppk = s.dir.path().join("key.ppk");
    std::fs::write(
        &ppk,
        "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: x\n",
    )
    .unwrap();
    let out = s.with_key_file(&ppk, &[]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("puttygen"), "{}", out.stderr);

    let text = std::fs::read_to_string(&s.ed25519).unwrap();
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .join("\n");
    let out = s.clone(
        &[("GITINIT_SSH_KEY", &body)],
        &["--known-hosts", s.known_hosts.to_str().unwrap()],
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("BEGIN"), "{}", out.stderr);
    assert!(!out.stderr.contains(text.lines().nth(2).unwrap()));
}

#[test]
fn unknown_and_changed_host_keys_are_trust_failures() {
    let s = setup();
    // No known_hosts: only the built-in keys of github/gitlab/bitbucket, which this is not.
    let out = s.clone(&[], &["--ssh-key", s.ed25519.to_str().unwrap()]);
    assert_eq!(out.code, 8, "{}", out.stderr);
    let fp = s.server.host_key_fingerprint();
    assert!(
        out.stderr.contains(&format!("ssh-ed25519 {fp}")),
        "names the offered key {fp}: {}",
        out.stderr
    );
    assert!(out.stderr.contains("--known-hosts"), "{}", out.stderr);

    let other = s.dir.path().join("other_known_hosts");
    let (_, other_pub) = keygen(
        &s.dir.path().join("keys"),
        "other_host",
        "ed25519",
        "",
        false,
    );
    let k = std::fs::read_to_string(other_pub).unwrap();
    let mut parts = k.split_whitespace();
    std::fs::write(
        &other,
        format!(
            "[127.0.0.1]:{} {} {}\n",
            s.server.port,
            parts.next().unwrap(),
            parts.next().unwrap()
        ),
    )
    .unwrap();
    let out = s.clone(
        &[],
        &[
            "--ssh-key",
            s.ed25519.to_str().unwrap(),
            "--known-hosts",
            other.to_str().unwrap(),
        ],
    );
    assert_eq!(out.code, 8, "{}", out.stderr);
    assert!(out.stderr.contains("CHANGED"), "{}", out.stderr);
    assert!(out.stderr.contains(&fp), "{}", out.stderr);

    let out = s.clone(
        &[],
        &[
            "--ssh-key",
            s.ed25519.to_str().unwrap(),
            "--insecure-skip-host-key-check",
        ],
    );
    s.assert_cloned(&out);
    assert!(out.stderr.contains("insecure"), "{}", out.stderr);
    // git-sync's spelling: the env var, with a value as people write it (SPEC §15).
    let out = s.clone(
        &[("GITINIT_INSECURE_SKIP_HOST_KEY_CHECK", "Yes")],
        &["--ssh-key", s.ed25519.to_str().unwrap()],
    );
    s.assert_cloned(&out);
    assert!(out.stderr.contains("insecure"), "{}", out.stderr);
}

#[test]
fn hashed_known_hosts_entries() {
    let s = setup();
    let hashed = s.dir.path().join("hashed_known_hosts");
    std::fs::copy(&s.known_hosts, &hashed).unwrap();
    let st = std::process::Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(&hashed)
        .output()
        .unwrap();
    assert!(st.status.success());
    assert!(std::fs::read_to_string(&hashed).unwrap().starts_with("|1|"));
    let out = s.clone(
        &[],
        &[
            "--ssh-key",
            s.ed25519.to_str().unwrap(),
            "--known-hosts",
            hashed.to_str().unwrap(),
        ],
    );
    s.assert_cloned(&out);
}

#[test]
fn check_over_ssh() {
    let s = setup();
    let out = run(gitinit().args([
        "check",
        "--url",
        &s.server.url("basic.git"),
        "--revision",
        "feature",
        "--ssh-key",
        s.ed25519.to_str().unwrap(),
        "--known-hosts",
        s.known_hosts.to_str().unwrap(),
    ]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout.trim(),
        format!("{}\trefs/heads/feature", fixtures().sha("c4"))
    );
}

/// With no user in the URL, the SSH user is `git` (what GitHub, GitLab and Bitbucket expect).
/// The test sshd only lets `root` in, so its log shows the user that was asked for.
#[test]
fn the_ssh_user_defaults_to_git() {
    let s = setup();
    let url = format!("ssh://127.0.0.1:{}/basic.git", s.server.port);
    let out = run(gitinit()
        .args([
            "clone",
            "--retries",
            "0",
            "--url",
            &url,
            "--ssh-key",
            s.ed25519.to_str().unwrap(),
        ])
        .args(["--known-hosts", s.known_hosts.to_str().unwrap(), "--dest"])
        .arg(s.dest()));
    assert_eq!(out.code, 3, "{}", out.stderr);
    let log = s.server.log();
    assert!(
        log.contains("user git") || log.contains("User git"),
        "{log}"
    );
    assert!(!log.contains("user root"), "{log}");
}
