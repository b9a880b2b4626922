//! A real sshd on 127.0.0.1 serving git over SSH with deploy keys, for the SSH tests.
//!
//! sshd only logs in users that exist, so the URLs use `root@` (the tests run as root, as CI
//! does) with `PermitRootLogin forced-commands-only`: every key in authorized_keys is bound to a
//! forced command that runs git-upload-pack on a path inside the served directory, and nothing
//! else.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use tempfile::TempDir;

use super::{clean_env, die_with_parent, free_port, stop, wait_for_port};

pub struct SshServer {
    child: Child,
    pub port: u16,
    dir: TempDir,
}

/// Generates a key with ssh-keygen; `pem` writes the private key in PEM instead of OpenSSH
/// format. Returns (private, public).
pub fn keygen(
    dir: &Path,
    name: &str,
    kind: &str,
    passphrase: &str,
    pem: bool,
) -> (PathBuf, PathBuf) {
    let private = dir.join(name);
    let mut cmd = Command::new("ssh-keygen");
    clean_env(&mut cmd, dir);
    cmd.args([
        "-q",
        "-t",
        kind,
        "-N",
        passphrase,
        "-C",
        "gitinit-test",
        "-f",
    ])
    .arg(&private);
    if kind == "rsa" {
        cmd.args(["-b", "2048"]);
    }
    if pem {
        cmd.args(["-m", "PEM"]);
    }
    let out = cmd.output().expect("ssh-keygen runs");
    assert!(
        out.status.success(),
        "ssh-keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public = dir.join(format!("{name}.pub"));
    (private, public)
}

impl SshServer {
    /// Serves `repos_root`; `authorized` are public key files allowed to fetch.
    pub fn start(repos_root: &Path, authorized: &[&Path]) -> SshServer {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all("/run/sshd").unwrap();
        let (host_key, _) = keygen(d, "host_ed25519", "ed25519", "", false);
        let gate = d.join("git-gate.sh");
        std::fs::write(
            &gate,
            format!(
                r#"#!/bin/sh
# Forced command: only upload-pack / upload-archive, only inside the served directory.
set -f
set -- $SSH_ORIGINAL_COMMAND
cmd="$1"; path="$2"
# What a hosting service's git-lfs-authenticate answers, when a test set one (set_lfs_answer).
if [ "$cmd" = git-lfs-authenticate ] && [ -f {dir}/lfs-answer.json ]; then
  echo "$SSH_ORIGINAL_COMMAND" >> {dir}/lfs-asked.log
  exec cat {dir}/lfs-answer.json
fi
case "$cmd" in git-upload-pack|git-upload-archive) ;; *) echo "refused: $cmd" >&2; exit 1 ;; esac
path=$(printf '%s' "$path" | sed -e "s/^'//" -e "s/'$//" -e 's#^/##')
case "$path" in *..*) echo "refused path" >&2; exit 1 ;; esac
exec "$cmd" "{root}/$path"
"#,
                root = repos_root.display(),
                dir = d.display()
            ),
        )
        .unwrap();
        Command::new("chmod")
            .arg("755")
            .arg(&gate)
            .status()
            .unwrap();
        let mut keys = String::new();
        for k in authorized {
            let pubkey = std::fs::read_to_string(k).unwrap();
            keys.push_str(&format!(
                "restrict,command=\"{}\" {}",
                gate.display(),
                pubkey.trim()
            ));
            keys.push('\n');
        }
        std::fs::write(d.join("authorized_keys"), keys).unwrap();
        let port = free_port();
        let conf = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nPidFile {d}/sshd.pid\nAuthorizedKeysFile {d}/authorized_keys\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n\
             AllowUsers root\nPermitRootLogin forced-commands-only\nAcceptEnv GIT_PROTOCOL\nLogLevel VERBOSE\n",
            hk = host_key.display(),
            d = d.display()
        );
        std::fs::write(d.join("sshd_config"), conf).unwrap();
        let log = d.join("sshd.log");
        let mut cmd = Command::new("/usr/sbin/sshd");
        clean_env(&mut cmd, d);
        cmd.args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        die_with_parent(&mut cmd);
        let mut child = cmd
            .spawn()
            .expect("sshd starts (apt-get install openssh-server)");
        wait_for_port(port, &mut child, "sshd", &log);
        SshServer { child, port, dir }
    }

    pub fn url(&self, repo: &str) -> String {
        format!("ssh://root@127.0.0.1:{}/{repo}", self.port)
    }

    /// The known_hosts line for this server's host key.
    pub fn known_hosts_line(&self) -> String {
        let pubkey = std::fs::read_to_string(self.dir.path().join("host_ed25519.pub")).unwrap();
        let mut parts = pubkey.split_whitespace();
        let (kind, key) = (parts.next().unwrap(), parts.next().unwrap());
        format!("[127.0.0.1]:{} {kind} {key}\n", self.port)
    }

    /// The host key's fingerprint as `ssh-keygen -l` prints it.
    pub fn host_key_fingerprint(&self) -> String {
        let out = Command::new("ssh-keygen")
            .arg("-lf")
            .arg(self.dir.path().join("host_ed25519.pub"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// From now on `git-lfs-authenticate` answers `json` (a hosting service's stand-in: Debian
    /// has no server side of it); without one, the command is refused as on a host without LFS.
    pub fn set_lfs_answer(&self, json: &str) {
        std::fs::write(self.dir.path().join("lfs-answer.json"), json).unwrap();
    }

    /// The `git-lfs-authenticate` commands the server was asked to run.
    pub fn lfs_asked(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("lfs-asked.log")).unwrap_or_default()
    }
}

impl Drop for SshServer {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}
