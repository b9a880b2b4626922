//! Smart HTTP(S) through libcurl, registered as libgit2's transport for `http://` and
//! `https://`. libgit2 keeps the git protocol (negotiation, pack, index); the bytes move through
//! curl, which gives what a pod needs and libgit2's own client hides: the response headers
//! (`Retry-After` of a 429/503), plain `http://` through a proxy, a stall cut after exactly the
//! I/O timeout, and reliable proxy authentication.
//!
//! This module registers the transport and holds what the requests of one session share
//! ([`Settings`]); [`request`] sends one request (redirects, the 401 answered with credentials,
//! the response head), [`body`] pumps a response from its own thread through a bounded channel
//! (receiving overlaps with libgit2 inflating and hashing), [`handle`] sets up curl (proxy,
//! trust, timeouts), and [`shallow`] makes a fresh shallow fetch one request instead of two.
//! A failure is kept typed in [`Settings`] and sorted by [`super::classify`], for
//! [`super::Session::classify`] to report instead of libgit2's flattened message.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex, Once, OnceLock};
use std::time::{Duration, SystemTime};

use curl::easy::{Easy, List};
use git2::transport::{Service, SmartSubtransport, SmartSubtransportStream, Transport};
use tracing::debug;

use super::classify;
use crate::config::Remote;
use crate::credentials::{percent_decode, Credentials};
use crate::error::Error;
use crate::redact;

mod body;
mod handle;
pub mod partial;
mod request;
mod shallow;

use body::*;
pub use handle::handle;
use handle::*;
pub use request::parse_retry_after;
use request::*;
use shallow::*;

/// Redirects followed on the first request (a moved or renamed repository).
const MAX_REDIRECTS: usize = 5;
/// The most a ref advertisement (or a shallow list) may inflate to before libgit2 is told the
/// server misbehaves: libgit2 keeps every ref it reads. A v0 advertisement of nixpkgs, pull
/// request refs included, is about 60 MiB; a gzip bomb is unbounded.
const MAX_ADVERTISEMENT: usize = 256 << 20;
/// The most objects a pack may claim: libgit2 reserves room for the claimed count before the
/// first object arrives (2^32-1 claimed: 48 GiB). The largest repositories hold tens of
/// millions.
pub const MAX_PACK_OBJECTS: usize = 1 << 28;
/// Body chunks (of up to curl's 64 KiB buffer) in flight between the receiving thread and
/// libgit2: at most 1 MiB waits in memory when libgit2 is the slower side.
const CHANNEL_CHUNKS: usize = 16;

/// What the requests of one session need, and where they leave a failure.
pub struct Settings {
    /// The repository URL as shown to the user (redacted).
    shown_url: String,
    /// Scheme, host and port of the repository URL: the only place credentials are sent.
    origin: url::Origin,
    credentials: Option<Credentials>,
    auth_hint: String,
    proxy: Option<String>,
    ssl_verify: bool,
    ca_file: Option<std::path::PathBuf>,
    io_timeout: Duration,
    failure: Mutex<Option<Error>>,
    /// The repository being fetched into has no refs: libgit2 has nothing to negotiate, so a
    /// shallow fetch can be one request (see [`Speculation`]).
    nothing_to_negotiate: std::sync::atomic::AtomicBool,
    /// `--filter`: added to libgit2's fetch requests when the server advertises `filter`
    /// ([`partial`]).
    filter: Option<String>,
    /// The capabilities of the ref advertisement, once read.
    caps: Mutex<Option<String>>,
    /// The warning that the server ignores the filter was given.
    warned_filter: std::sync::atomic::AtomicBool,
    /// What the last transport's requests shared (the base URL after redirects, whether
    /// credentials are sent, an idle connection), for gitinit's own requests after libgit2's.
    last: Mutex<Option<Arc<Mutex<Shared>>>>,
}

impl Settings {
    pub fn new(remote: &Remote, auth_hint: String) -> Self {
        Settings {
            shown_url: remote.url.to_string(),
            origin: url::Url::parse(&remote.url.fetch_url())
                .map(|u| u.origin())
                .unwrap_or_else(|_| url::Origin::new_opaque()),
            credentials: remote.credentials.clone(),
            auth_hint,
            proxy: remote.proxy.clone(),
            ssl_verify: remote.ssl_verify,
            ca_file: remote.ca_file.clone(),
            io_timeout: remote.io_timeout,
            failure: Mutex::new(None),
            nothing_to_negotiate: std::sync::atomic::AtomicBool::new(false),
            filter: None,
            caps: Mutex::new(None),
            warned_filter: std::sync::atomic::AtomicBool::new(false),
            last: Mutex::new(None),
        }
    }

    /// The same settings, asking the server for a partial fetch with `filter`.
    pub fn with_filter(mut self, filter: Option<String>) -> Self {
        self.filter = filter;
        self
    }

    /// Whether the server advertised `filter` (`None`: no advertisement read yet).
    pub fn server_filters(&self) -> Option<bool> {
        let caps = self.caps.lock().ok()?;
        caps.as_deref().map(|c| c.split(' ').any(|w| w == "filter"))
    }

    /// Says whether the repository the next fetch writes into has no refs at all.
    pub fn set_nothing_to_negotiate(&self, yes: bool) {
        self.nothing_to_negotiate
            .store(yes, std::sync::atomic::Ordering::Relaxed);
    }

    /// The typed failure of the last request that failed, if it was an HTTP one.
    pub fn take_failure(&self) -> Option<Error> {
        self.failure.lock().ok()?.take()
    }

    fn fail(&self, e: Error) -> io::Error {
        let err = io::Error::other(e.to_string());
        if let Ok(mut f) = self.failure.lock() {
            *f = Some(e);
        }
        err
    }

    fn bad_server(&self, detail: String) -> Error {
        Error::BadServer {
            url: self.shown_url.clone(),
            detail,
        }
    }

    fn network(&self, detail: String) -> Error {
        Error::Network {
            url: self.shown_url.clone(),
            detail,
        }
    }
}

thread_local! {
    /// The settings of the session whose libgit2 call is running on this thread: libgit2 makes
    /// the transport inside that call, through the process-wide factory.
    static CURRENT: RefCell<Option<Arc<Settings>>> = const { RefCell::new(None) };
}

/// Makes `settings` the ones new HTTP transports use until the guard is dropped.
pub fn enter(settings: &Arc<Settings>) -> impl Drop {
    struct Guard(Option<Arc<Settings>>);
    impl Drop for Guard {
        fn drop(&mut self) {
            let prev = self.0.take();
            CURRENT.with(|c| *c.borrow_mut() = prev);
        }
    }
    let prev = CURRENT.with(|c| c.borrow_mut().replace(settings.clone()));
    Guard(prev)
}

extern "C" {
    /// libgit2's settings entry point (linked in through git2), for the one setting git2 does
    /// not wrap.
    fn git_libgit2_opts(option: std::ffi::c_int, ...) -> std::ffi::c_int;
}
/// `GIT_OPT_SET_PACK_MAX_OBJECTS` in libgit2 1.9's `git_libgit2_opt_t`.
const GIT_OPT_SET_PACK_MAX_OBJECTS: std::ffi::c_int = 26;

/// Registers the transport for `http` and `https`, once per process, before any libgit2 use,
/// and bounds what any remote's pack may claim ([`MAX_PACK_OBJECTS`]): a larger count is
/// refused as a broken pack ("too many objects") before libgit2 reserves memory for it.
pub fn register() -> Result<(), git2::Error> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| {
        // SAFETY: a documented libgit2 option taking one size_t, set before any fetch.
        if unsafe { git_libgit2_opts(GIT_OPT_SET_PACK_MAX_OBJECTS, MAX_PACK_OBJECTS) } < 0 {
            result = Err(git2::Error::from_str("cannot bound the objects of a pack"));
            return;
        }
        for scheme in ["http", "https"] {
            // SAFETY: called once, from one thread, before any libgit2 transport exists.
            let r = unsafe {
                git2::transport::register(scheme, |remote| {
                    let settings = CURRENT.with(|c| c.borrow().clone()).ok_or_else(|| {
                        git2::Error::from_str("internal: an HTTP transport outside a session")
                    })?;
                    Transport::smart(remote, true, CurlTransport::new(settings))
                })
            };
            if let Err(e) = r {
                result = Err(e);
            }
        }
    });
    result
}

/// libcurl's version, for `--version`.
pub fn curl_version() -> String {
    curl::Version::get().version().to_string()
}

/// What the requests of one connection share: where the repository really is after a
/// redirect, whether the server has asked for credentials, and a handle to reuse (its
/// connection stays open between the requests of one fetch).
#[derive(Default)]
struct Shared {
    base: Option<String>,
    send_auth: bool,
    idle: Option<Easy>,
    /// The rest of a shallow fetch's response, for libgit2's second request.
    stash: Option<Stash>,
}

struct CurlTransport {
    settings: Arc<Settings>,
    shared: Arc<Mutex<Shared>>,
}

impl CurlTransport {
    fn new(settings: Arc<Settings>) -> Self {
        let shared = Arc::new(Mutex::new(Shared::default()));
        if let Ok(mut last) = settings.last.lock() {
            *last = Some(shared.clone());
        }
        CurlTransport { settings, shared }
    }
}

impl SmartSubtransport for CurlTransport {
    fn action(
        &self,
        url: &str,
        action: Service,
    ) -> Result<Box<dyn SmartSubtransportStream>, git2::Error> {
        let first = match action {
            Service::UploadPackLs => true,
            Service::UploadPack => false,
            Service::ReceivePackLs | Service::ReceivePack => {
                return Err(git2::Error::from_str(
                    "gitinit only fetches; it never pushes",
                ))
            }
        };
        Ok(Box::new(Request::new(
            self.settings.clone(),
            self.shared.clone(),
            url,
            first,
            Vec::new(),
            false,
        )))
    }

    fn close(&self) -> Result<(), git2::Error> {
        Ok(())
    }
}
