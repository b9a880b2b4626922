//! A real Git LFS server on 127.0.0.1, and fixture repositories pushed into it with Debian's
//! `git-lfs` client (proof that both speak the protocol).
//!
//! One lighttpd serves HTTP and HTTPS (the harness CA's certificate, as [`HttpServer`]):
//! - `/public/NAME.git` and `/private/NAME.git` (Basic auth, alice:`s3cr:et@/%x`, bob:`plainpass`):
//!   git-http-backend on the server's own repositories;
//! - `/{public,private}/NAME.git/info/lfs/…` (the default endpoint git-lfs derives from the
//!   repository URL): proxied to giftless as `/lfs/NAME.git/info/lfs/…`, so both paths share one
//!   store (giftless's "organization" is `lfs`, its "repo" `NAME`); `/private/` asks for Basic auth
//!   on the batch API as on the repository;
//! - `/lfs/…`: proxied to giftless as it is, without Basic auth. The batch answer's `href`s point
//!   here (lighttpd forwards `Host` and `X-Forwarded-Proto`, giftless builds its links from them)
//!   and carry their own token (a `?jwt=` for downloads, an `Authorization` header for uploads).
//!
//! giftless 0.6.2 runs under werkzeug's threaded server from a venv that `.ci/py-venv.sh giftless`
//! builds (PyPI, pinned; the harness runs the script itself when the venv is missing): local
//! storage, `allow_anon:read_write`, JWT pre-authorised links, non-legacy endpoints. A small WSGI
//! wrapper notes each request and its status as the answer starts (lighttpd's access log is
//! written late), which [`LfsServer::downloads`] counts.
//!
//! Found running it: a batch in which every object is missing is answered with a whole-request
//! 404 (`{"message": "404 Not Found: Cannot find any of the requested objects"}`); per-object
//! errors (`"error": {"code": 404}`) only come when some of the objects exist.

use super::*;

/// Runs giftless's Flask app under werkzeug's threaded server, behind `ProxyFix` (the links it
/// hands out use the scheme and host the client used on lighttpd), and notes every request as
/// `METHOD PATH STATUS` when its answer starts: before the client can have finished reading it.
const GIFTLESS_RUNNER: &str = r#"
import sys, threading
from werkzeug.serving import run_simple
from werkzeug.middleware.proxy_fix import ProxyFix
from giftless.app import init_app

port, requests_log = int(sys.argv[1]), sys.argv[2]
app = init_app()
inner = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)
lock = threading.Lock()

def noting(environ, start_response):
    def start(status, headers, exc_info=None):
        with lock, open(requests_log, "a") as f:
            f.write("%s %s %s\n" % (environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""), status.split()[0]))
        return start_response(status, headers, exc_info)
    return inner(environ, start)

app.wsgi_app = noting
run_simple("127.0.0.1", port, app, threaded=True)
"#;

/// lighttpd (git-http-backend for the repositories, Basic auth on /private/ with the same users as
/// HttpServer: alice:`s3cr:et@/%x`, bob:`plainpass`) in front of giftless (local storage).
/// The default LFS endpoint of `<repo URL>/info/lfs` works for both /public/NAME.git and
/// /private/NAME.git (for /private/ the batch API requires Basic auth; the storage links giftless
/// hands out carry their own token and do not require Basic auth).
pub struct LfsServer {
    lighttpd: Child,
    giftless: Child,
    pub http_port: u16,
    pub https_port: u16,
    dir: TempDir,
}

impl LfsServer {
    /// Starts one (free ports on 127.0.0.1, HTTP and HTTPS with the harness CA like HttpServer
    /// does). Stopped on Drop (also if the test panics), dies with the test process.
    pub fn start() -> LfsServer {
        let fx = fixtures();
        let venv = python_venv("giftless");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for sub in ["repos", "storage", "work", "home"] {
            std::fs::create_dir(d.join(sub)).unwrap();
        }
        std::fs::write(d.join("users"), "alice:s3cr:et@/%x\nbob:plainpass\n").unwrap();

        let giftless_port = free_port();
        std::fs::write(d.join("run_giftless.py"), GIFTLESS_RUNNER).unwrap();
        std::fs::write(
            d.join("giftless.yaml"),
            format!(
                r#"
LEGACY_ENDPOINTS: false
AUTH_PROVIDERS:
  - giftless.auth.allow_anon:read_write
PRE_AUTHORIZED_ACTION_PROVIDER:
  factory: giftless.auth.jwt:factory
  options:
    algorithm: HS256
    private_key: gitinit-test-key
    default_lifetime: 3600
TRANSFER_ADAPTERS:
  basic:
    factory: giftless.transfer.basic_streaming:factory
    options:
      storage_class: giftless.storage.local_storage:LocalStorage
      storage_options:
        path: {storage}
      action_lifetime: 3600
"#,
                storage = d.join("storage").display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(d.join("giftless.log")).unwrap();
        let mut cmd = Command::new(venv.join("bin/python"));
        clean_env(&mut cmd, &d.join("home"));
        cmd.current_dir(d)
            .env("GIFTLESS_CONFIG_FILE", d.join("giftless.yaml"))
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .arg(d.join("run_giftless.py"))
            .arg(giftless_port.to_string())
            .arg(d.join("requests.log"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        die_with_parent(&mut cmd);
        let mut giftless = cmd.spawn().expect("giftless's python starts");
        // Python imports Flask and friends first: give it longer than wait_for_port's 10 s on a
        // busy machine.
        wait_for_port_within(
            Duration::from_secs(60),
            giftless_port,
            &mut giftless,
            "giftless",
            &d.join("giftless.log"),
        );

        let bundle = fx.server_cert.parent().unwrap().join("server-bundle.pem");
        let backend = git_exec_path().join("git-http-backend");
        let (http_port, https_port) = (free_port(), free_port());
        let conf = format!(
            r#"
server.document-root = "{d}"
server.bind = "127.0.0.1"
server.port = {http_port}
server.errorlog = "{d}/error.log"
accesslog.filename = "{d}/access.log"
server.pid-file = "{d}/lighttpd.pid"
server.stream-response-body = 1
server.stream-request-body = 1
server.modules = ("mod_auth", "mod_authn_file", "mod_proxy", "mod_alias", "mod_setenv", "mod_cgi", "mod_openssl", "mod_accesslog")
auth.backend = "plain"
auth.backend.plain.userfile = "{d}/users"
auth.require = ("/private/" => ("method" => "basic", "realm" => "git", "require" => "valid-user"))
$HTTP["url"] =~ "^/(public|private)/[^/]+\.git/info/lfs/" {{
  proxy.server = ("" => (("host" => "127.0.0.1", "port" => {giftless_port})))
  proxy.header = ("map-urlpath" => ("/public/" => "/lfs/", "/private/" => "/lfs/"))
}}
else $HTTP["url"] =~ "^/lfs/" {{
  proxy.server = ("" => (("host" => "127.0.0.1", "port" => {giftless_port})))
}}
else $HTTP["url"] =~ "^/(public|private)/" {{
  alias.url = ("/public/" => "{backend}/", "/private/" => "{backend}/")
  cgi.assign = ("" => "")
  setenv.set-environment = ("GIT_PROJECT_ROOT" => "{d}/repos", "GIT_HTTP_EXPORT_ALL" => "1")
}}
$SERVER["socket"] == "127.0.0.1:{https_port}" {{
  ssl.engine = "enable"
  ssl.pemfile = "{bundle}"
}}
"#,
            d = d.display(),
            backend = backend.display(),
            bundle = bundle.display(),
        );
        std::fs::write(d.join("lighttpd.conf"), conf).unwrap();
        let lighttpd = match spawn_lighttpd(d) {
            Ok(child) => child,
            Err(e) => {
                stop(&mut giftless);
                panic!("lighttpd starts (apt-get install lighttpd lighttpd-mod-openssl): {e}");
            }
        };
        // From here a panic drops `server`, which stops both.
        let mut server = LfsServer {
            lighttpd,
            giftless,
            http_port,
            https_port,
            dir,
        };
        let d = server.dir.path();
        wait_for_port(
            http_port,
            &mut server.lighttpd,
            "lighttpd",
            &d.join("stderr.log"),
        );
        wait_for_port(
            https_port,
            &mut server.lighttpd,
            "lighttpd (https)",
            &d.join("error.log"),
        );
        server
    }

    pub fn http_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.http_port)
    }

    pub fn https_url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}/{path}", self.https_port)
    }

    /// Creates bare repository `name.git` on this server and pushes (with git + git-lfs, through
    /// the server's own HTTP endpoint and bob's credentials, so the objects land in giftless) one
    /// commit on `main` holding `files`: (path, contents, in_lfs). In-LFS paths are tracked by a
    /// `.gitattributes` that `git lfs track --filename` writes (patterns by exact path). Returns
    /// the commit SHA.
    pub fn push(&self, name: &str, files: &[(&str, &[u8], bool)]) -> String {
        let bare = self.dir.path().join("repos").join(format!("{name}.git"));
        assert!(!bare.exists(), "{name}.git already exists: use push_more");
        let work = self.work(name);
        std::fs::create_dir_all(&work).unwrap();
        let repos = self.dir.path().join("repos");
        self.git_ok(
            &repos,
            &["init", "-q", "--bare", "-b", "main", &format!("{name}.git")],
        );
        for (k, v) in [
            // Fetches by SHA and partial clones work as on basic.git.
            ("uploadpack.allowReachableSHA1InWant", "true"),
            ("uploadpack.allowTipSHA1InWant", "true"),
            ("uploadpack.allowAnySHA1InWant", "true"),
            ("uploadpack.allowFilter", "true"),
        ] {
            self.git_ok(&bare, &["config", k, v]);
        }
        self.git_ok(&work, &["init", "-q", "-b", "main", "."]);
        // The filter and the pre-push hook in this repository only: nothing global.
        self.git_ok(&work, &["lfs", "install", "--local"]);
        self.git_ok(&work, &["config", "lfs.locksverify", "false"]);
        self.commit_and_push(name, files)
    }

    /// Same, as a second commit on top of the branch's tip (for rerun tests). Returns the new SHA.
    pub fn push_more(&self, name: &str, files: &[(&str, &[u8], bool)]) -> String {
        assert!(
            self.work(name).exists(),
            "push_more({name}) before push({name})"
        );
        self.commit_and_push(name, files)
    }

    /// The working repository `push` committed from: a local source whose `.git/lfs/objects`
    /// holds every object (git-lfs keeps what it pushed).
    pub fn work_dir(&self, name: &str) -> PathBuf {
        self.work(name)
    }

    /// The directory of the bare repositories this server serves (to serve them over SSH too).
    pub fn repos(&self) -> PathBuf {
        self.dir.path().join("repos")
    }

    /// Removes an object from giftless's storage (to test "the server does not have it").
    pub fn delete_object(&self, name: &str, oid_sha256: &str) {
        let path = self.object_path(name, oid_sha256);
        std::fs::remove_file(&path)
            .unwrap_or_else(|e| panic!("deleting {}: {e}\n{}", path.display(), self.log()));
    }

    /// Where giftless keeps an object of repository `name` (the file may not exist).
    pub fn object_path(&self, name: &str, oid_sha256: &str) -> PathBuf {
        self.dir
            .path()
            .join("storage/lfs")
            .join(name)
            .join(oid_sha256)
    }

    /// How many object downloads (GETs of storage links) the server has answered (200) so far.
    pub fn downloads(&self) -> usize {
        self.requests()
            .lines()
            .filter(|l| {
                let mut f = l.split(' ');
                f.next() == Some("GET")
                    && f.next().is_some_and(|p| p.contains("/objects/storage/"))
                    && f.next() == Some("200")
            })
            .count()
    }

    /// Every request giftless answered so far, one `METHOD PATH STATUS` a line, in order.
    pub fn requests(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("requests.log")).unwrap_or_default()
    }

    /// The directory giftless stores objects in, and the access/error logs, for debugging.
    pub fn log(&self) -> String {
        let d = self.dir.path();
        let read = |n: &str| std::fs::read_to_string(d.join(n)).unwrap_or_default();
        format!(
            "giftless storage: {}\n-- giftless requests:\n{}-- giftless log:\n{}-- lighttpd access log:\n{}-- lighttpd error log:\n{}{}",
            d.join("storage").display(),
            read("requests.log"),
            read("giftless.log"),
            read("access.log"),
            read("error.log"),
            read("stderr.log"),
        )
    }

    fn work(&self, name: &str) -> PathBuf {
        self.dir.path().join("work").join(name)
    }

    fn git_ok(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.git(dir).args(args).output().expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?} in {} failed: {}{}\n{}",
            dir.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn git(&self, dir: &Path) -> Command {
        let mut cmd = Command::new("git");
        clean_env(&mut cmd, &self.dir.path().join("home"));
        cmd.current_dir(dir)
            .env("GIT_AUTHOR_NAME", "Fixture")
            .env("GIT_AUTHOR_EMAIL", "fixture@example.com")
            .env("GIT_COMMITTER_NAME", "Fixture")
            .env("GIT_COMMITTER_EMAIL", "fixture@example.com");
        cmd
    }

    fn commit_and_push(&self, name: &str, files: &[(&str, &[u8], bool)]) -> String {
        let work = self.work(name);
        for (path, contents, in_lfs) in files {
            let file = work.join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, contents).unwrap();
            if *in_lfs {
                self.git_ok(&work, &["lfs", "track", "--filename", path]);
            }
        }
        self.git_ok(&work, &["add", "-A"]);
        // The same files give the same SHAs in every run: dates by the commit's number.
        let n: usize = self
            .git(&work)
            .args(["rev-list", "--count", "HEAD"])
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(0);
        let date = format!("2024-01-01T00:00:{:02}Z", (n + 1) % 60);
        let out = self
            .git(&work)
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date)
            .args(["commit", "-q", "--allow-empty", "-m"])
            .arg(format!("commit {} of {name}", n + 1))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git commit failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = format!(
            "http://bob:plainpass@127.0.0.1:{}/private/{name}.git",
            self.http_port
        );
        self.git_ok(&work, &["push", "-q", &url, "main"]);
        // Every LFS file of the commit is in giftless now: the pre-push hook uploaded them.
        for (path, contents, in_lfs) in files {
            if *in_lfs {
                let oid = sha256_hex(contents);
                assert!(
                    self.object_path(name, &oid).is_file(),
                    "{path} ({oid}) did not reach giftless\n{}",
                    self.log()
                );
            }
        }
        self.git_ok(&work, &["rev-parse", "HEAD"])
    }
}

impl Drop for LfsServer {
    fn drop(&mut self) {
        stop(&mut self.lighttpd);
        stop(&mut self.giftless);
    }
}

/// The SHA-256 of `data` in hex: an LFS object id. sha256sum(1) computes it (no crate for it
/// in the tests).
pub fn sha256_hex(data: &[u8]) -> String {
    use std::io::Write;
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum runs");
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// The pointer file git-lfs writes for `data` (what a clone without LFS checks out).
pub fn lfs_pointer(data: &[u8]) -> String {
    format!(
        "version https://git-lfs.github.com/spec/v1\noid sha256:{}\nsize {}\n",
        sha256_hex(data),
        data.len()
    )
}

/// A HOME for git with git-lfs installed (`git lfs install --skip-repo` there), to run the real
/// client in a test. Use it with [`git_in_home`].
pub fn git_lfs_home() -> TempDir {
    let home = tempfile::tempdir().unwrap();
    let out = git_in_home(home.path(), home.path())
        .args(["lfs", "install", "--skip-repo"])
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git lfs install failed (apt-get install git-lfs): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    home
}

/// git in a clean environment whose global config is `home/.gitconfig` (where `git lfs install`
/// wrote its filter), run in `dir`.
pub fn git_in_home(dir: &Path, home: &Path) -> Command {
    let mut cmd = Command::new("git");
    clean_env(&mut cmd, home);
    cmd.env("GIT_CONFIG_GLOBAL", home.join(".gitconfig"))
        .current_dir(dir);
    cmd
}
