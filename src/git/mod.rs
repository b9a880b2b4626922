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
    auth_failure: RefCell<Option<String>>,
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
    fn credentials(&self, allowed: CredentialType) -> Result<Cred, git2::Error> {
        let attempt = self.cred_attempts.get() + 1;
        self.cred_attempts.set(attempt);
        let fail = |detail: &str| {
            *self.auth_failure.borrow_mut() = Some(detail.to_string());
            Err(git2::Error::from_str(detail))
        };
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
        cb.credentials(move |_url, _user, allowed| self.credentials(allowed));
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
        if let Some(detail) = self.auth_failure.borrow_mut().take() {
            return Error::Auth {
                url,
                detail,
                hint: auth_hint(self.cfg),
            };
        }
        match classify_git2(&err, &url) {
            Error::Auth { url, detail, .. } => Error::Auth {
                url,
                detail,
                hint: auth_hint(self.cfg),
            },
            e => e,
        }
    }
}

fn auth_hint(cfg: &Config) -> String {
    match &cfg.credentials {
        None => format!(
            "Set {} to `username:password` or an access token that can read this repository",
            crate::config::CREDENTIALS_ENV
        ),
        Some(_) => "Check that the username and password (or token) are right, not expired, and allowed to read this repository".into(),
    }
}
