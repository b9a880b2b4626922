//! Repository URLs: parsed with `gix-url` (which knows every form git accepts, scp-like
//! included), validated before any network access (SPEC §9), and split into a URL that is safe
//! to print and store, plus the credentials that were embedded in it.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::credentials::Credentials;
use crate::error::{Error, Result};
use crate::redact;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Https,
    Http,
    Ssh,
    Git,
    /// `file://` URLs and plain local paths.
    File,
}

impl Scheme {
    pub fn is_network(self) -> bool {
        !matches!(self, Scheme::File)
    }
}

/// A validated repository location. `Display` never shows credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct RepoUrl {
    pub scheme: Scheme,
    pub host: Option<String>,
    pub port: Option<u16>,
    /// The SSH user (`git` in `git@host:org/repo.git`); never set for HTTP(S), whose user-info
    /// is moved into [`RepoUrl::credentials`].
    pub ssh_user: Option<String>,
    /// Path on the server, or the absolute local path.
    pub path: String,
    /// Written without `scheme://` (scp-like `host:path`, or a plain local path).
    scp_like: bool,
    /// User-info that was written in an http(s) URL. Kept out of every printed form.
    pub credentials: Option<Credentials>,
}

impl fmt::Debug for RepoUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RepoUrl({self})")
    }
}

impl fmt::Display for RepoUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let user = self
            .ssh_user
            .as_deref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        let host = self.host.as_deref().unwrap_or_default();
        match self.scheme {
            Scheme::File if self.scp_like => f.write_str(&self.path),
            Scheme::File => write!(f, "file://{}", self.path),
            Scheme::Ssh if self.scp_like => write!(f, "{user}{host}:{}", self.path),
            scheme => {
                let name = match scheme {
                    Scheme::Https => "https",
                    Scheme::Http => "http",
                    Scheme::Ssh => "ssh",
                    Scheme::Git => "git",
                    Scheme::File => unreachable!("handled above"),
                };
                let host = if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host.to_string()
                };
                let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
                // `ssh://host/~user/repo` keeps its path as `~user/repo`, as git does: the slash
                // before it belongs to the URL.
                let slash = if self.path.starts_with('/') { "" } else { "/" };
                write!(f, "{name}://{user}{host}{port}{slash}{}", self.path)
            }
        }
    }
}

const SUPPORTED: &str =
    "use https://, http://, ssh://, git@host:org/repo.git, git://, file:// or a local path";

/// What to do about a password or token that ends the user-info early.
const ENCODE_SECRET: &str = "percent-encode them in the password or token (`/` %2F, `?` %3F, `#` %23, `@` %40, `:` in a user name %3A); an `@` that belongs to the path is written %40 too";

impl RepoUrl {
    /// Parses and validates `input`; `cwd` anchors relative local paths.
    pub fn parse(input: &str, cwd: &Path) -> Result<RepoUrl> {
        let input = input.trim();
        let shown = redact::url(input);
        if input.is_empty() {
            return Err(Error::invalid(
                "the repository URL is empty: pass --url (GITINIT_URL)",
            ));
        }
        let bad = |why: &str| Error::invalid(format!("invalid repository URL `{shown}`: {why}"));
        if input.chars().any(|c| c.is_control()) {
            return Err(bad("it contains control characters"));
        }
        // gix-url would take `::` and `<helper>://` forms as remote helpers that run programs;
        // we support none of them, and an unknown scheme is most likely a typo (`htp://`).
        if let Some((scheme, _)) = input.split_once("://") {
            let known = ["https", "http", "ssh", "git", "file", "git+ssh", "ssh+git"];
            if !known.contains(&scheme.to_ascii_lowercase().as_str()) {
                return Err(bad(&format!("unknown scheme `{scheme}`: {SUPPORTED}")));
            }
        } else if input.contains("::") {
            return Err(bad(&format!(
                "remote helpers are not supported: {SUPPORTED}"
            )));
        }
        ensure_userinfo_is_encoded(input).map_err(|why| bad(&why))?;
        let parsed = gix_url::parse(input).map_err(|_| bad(&port_or_syntax_hint(&shown)))?;
        let scp_like = parsed.serialize_alternative_form;
        let path = String::from_utf8_lossy(parsed.original_path()).into_owned();
        let host = parsed.host().map(str::to_string);
        let scheme = match &parsed.scheme {
            gix_url::Scheme::Https => Scheme::Https,
            gix_url::Scheme::Http => Scheme::Http,
            gix_url::Scheme::Ssh => Scheme::Ssh,
            gix_url::Scheme::Git => Scheme::Git,
            gix_url::Scheme::File => Scheme::File,
            other => {
                return Err(bad(&format!(
                    "unsupported scheme `{}`: {SUPPORTED}",
                    other.as_str()
                )))
            }
        };
        if scheme.is_network() && host.as_deref().is_none_or(str::is_empty) {
            return Err(bad("it has no host"));
        }
        if parsed.port == Some(0) {
            return Err(bad("port 0 is not a valid port (use 1-65535)"));
        }
        if scheme.is_network() && (path.is_empty() || path == "/") {
            return Err(bad("it names no repository (the path is empty)"));
        }
        let mut url = RepoUrl {
            scheme,
            host,
            port: parsed.port,
            ssh_user: None,
            path,
            scp_like,
            credentials: None,
        };
        match scheme {
            Scheme::Https | Scheme::Http => {
                // As written (percent-encoded): `credentials` decodes it, by one rule for every
                // place a secret comes from.
                let userinfo = redact::userinfo_span(input).map(|(start, end)| &input[start..end]);
                if let Some(info) = userinfo.filter(|i| !i.is_empty() && !i.starts_with(':')) {
                    let (user, password) = match info.split_once(':') {
                        Some((u, p)) => (u, Some(p)),
                        None => (info, None),
                    };
                    url.credentials = Some(Credentials::from_url_userinfo(
                        user,
                        password,
                        url.host.as_deref().unwrap_or_default(),
                    ));
                }
            }
            Scheme::Ssh => {
                url.ssh_user = parsed.user().filter(|u| !u.is_empty()).map(str::to_string);
            }
            Scheme::Git => {}
            Scheme::File => {
                let p = PathBuf::from(&url.path);
                let abs = if p.is_absolute() { p } else { cwd.join(p) };
                url.path = abs.to_string_lossy().into_owned();
            }
        }
        Ok(url)
    }

    /// What libgit2 is given. Credentials reach libgit2 through the callback, never the URL.
    pub fn fetch_url(&self) -> String {
        self.to_string()
    }

    pub fn is_local(&self) -> bool {
        self.scheme == Scheme::File
    }

    /// Whether `other` names the same repository under another spelling: host name case, the
    /// scheme's default port, a trailing `/`, `.git` or not, scp-like or `ssh://`, the default
    /// SSH user `git`. A rerun compares the checkout's origin with this (SPEC §15).
    pub fn same_repository(&self, other: &RepoUrl) -> bool {
        self.identity() == other.identity()
    }

    /// The identity [`RepoUrl::same_repository`] compares, as text (no credentials in it):
    /// what names the repository's entry in the shared cache.
    pub fn identity_text(&self) -> String {
        let (scheme, host, port, user, path) = self.identity();
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        format!(
            "{scheme:?}://{user}@{host}{port}/{}",
            path.trim_start_matches('/')
        )
    }

    fn identity(&self) -> (Scheme, String, Option<u16>, String, String) {
        let default_port = match self.scheme {
            Scheme::Https => Some(443),
            Scheme::Http => Some(80),
            Scheme::Ssh => Some(22),
            Scheme::Git => Some(9418),
            Scheme::File => None,
        };
        let path = self.path.trim_end_matches('/');
        let path = path
            .strip_suffix(".git")
            .unwrap_or(path)
            .trim_end_matches('/');
        let path = match self.scheme {
            Scheme::Ssh => path.trim_start_matches('/'),
            _ => path,
        };
        let user = match self.scheme {
            Scheme::Ssh => self.ssh_user.clone().unwrap_or_else(|| "git".into()),
            _ => String::new(),
        };
        (
            self.scheme,
            self.host_str().to_ascii_lowercase(),
            self.port.filter(|p| Some(*p) != default_port),
            user,
            path.to_string(),
        )
    }

    /// The host as credentials and known_hosts name it (`host` or `[host]:port`).
    pub fn host_str(&self) -> &str {
        self.host.as_deref().unwrap_or_default()
    }
}

/// The input with any user-info hidden: [`redact::url`], under the name its callers know.
pub use crate::redact::url as redact_input;

/// Refuses user-info that no two parsers read alike: a password or token holding `/`, `?`,
/// `#` or `@` unencoded ends the authority early, and a parser would take a piece of the
/// secret for the host (sent to DNS) or the path (printed, sent to the server). Everything up
/// to the last `@` is the user-info ([`redact::userinfo_span`]); it must hold none of them. An
/// scp-like `user:secret@host:path` is refused too: an ssh address carries no password.
fn ensure_userinfo_is_encoded(input: &str) -> std::result::Result<(), String> {
    let Some((start, end)) = redact::userinfo_span(input) else {
        return Ok(());
    };
    let info = &input[start..end];
    if input.contains("://") {
        if info.contains(['/', '?', '#', '@']) {
            return Err(format!(
                "the part before the last `@` (a user name and password or token) holds `/`, `?`, `#` or `@`, which end it early: {ENCODE_SECRET}"
            ));
        }
        return Ok(());
    }
    if input.starts_with(['/', '.', '~']) {
        // A local path with `:` and `@` in its names.
        return Ok(());
    }
    Err(format!(
        "an ssh address (`user@host:path`) carries no password: give an SSH key (--ssh-key); for an https URL with a password or token, write https://user:password@host/path and {ENCODE_SECRET}"
    ))
}

/// Why `shown` (already redacted) does not parse.
fn port_or_syntax_hint(input: &str) -> String {
    let after = input.split_once("://").map(|(_, r)| r).unwrap_or(input);
    let authority = after.split('/').next().unwrap_or_default();
    let authority = authority.rsplit('@').next().unwrap_or_default();
    if let Some((_, port)) = authority.rsplit_once(':') {
        if !port.is_empty() && !port.contains(']') {
            return format!("port `{port}` is not a number from 1 to 65535");
        }
    }
    format!("it is not a git URL: {SUPPORTED}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<RepoUrl> {
        RepoUrl::parse(s, Path::new("/work"))
    }

    #[test]
    fn forms_are_recognised_and_printed_without_credentials() {
        let u = p("https://alice:s3cr%3Aet@example.com/org/repo.git").unwrap();
        assert_eq!(u.scheme, Scheme::Https);
        assert_eq!(u.to_string(), "https://example.com/org/repo.git");
        let c = u.credentials.unwrap();
        assert_eq!(c.username, "alice");
        assert_eq!(c.password, "s3cr:et");

        let u = p("git@github.com:org/repo.git").unwrap();
        assert_eq!(u.scheme, Scheme::Ssh);
        assert_eq!(u.ssh_user.as_deref(), Some("git"));
        assert_eq!(u.to_string(), "git@github.com:org/repo.git");

        let u = p("ssh://git@host.example:7999/proj/repo.git").unwrap();
        assert_eq!(u.port, Some(7999));
        assert_eq!(u.to_string(), "ssh://git@host.example:7999/proj/repo.git");

        // A home-relative path keeps the slash that introduces it.
        assert_eq!(
            p("ssh://h/~u/r.git").unwrap().to_string(),
            "ssh://h/~u/r.git"
        );
        assert_eq!(p("git://h/r.git").unwrap().scheme, Scheme::Git);
        assert_eq!(
            p("file:///srv/r.git").unwrap().to_string(),
            "file:///srv/r.git"
        );
        assert_eq!(p("rel/repo").unwrap().to_string(), "/work/rel/repo");
        assert_eq!(p("/abs/repo").unwrap().to_string(), "/abs/repo");
    }

    #[test]
    fn the_same_repository_under_other_spellings() {
        let same = |a: &str, b: &str| p(a).unwrap().same_repository(&p(b).unwrap());
        for (a, b) in [
            (
                "https://github.com/org/repo",
                "https://github.com/org/repo.git",
            ),
            (
                "https://github.com/org/repo.git",
                "https://GitHub.com/org/repo/",
            ),
            (
                "https://github.com/org/repo",
                "https://github.com:443/org/repo",
            ),
            (
                "https://u:t@github.com/org/repo",
                "https://github.com/org/repo",
            ),
            (
                "git@github.com:org/repo.git",
                "ssh://git@github.com:22/org/repo",
            ),
            ("/srv/repo.git", "file:///srv/repo/"),
        ] {
            assert!(same(a, b), "{a} {b}");
        }
        for (a, b) in [
            (
                "https://github.com/org/repo",
                "https://github.com/org/other",
            ),
            ("https://github.com/org/repo", "http://github.com/org/repo"),
            (
                "https://github.com/org/repo",
                "https://github.com:8443/org/repo",
            ),
            ("https://github.com/org/repo", "https://gitlab.com/org/repo"),
            ("https://github.com/org/Repo", "https://github.com/org/repo"),
        ] {
            assert!(!same(a, b), "{a} {b}");
        }
    }

    #[test]
    fn bad_urls_are_invalid_input() {
        for bad in [
            "htp://example.com/r.git",
            "https://",
            "https:///r.git",
            "https://example.com:70000/r.git",
            "https://example.com:0/r.git",
            "ext::sh -c touch% /tmp/x",
            "https://example.com",
            "",
        ] {
            let err = p(bad).expect_err(bad);
            assert!(matches!(err, Error::InvalidInput { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn errors_never_echo_userinfo() {
        let err = p("htp://user:hunter2@example.com/r.git").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let err = p("https://user:hunter2@example.com:99999/r.git").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(err.to_string().contains("port `99999`"), "{err}");
    }

    #[test]
    fn unencoded_secrets_are_refused_and_never_echoed() {
        for bad in [
            "https://user:s3Kr/Et9@host/repo",
            "https://user:s3Kr#Et9@host/repo",
            "https://user:s3Kr?Et9@host/repo",
            "https://user:s3Kr@Et9@host/repo",
            "https://s3Kr/Et9@host/repo",
            "https://user:12#s3Kr/Et9@host/repo",
            "ssh://user:s3Kr/Et9@host/repo",
            "user:s3KrEt9@host:org/repo.git",
            "https://s3Kr/org/repoEt9@v2.git",
        ] {
            let err = p(bad).expect_err(bad);
            let msg = err.to_string();
            assert!(matches!(err, Error::InvalidInput { .. }), "{bad}: {msg}");
            assert!(msg.contains("percent-encode"), "{bad}: {msg}");
            assert!(
                !msg.contains("s3Kr") && !msg.contains("Et9"),
                "{bad}: {msg}"
            );
        }
    }

    #[test]
    fn userinfo_is_percent_decoded_plus_stays_plus() {
        let u = p("https://al%40ice:p%2Fa+s%23s%3F@example.com/r.git").unwrap();
        let c = u.credentials.clone().unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("al@ice", "p/a+s#s?")
        );
        assert_eq!(u.to_string(), "https://example.com/r.git");
        let u = p("https://ghp_token@github.com/o/r.git").unwrap();
        let c = u.credentials.unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("x-access-token", "ghp_token")
        );
        // Local paths and ssh addresses without a password are what they were.
        assert_eq!(
            p("/srv/a:b@c/r.git").unwrap().to_string(),
            "/srv/a:b@c/r.git"
        );
        assert_eq!(p("git@h:o/r.git").unwrap().ssh_user.as_deref(), Some("git"));
    }
}
