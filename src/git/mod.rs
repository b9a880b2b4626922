//! The libgit2 layer. [`Session`] holds what the callbacks of one run share (credentials
//! tried, progress, bytes received); [`fetch`] gets the objects, [`checkout`] writes the tree.

pub mod checkout;
pub mod fetch;

use std::cell::{Cell, RefCell};

use git2::{
    CertificateCheckStatus, Cred, CredentialType, FetchOptions, ProxyOptions, RemoteCallbacks,
};
use tracing::debug;

use crate::config::Config;
use crate::error::{classify_git2, Error};
use crate::progress::Progress;

pub struct Session<'a> {
    pub cfg: &'a Config,
    pub progress: RefCell<Progress>,
    /// Bytes received by every fetch of this run.
    pub received_bytes: Cell<u64>,
    /// Set by the credentials callback when it gives up, so the failure is reported as an
    /// authentication problem rather than libgit2's generic callback error.
    auth_failure: RefCell<Option<(String, Option<String>)>>,
    cred_attempts: Cell<u32>,
}

impl<'a> Session<'a> {
    pub fn new(cfg: &'a Config, quiet: bool) -> Self {
        Session {
            cfg,
            progress: RefCell::new(Progress::new(quiet)),
            received_bytes: Cell::new(0),
            auth_failure: RefCell::new(None),
            cred_attempts: Cell::new(0),
        }
    }

    /// Credentials are offered once per connection attempt: libgit2 calls the callback again
    /// after a rejection, and answering again would loop on a wrong password.
    fn credentials(&self, url: &str, allowed: CredentialType) -> Result<Cred, git2::Error> {
        let attempt = self.cred_attempts.get() + 1;
        self.cred_attempts.set(attempt);
        let fail = |detail: &str| {
            *self.auth_failure.borrow_mut() = Some((detail.to_string(), None));
            Err(git2::Error::from_str(detail))
        };
        // libgit2 follows the first request's redirects; credentials must not follow to another
        // host (bitbucket.com -> bitbucket.org, or anything an attacker could point us to).
        let asked_host = url::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase));
        let our_host = self.cfg.url.host_str().to_ascii_lowercase();
        if let Some(host) =
            asked_host.filter(|h| self.cfg.url.scheme.is_network() && *h != our_host)
        {
            let detail = format!("the server redirected to another host, {host}, and credentials for {our_host} are never sent there");
            *self.auth_failure.borrow_mut() = Some((
                detail.clone(),
                Some(format!(
                    "If the repository moved to {host}, use that URL: --url {url}"
                )),
            ));
            return Err(git2::Error::from_str(&detail));
        }
        if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
            return match (&self.cfg.credentials, attempt) {
                (Some(c), 1) => {
                    debug!(username = %c.username, "offering HTTPS credentials");
                    Cred::userpass_plaintext(&c.username, &c.password)
                }
                (Some(_), _) => fail("the server rejected the credentials"),
                (None, _) => fail("the server asks for credentials and none were given"),
            };
        }
        fail(&format!(
            "the server asks for an authentication method gitinit cannot offer here ({allowed:?})"
        ))
    }

    pub fn callbacks(&self) -> RemoteCallbacks<'_> {
        let mut cb = RemoteCallbacks::new();
        cb.credentials(move |url, _user, allowed| self.credentials(url, allowed));
        let ssl_verify = self.cfg.flags.ssl_verify;
        cb.certificate_check(move |_cert, _host| {
            Ok(if ssl_verify {
                CertificateCheckStatus::CertificatePassthrough
            } else {
                CertificateCheckStatus::CertificateOk
            })
        });
        cb.transfer_progress(move |p| {
            self.progress.borrow_mut().transfer(&p);
            true
        });
        cb.sideband_progress(|data| {
            debug!(remote = %String::from_utf8_lossy(data).trim_end(), "remote says");
            true
        });
        cb
    }

    pub fn proxy_options(&self) -> ProxyOptions<'_> {
        let mut p = ProxyOptions::new();
        if let Some(url) = &self.cfg.proxy {
            p.url(url);
        }
        p
    }

    /// Fetch options for one fetch: callbacks, proxy, tags, depth (`None`: full history).
    pub fn fetch_options(&self, depth: Option<i32>) -> FetchOptions<'_> {
        let mut fo = FetchOptions::new();
        fo.remote_callbacks(self.callbacks());
        fo.proxy_options(self.proxy_options());
        fo.update_fetchhead(false);
        fo.download_tags(if self.cfg.flags.no_tags {
            git2::AutotagOption::None
        } else {
            git2::AutotagOption::Auto
        });
        if let Some(d) = depth {
            fo.depth(d);
        }
        fo
    }

    /// A new connection attempt: credentials may be offered again.
    pub fn reset_attempt(&self) {
        self.cred_attempts.set(0);
        *self.auth_failure.borrow_mut() = None;
    }

    /// Our error for a libgit2 failure of this session.
    pub fn classify(&self, err: git2::Error) -> Error {
        let url = self.cfg.url.to_string();
        if let Some((detail, hint)) = self.auth_failure.borrow_mut().take() {
            return Error::Auth {
                url,
                detail,
                hint: hint.unwrap_or_else(|| {
                    auth_hint(self.cfg.url.host_str(), self.cfg.credentials.as_ref())
                }),
            };
        }
        match classify_git2(&err, &url) {
            Error::Auth { url, detail, .. } => Error::Auth {
                url,
                detail,
                hint: auth_hint(self.cfg.url.host_str(), self.cfg.credentials.as_ref()),
            },
            e => e,
        }
    }
}

/// What to do about a refused HTTPS login, in the words of the provider's own settings.
fn auth_hint(host: &str, credentials: Option<&crate::credentials::Credentials>) -> String {
    match credentials {
        None => format!(
            "Set {} to `username:password` or an access token that can read this repository",
            crate::config::CREDENTIALS_ENV
        ),
        Some(c) => {
            let host = host.to_ascii_lowercase();
            if host.contains("bitbucket") && c.username.contains('@') {
                format!("Bitbucket app passwords and API tokens need your Bitbucket username, not your email address (`{}`): find it under Personal settings > Account settings", c.username)
            } else if host == "github.com" {
                "Check the token: not expired, and allowed to read this repository (classic token: `repo` scope; fine-grained: Contents read on this repository)".into()
            } else if host.contains("gitlab") {
                "Check the token: not expired, with the `read_repository` scope, and a member of this project".into()
            } else {
                "Check that the username and password (or token) are right, not expired, and allowed to read this repository".into()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::auth_hint;
    use crate::credentials::Credentials;

    #[test]
    fn hints_name_what_each_provider_needs() {
        let email = Credentials::parse("me@example.com:app-pass", "bitbucket.org");
        assert!(auth_hint("bitbucket.org", email.as_ref()).contains("not your email"));
        let user = Credentials::parse("me:app-pass", "bitbucket.org");
        assert!(!auth_hint("bitbucket.org", user.as_ref()).contains("email"));
        let token = Credentials::parse("ghp_x", "github.com");
        assert!(auth_hint("github.com", token.as_ref()).contains("`repo` scope"));
        let token = Credentials::parse("glpat-x", "gitlab.com");
        assert!(auth_hint("gitlab.com", token.as_ref()).contains("read_repository"));
        assert!(auth_hint("git.example.com", None).contains("POLYAXON_GIT_CREDENTIALS"));
    }
}
