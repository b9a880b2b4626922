//! The libgit2 layer. [`Session`] holds what the callbacks of one run share (credentials
//! tried, progress, bytes received); [`fetch`] gets the objects, [`checkout`] writes the tree.

pub mod checkout;
pub mod classify;
pub mod fetch;
pub mod http;
pub mod indexer;
pub mod local;
pub mod partial;
pub mod submodule;
pub mod tree;

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use git2::{CertificateCheckStatus, Cred, CredentialType, FetchOptions, RemoteCallbacks};
use tracing::debug;

use crate::config::{Remote, Want};
use crate::error::Error;
use crate::progress::Progress;

/// Process-wide libgit2 settings, before any repository is touched (SPEC §8): no system or
/// global git config (a planted `url.*.insteadOf` or `core.sshCommand` must have no effect), no
/// ownership check (volumes owned by another uid), and our HTTP(S) transport. `io_timeout`:
/// how long a connection may stay silent.
pub fn setup(io_timeout: std::time::Duration) -> Result<(), Error> {
    let err = |e: git2::Error| Error::Internal(format!("setting up libgit2: {}", e.message()));
    // SAFETY: called once, before any other libgit2 call of this process and from one thread.
    unsafe {
        for level in [
            git2::ConfigLevel::System,
            git2::ConfigLevel::XDG,
            git2::ConfigLevel::Global,
            git2::ConfigLevel::ProgramData,
        ] {
            git2::opts::set_search_path(level, "").map_err(err)?;
        }
        git2::opts::set_verify_owner_validation(false).map_err(err)?;
        // libgit2 hashes every object again each time it reads one (a quarter of a large
        // checkout, measured). The indexer already computed every id of the pack it received
        // and checked the pack's checksum; git does not re-hash on read either.
        git2::opts::strict_hash_verification(false);
        // A server that accepts and then says nothing must not hang the pod: cut the stalled
        // connection so the retry logic sees a transient failure.
        let io_ms = i32::try_from(io_timeout.as_millis()).unwrap_or(i32::MAX);
        git2::opts::set_server_connect_timeout_in_milliseconds(io_ms.min(30_000)).map_err(err)?;
        git2::opts::set_server_timeout_in_milliseconds(io_ms).map_err(err)?;
        // libgit2 maps packs in 1 GiB windows up to 8 GiB, and every page it touches while
        // indexing and checking out stays resident: a depth-1 clone of a 200 MB tree peaked at
        // 153 MB. Small windows under a small budget read the same pack at the same speed
        // (measured) with 31 MB.
        git2::opts::set_mwindow_size(1 << 20).map_err(err)?;
        git2::opts::set_mwindow_mapped_limit(8 << 20).map_err(err)?;
    }
    http::register().map_err(err)?;
    Ok(())
}

/// The outcome of a fetch: what was fetched and the commit it ends at.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub target: crate::revision::Target,
    pub commit: git2::Oid,
}

/// Records a file's stat data in its index entry, as git does after writing it: a later `git
/// status` then trusts the file without reading it.
pub fn set_stat(entry: &mut git2::IndexEntry, m: &std::fs::Metadata) {
    use std::os::unix::fs::MetadataExt;
    let time = |s: i64, ns: i64| git2::IndexTime::new(s as i32, ns as u32);
    entry.ctime = time(m.ctime(), m.ctime_nsec());
    entry.mtime = time(m.mtime(), m.mtime_nsec());
    entry.dev = m.dev() as u32;
    entry.ino = m.ino() as u32;
    entry.uid = m.uid();
    entry.gid = m.gid();
    entry.file_size = m.size() as u32;
}

/// Fetches the configured revision into `repo`: from a local source directly ([`local`]),
/// from a remote through libgit2 ([`fetch`]).
pub fn fetch_into(repo: &git2::Repository, s: &Session) -> crate::error::Result<Fetched> {
    if s.remote.url.is_local() {
        local::fetch(repo, s)
    } else {
        let fetched = fetch::fetch(repo, s)?;
        partial::complete(repo, &fetched, s)?;
        Ok(fetched)
    }
}

pub struct Session<'a> {
    /// Where the repository is and how to reach it.
    pub remote: &'a Remote,
    /// What to fetch.
    pub want: &'a Want,
    /// The destination, for messages about it.
    pub dest: Option<&'a std::path::Path>,
    pub progress: RefCell<Progress>,
    /// Bytes received by every fetch of this run.
    pub received_bytes: Cell<u64>,
    /// Set by the credentials callback when it gives up, so the failure is reported as an
    /// authentication problem rather than libgit2's generic callback error.
    auth_failure: RefCell<Option<String>>,
    /// Set by the certificate callback when it refuses a host key.
    trust_failure: RefCell<Option<(String, String)>>,
    /// The remote's own `fatal:`/`error:` lines (its sideband), for the error line.
    remote_said: RefCell<Vec<String>>,
    /// The sideband's last line so far: the server relays its stderr in whatever pieces it
    /// read, so a line may arrive in several.
    remote_partial: RefCell<String>,
    cred_attempts: Cell<u32>,
    /// What the HTTP(S) transport needs, and where it leaves a typed failure.
    pub http: Arc<http::Settings>,
}

impl<'a> Session<'a> {
    /// One repository's session; `progress` reports on it (quiet for a submodule).
    pub fn new(
        remote: &'a Remote,
        want: &'a Want,
        dest: Option<&'a std::path::Path>,
        progress: Progress,
    ) -> Self {
        Session {
            remote,
            want,
            dest,
            progress: RefCell::new(progress),
            received_bytes: Cell::new(0),
            auth_failure: RefCell::new(None),
            remote_said: RefCell::new(vec![]),
            remote_partial: RefCell::new(String::new()),
            trust_failure: RefCell::new(None),
            cred_attempts: Cell::new(0),
            http: Arc::new(
                http::Settings::new(remote, crate::hints::auth(remote))
                    .with_filter(want.filter.clone()),
            ),
        }
    }

    /// Makes this session's HTTP settings the ones libgit2's transports get while the guard
    /// lives: call it around every libgit2 call that connects.
    pub fn http_scope(&self) -> impl Drop {
        http::enter(&self.http)
    }

    /// SSH credentials (HTTP ones go through [`http`]). Offered once per connection attempt:
    /// libgit2 calls the callback again after a rejection, and answering again would loop on a
    /// wrong key.
    fn credentials(
        &self,
        user_from_url: Option<&str>,
        allowed: CredentialType,
    ) -> Result<Cred, git2::Error> {
        let attempt = self.cred_attempts.get() + 1;
        self.cred_attempts.set(attempt);
        let fail = |detail: &str| {
            *self.auth_failure.borrow_mut() = Some(detail.to_string());
            Err(git2::Error::from_str(detail))
        };
        let ssh_user = user_from_url.filter(|u| !u.is_empty()).unwrap_or("git");
        if allowed.contains(CredentialType::SSH_KEY) {
            let key = self.remote.ssh.as_ref().and_then(|s| s.key.as_ref());
            return match (key, attempt) {
                (Some(k), 1) => {
                    debug!(user = ssh_user, source = %k.source, "offering the SSH key");
                    Cred::ssh_key_from_memory(ssh_user, None, &k.private, k.passphrase.as_deref())
                }
                (Some(k), _) => fail(&format!(
                    "Permission denied (publickey): the server did not accept the key from {}",
                    k.source
                )),
                (None, _) => fail("the server asks for an SSH key and none was given"),
            };
        }
        if allowed.contains(CredentialType::USERNAME) {
            return Cred::username(ssh_user);
        }
        fail(&format!(
            "the server asks for an authentication method gitinit cannot offer here ({allowed:?})"
        ))
    }

    pub fn callbacks(&self) -> RemoteCallbacks<'_> {
        let mut cb = RemoteCallbacks::new();
        cb.credentials(move |_url, user, allowed| self.credentials(user, allowed));
        cb.certificate_check(move |cert, host| self.check_certificate(cert, host));
        cb.transfer_progress(move |p| {
            self.progress.borrow_mut().transfer(&p);
            true
        });
        // Always: a server that fails says why only there (`fatal: unable to read …`), and that
        // belongs in the error line. With it libgit2 does not send `no-progress`, so the server
        // also streams its counting progress (a few hundred bytes), logged at debug.
        cb.sideband_progress(move |data| {
            let text = String::from_utf8_lossy(data);
            debug!(remote = %text.trim_end(), "remote says");
            let mut partial = self.remote_partial.borrow_mut();
            partial.push_str(&text);
            // Complete lines are judged now; the last piece waits for the rest of its line.
            if let Some(end) = partial.rfind(['\n', '\r']) {
                let complete: String = partial.drain(..=end).collect();
                for line in complete.split(['\n', '\r']) {
                    self.note_remote_line(line);
                }
            }
            if partial.len() > 4096 {
                partial.clear();
            }
            true
        });
        cb
    }

    /// Fetch options for one fetch: callbacks, proxy, tags, depth (`None`: full history).
    pub fn fetch_options(&self, depth: Option<i32>) -> FetchOptions<'_> {
        let mut fo = FetchOptions::new();
        fo.remote_callbacks(self.callbacks());
        fo.update_fetchhead(false);
        fo.download_tags(if self.want.no_tags {
            git2::AutotagOption::None
        } else {
            git2::AutotagOption::Auto
        });
        if let Some(d) = depth {
            fo.depth(d);
        }
        fo
    }

    fn check_certificate(
        &self,
        cert: &git2::cert::Cert<'_>,
        host: &str,
    ) -> Result<CertificateCheckStatus, git2::Error> {
        let Some(hostkey) = cert.as_hostkey() else {
            // TLS: libgit2 has verified the chain already; we only override on request.
            return Ok(if self.remote.ssl_verify {
                CertificateCheckStatus::CertificatePassthrough
            } else {
                CertificateCheckStatus::CertificateOk
            });
        };
        let Some(ssh) = &self.remote.ssh else {
            return Ok(CertificateCheckStatus::CertificatePassthrough);
        };
        let Some(blob) = hostkey.hostkey() else {
            return self.trust_fail(
                format!("{host} offered no SSH host key gitinit can check"),
                String::new(),
            );
        };
        let port = self.remote.url.port.unwrap_or(22);
        match crate::ssh::verify_host_key(&ssh.host_keys, host, port, blob) {
            Ok(()) => Ok(CertificateCheckStatus::CertificateOk),
            Err((detail, hint)) => self.trust_fail(detail, hint),
        }
    }

    fn trust_fail(
        &self,
        detail: String,
        hint: String,
    ) -> Result<CertificateCheckStatus, git2::Error> {
        let msg = detail.clone();
        *self.trust_failure.borrow_mut() = Some((detail, hint));
        Err(git2::Error::from_str(&msg))
    }

    /// A new connection attempt: credentials may be offered again.
    /// Keeps a `fatal:`/`error:` line of the remote (a few, short, redacted) for the error line.
    fn note_remote_line(&self, line: &str) {
        let line = line.trim();
        let l = line.to_ascii_lowercase();
        let mut said = self.remote_said.borrow_mut();
        if (l.starts_with("fatal:") || l.starts_with("error:")) && said.len() < 4 {
            let clean: String = line
                .chars()
                .take(300)
                .map(|c| if c.is_control() { '?' } else { c })
                .collect();
            said.push(crate::redact::text(&clean));
        }
    }

    pub fn reset_attempt(&self) {
        self.cred_attempts.set(0);
        self.remote_partial.borrow_mut().clear();
        *self.auth_failure.borrow_mut() = None;
        *self.trust_failure.borrow_mut() = None;
        self.remote_said.borrow_mut().clear();
        let _ = self.http.take_failure();
    }

    /// Our error for a libgit2 failure of this session.
    pub fn classify(&self, err: git2::Error) -> Error {
        let url = self.remote.url.to_string();
        if let Some(e) = self.http.take_failure() {
            return e;
        }
        if let Some((detail, hint)) = self.trust_failure.borrow_mut().take() {
            return Error::Trust { detail, hint };
        }
        if let Some(key) = self.remote.ssh.as_ref().and_then(|s| s.key.as_ref()) {
            let m = err.message().to_ascii_lowercase();
            // libssh2 reports a wrong passphrase as an unreadable key format.
            if m.contains("private key")
                || m.contains("unsupported") && m.contains("format")
                || m.contains("passphrase")
            {
                let detail = if key.encrypted {
                    format!(
                        "cannot decrypt the SSH key from {}: the passphrase ({}) is wrong",
                        key.source,
                        crate::hints::SSH_PASSPHRASE
                    )
                } else {
                    format!(
                        "the SSH key from {} cannot be used: {}",
                        key.source,
                        err.message()
                    )
                };
                return Error::Auth {
                    url,
                    detail,
                    hint: "Give an ed25519, ECDSA or RSA private key in OpenSSH or PEM format (and its passphrase, if it has one)".into(),
                };
            }
        }
        if let Some(detail) = self.auth_failure.borrow_mut().take() {
            return Error::Auth {
                url,
                detail,
                hint: crate::hints::auth(self.remote),
            };
        }
        let hint = crate::hints::auth(self.remote);
        let rest = std::mem::take(&mut *self.remote_partial.borrow_mut());
        self.note_remote_line(&rest);
        let said = std::mem::take(&mut *self.remote_said.borrow_mut());
        let e = classify::libgit2(
            &err,
            &classify::Context {
                url: &url,
                dest: self.dest,
                auth_hint: &hint,
            },
        );
        classify::with_remote_message(e, &said)
    }
}
