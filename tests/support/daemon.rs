//! git daemon (the git:// protocol).

use std::process::{Child, Command, Stdio};

use tempfile::TempDir;

use super::{clean_env, die_with_parent, fixtures, free_port, git_exec_path, stop, wait_for_port};

/// git daemon serving the fixture repositories (upload-pack only).
pub struct GitDaemon {
    child: Child,
    pub port: u16,
    _dir: TempDir,
}

impl GitDaemon {
    pub fn start() -> GitDaemon {
        let fx = fixtures();
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let log = dir.path().join("daemon.log");
        let mut cmd = Command::new(git_exec_path().join("git-daemon"));
        clean_env(&mut cmd, dir.path());
        cmd.arg("--listen=127.0.0.1")
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", fx.repos.display()))
            .args(["--export-all", "--reuseaddr"])
            .arg(&fx.repos)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        die_with_parent(&mut cmd);
        let mut child = cmd.spawn().expect("git-daemon starts");
        wait_for_port(port, &mut child, "git daemon", &log);
        GitDaemon {
            child,
            port,
            _dir: dir,
        }
    }

    pub fn url(&self, repo: &str) -> String {
        format!("git://127.0.0.1:{}/{repo}", self.port)
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}
