//! lighttpd + git-http-backend, over HTTP and HTTPS.

use std::path::Path;
use std::process::Child;

use tempfile::TempDir;

use super::{fixtures, free_port, git_exec_path, spawn_lighttpd, stop, wait_for_port};

/// lighttpd + git-http-backend: `/public/<repo>` open, `/private/<repo>` behind Basic auth
/// (alice:`s3cr:et@/%x`, bob:`plainpass`), `/redirect/<repo>` answering 301 to `/public/`,
/// `/elsewhere/<repo>` redirecting to another host name (`localhost`) under `/private/`;
/// one process serving HTTP and HTTPS (the harness CA's certificate).
pub struct HttpServer {
    child: Child,
    pub http_port: u16,
    pub https_port: u16,
    dir: TempDir,
}

impl HttpServer {
    pub fn start() -> HttpServer {
        HttpServer::start_at(&fixtures().repos)
    }

    /// The same server, serving the bare repositories under `repos` (hostile ones a test built).
    pub fn start_at(repos: &Path) -> HttpServer {
        let fx = fixtures();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("users"), "alice:s3cr:et@/%x\nbob:plainpass\n").unwrap();
        // git-http-backend behind a wrapper that notes each request as it starts: lighttpd's
        // access log is written late (buffered, and after the CGI exits).
        let backend = d.join("git-http-backend");
        std::fs::write(
            &backend,
            format!(
                "#!/bin/sh\necho \"$REQUEST_METHOD $PATH_INFO\" >> {}/requests.log\nexec {}\n",
                d.display(),
                git_exec_path().join("git-http-backend").display()
            ),
        )
        .unwrap();
        let mut perms = std::fs::metadata(&backend).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&backend, perms).unwrap();
        let bundle = fx.server_cert.parent().unwrap().join("server-bundle.pem");
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
server.modules = ("mod_alias", "mod_redirect", "mod_auth", "mod_authn_file", "mod_setenv", "mod_cgi", "mod_openssl", "mod_accesslog")
alias.url = ("/public/" => "{backend}/", "/private/" => "{backend}/")
url.redirect = ("^/redirect/(.*)$" => "/public/$1", "^/elsewhere/(.*)$" => "http://localhost:{http_port}/private/$1")
cgi.assign = ("" => "")
setenv.set-environment = ("GIT_PROJECT_ROOT" => "{repos}", "GIT_HTTP_EXPORT_ALL" => "1")
auth.backend = "plain"
auth.backend.plain.userfile = "{d}/users"
auth.require = ("/private/" => ("method" => "basic", "realm" => "git", "require" => "valid-user"))
$SERVER["socket"] == "127.0.0.1:{https_port}" {{
  ssl.engine = "enable"
  ssl.pemfile = "{bundle}"
}}
"#,
            d = d.display(),
            backend = backend.display(),
            repos = repos.display(),
            bundle = bundle.display(),
        );
        std::fs::write(d.join("lighttpd.conf"), conf).unwrap();
        let mut child = spawn_lighttpd(d)
            .expect("lighttpd starts (apt-get install lighttpd lighttpd-mod-openssl)");
        wait_for_port(http_port, &mut child, "lighttpd", &d.join("stderr.log"));
        wait_for_port(
            https_port,
            &mut child,
            "lighttpd (https)",
            &d.join("error.log"),
        );
        HttpServer {
            child,
            http_port,
            https_port,
            dir,
        }
    }

    pub fn http_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.http_port)
    }

    pub fn https_url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}/{path}", self.https_port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The Basic auth users of `/private/` (lighttpd's plain file, `user:password` lines):
    /// a test may add its own.
    pub fn users_file(&self) -> std::path::PathBuf {
        self.dir.path().join("users")
    }

    /// Access and error logs, to see which requests were made.
    pub fn log(&self) -> String {
        let read = |n: &str| std::fs::read_to_string(self.dir.path().join(n)).unwrap_or_default();
        format!("{}{}", read("access.log"), read("error.log"))
    }

    /// How many requests with this method reached git-http-backend so far.
    pub fn count_requests(&self, method: &str) -> usize {
        std::fs::read_to_string(self.dir.path().join("requests.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with(&format!("{method} ")))
            .count()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}
