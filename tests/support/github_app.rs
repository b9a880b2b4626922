//! A stand-in for GitHub's App API (`github_app.py`, Python's standard library and the openssl
//! command): it verifies the App's JWT against the App's public key as GitHub does, and the
//! tokens it mints become the one password of user `x-access-token` that the harness's git
//! server (an [`HttpServer`]) accepts under `/private/`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use tempfile::TempDir;

use super::{clean_env, die_with_parent, fixtures, free_port, stop, wait_for_port, HttpServer};

/// How the stand-in behaves.
pub struct ApiOptions {
    /// `(owner, installation id)`: where the App is installed.
    pub installations: Vec<(String, u64)>,
    /// Serve under `/api/v3`, as GitHub Enterprise Server does.
    pub prefix: String,
    /// HTTPS with the harness CA's server certificate.
    pub tls: bool,
    /// Seconds added to the stand-in's clock (its `Date` header and its JWT checks).
    pub clock_offset: i64,
    /// The first N requests are answered with `fail_status` (and `Retry-After: 1`).
    pub fail_first: u32,
    pub fail_status: u16,
}

impl Default for ApiOptions {
    fn default() -> Self {
        ApiOptions {
            installations: vec![("private".into(), 4242)],
            prefix: "/api/v3".into(),
            tls: false,
            clock_offset: 0,
            fail_first: 0,
            fail_status: 503,
        }
    }
}

pub struct GitHubApi {
    child: Child,
    pub port: u16,
    /// The App's id, as the stand-in knows it.
    pub app_id: String,
    prefix: String,
    tls: bool,
    dir: TempDir,
}

/// An RSA key pair as GitHub hands out App keys (PKCS#1 PEM): (private, public).
pub fn app_key(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let private = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub.pem"));
    let run = |args: &[&str]| {
        let mut cmd = Command::new("openssl");
        clean_env(&mut cmd, dir);
        let out = cmd.args(args).output().expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let (priv_s, pub_s) = (private.to_str().unwrap(), public.to_str().unwrap());
    run(&["genrsa", "-traditional", "-out", priv_s, "2048"]);
    run(&["rsa", "-in", priv_s, "-pubout", "-out", pub_s]);
    (private, public)
}

impl GitHubApi {
    /// The App `app_id` whose public key is `public_key`, minting tokens for `git`.
    pub fn start(git: &HttpServer, app_id: &str, public_key: &Path, opts: ApiOptions) -> GitHubApi {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/github_app.py");
        let port = free_port();
        let installations: Vec<String> = opts
            .installations
            .iter()
            .map(|(o, i)| format!("{o}={i}"))
            .collect();
        let mut cmd = Command::new("python3");
        clean_env(&mut cmd, d);
        cmd.arg(&script)
            .args(["--port", &port.to_string(), "--app-id", app_id])
            .arg("--dir")
            .arg(d)
            .arg("--public-key")
            .arg(public_key)
            .arg("--users")
            .arg(git.users_file())
            .args(["--installations", &installations.join(",")])
            .args(["--prefix", &opts.prefix])
            .args(["--clock-offset", &opts.clock_offset.to_string()])
            .args(["--fail-first", &opts.fail_first.to_string()])
            .args(["--fail-status", &opts.fail_status.to_string()]);
        if opts.tls {
            let fx = fixtures();
            cmd.arg("--tls").arg(&fx.server_cert).arg(&fx.server_key);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("stderr.log")).unwrap());
        die_with_parent(&mut cmd);
        let mut child = cmd.spawn().expect("python3 starts the GitHub API stand-in");
        wait_for_port(
            port,
            &mut child,
            "the GitHub API stand-in",
            &d.join("stderr.log"),
        );
        GitHubApi {
            child,
            port,
            app_id: app_id.to_string(),
            prefix: opts.prefix,
            tls: opts.tls,
            dir,
        }
    }

    /// What `--github-api-url` is given.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}{}", self.port, self.prefix)
    }

    fn lines(&self, name: &str) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join(name))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// `METHOD PATH STATUS` of each request answered, and notes of what was wrong.
    pub fn requests(&self) -> Vec<String> {
        self.lines("requests")
    }

    /// The tokens minted so far.
    pub fn tokens(&self) -> Vec<String> {
        self.lines("tokens")
    }

    /// The JWTs received so far.
    pub fn jwts(&self) -> Vec<String> {
        self.lines("jwts")
    }

    /// The claims of each JWT whose signature verified.
    pub fn claims(&self) -> Vec<serde_json::Value> {
        self.lines("claims")
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The bodies of the token requests.
    pub fn bodies(&self) -> Vec<String> {
        self.lines("bodies")
    }

    /// What the stand-in printed (a Python traceback, if it failed).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }
}

impl Drop for GitHubApi {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}
