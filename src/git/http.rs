//! Smart HTTP(S) through libcurl, registered as libgit2's transport for `http://` and
//! `https://`. libgit2 keeps the git protocol (negotiation, pack, index); this module only moves
//! the bytes. libgit2's own HTTP client hides what a pod needs and what git itself gets from
//! curl: the response headers (`Retry-After` of a 429/503), plain `http://` through a proxy,
//! a stall cut by bytes-per-second rather than a socket timeout, and reliable proxy
//! authentication.
//!
//! Each request runs on its own thread that streams the body through a bounded channel, so
//! receiving (socket, TLS) overlaps with libgit2 inflating and hashing the pack on the caller's
//! thread. What went wrong is kept as a typed [`Error`] in [`Settings`], for
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
use crate::config::Config;
use crate::credentials::{percent_decode, Credentials};
use crate::error::Error;
use crate::redact;

/// Redirects followed on the first request (a moved or renamed repository).
const MAX_REDIRECTS: usize = 5;
/// The most a ref advertisement (or a shallow list) may inflate to before libgit2 is told the
/// server misbehaves: libgit2 keeps every ref it reads. A v0 advertisement of nixpkgs, pull
/// request refs included, is about 60 MiB; a gzip bomb is unbounded.
const MAX_ADVERTISEMENT: usize = 256 << 20;
/// The most objects a pack may claim: libgit2 reserves room for the claimed count before the
/// first object arrives (2^32-1 claimed: 48 GiB). The largest repositories hold tens of
/// millions.
const MAX_PACK_OBJECTS: usize = 1 << 28;
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
}

impl Settings {
    pub fn new(cfg: &Config, auth_hint: String) -> Self {
        Settings {
            shown_url: cfg.url.to_string(),
            origin: url::Url::parse(&cfg.url.fetch_url())
                .map(|u| u.origin())
                .unwrap_or_else(|_| url::Origin::new_opaque()),
            credentials: cfg.credentials.clone(),
            auth_hint,
            proxy: cfg.proxy.clone(),
            ssl_verify: cfg.flags.ssl_verify,
            ca_file: cfg.ca_file.clone(),
            io_timeout: cfg.io_timeout,
            failure: Mutex::new(None),
            nothing_to_negotiate: std::sync::atomic::AtomicBool::new(false),
        }
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
        CurlTransport {
            settings,
            shared: Arc::new(Mutex::new(Shared {
                base: None,
                send_auth: false,
                idle: None,
                stash: None,
            })),
        }
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
        Ok(Box::new(Request {
            settings: self.settings.clone(),
            shared: self.shared.clone(),
            url: url.trim_end_matches('/').to_string(),
            first,
            body: Vec::new(),
            response: None,
            speculation: None,
            answered: false,
            received: 0,
            framing: PktFraming::default(),
        }))
    }

    fn close(&self) -> Result<(), git2::Error> {
        Ok(())
    }
}

/// One request: libgit2 writes the body (if any), then reads the response.
struct Request {
    settings: Arc<Settings>,
    shared: Arc<Mutex<Shared>>,
    url: String,
    /// The ref advertisement (GET info/refs), the only request whose redirects are followed.
    first: bool,
    body: Vec<u8>,
    response: Option<Body>,
    speculation: Option<Speculation>,
    /// This request's part of a shared response has been read (see [`Speculation`]).
    answered: bool,
    /// Bytes of the response libgit2 has read (after libcurl's decoding), to bound the
    /// advertisement.
    received: usize,
    /// The advertisement's pkt-line framing, checked as it is read.
    framing: PktFraming,
}

struct Body {
    rx: Receiver<Msg>,
    chunk: Vec<u8>,
    pos: usize,
    done: bool,
}

enum Msg {
    Head(Head),
    Data(Vec<u8>),
    End(Result<(), curl::Error>, Option<Easy>),
}

#[derive(Debug, Default, Clone)]
struct Head {
    status: u32,
    content_type: Option<String>,
    retry_after: Option<String>,
    location: Option<String>,
}

impl Head {
    fn header(&mut self, line: &[u8]) {
        let Ok(line) = std::str::from_utf8(line) else {
            return;
        };
        let line = line.trim_end();
        if line.starts_with("HTTP/") {
            let status = line
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            // A proxy's answer to CONNECT comes before the server's: the last one counts.
            *self = Head {
                status,
                ..Head::default()
            };
        } else if let Some((name, value)) = line.split_once(':') {
            let value = Some(value.trim().to_string());
            if name.eq_ignore_ascii_case("content-type") {
                self.content_type = value;
            } else if name.eq_ignore_ascii_case("retry-after") {
                self.retry_after = value;
            } else if name.eq_ignore_ascii_case("location") {
                self.location = value;
            }
        }
    }
}

impl Request {
    fn target(&self) -> String {
        let base = self
            .shared
            .lock()
            .ok()
            .and_then(|s| s.base.clone())
            .unwrap_or_else(|| self.url.clone());
        if self.first {
            format!("{base}/info/refs?service=git-upload-pack")
        } else {
            format!("{base}/git-upload-pack")
        }
    }

    /// Sends the request until the server answers 200: following redirects of the first
    /// request, and answering a 401 with the credentials once.
    fn start(&mut self) -> io::Result<Body> {
        let s = self.settings.clone();
        let mut redirects = 0;
        loop {
            let url = self.target();
            let (easy, send_auth) = {
                let mut sh = self
                    .shared
                    .lock()
                    .map_err(|_| io::Error::other("poisoned"))?;
                (sh.idle.take(), sh.send_auth)
            };
            let easy_reused = easy.is_some();
            let easy = match easy {
                Some(e) => e,
                None => new_handle(&s).map_err(|e| s.fail(s.network(format!("libcurl: {e}"))))?,
            };
            debug!(url = %redact::url(&url), auth = send_auth, reuse = easy_reused, "HTTP request");
            let mut body = self.send(easy, &url, send_auth)?;
            let head = match body.rx.recv() {
                Ok(Msg::Head(h)) => h,
                Ok(Msg::End(Err(e), easy)) => {
                    put_back(&self.shared, easy);
                    return Err(s.fail(classify::curl(
                        &s.shown_url,
                        &e,
                        None,
                        s.proxy.is_some(),
                        s.io_timeout,
                    )));
                }
                _ => {
                    return Err(s.fail(s.network("the HTTP request ended without an answer".into())))
                }
            };
            if head.status != 200 {
                body.finish(&self.shared);
            }
            match head.status {
                200 => {
                    if self.first {
                        check_content_type(&s, &head)?;
                    }
                    return Ok(body);
                }
                301 | 302 | 303 | 307 | 308 if self.first && redirects < MAX_REDIRECTS => {
                    redirects += 1;
                    let location = head.location.clone().unwrap_or_default();
                    let base = self.redirect_base(&url, &location)?;
                    debug!(to = %redact::url(&base), "following the redirect");
                    if let Ok(mut sh) = self.shared.lock() {
                        sh.base = Some(base);
                    }
                }
                401 if s.credentials.is_some() && !send_auth => {
                    if let Ok(mut sh) = self.shared.lock() {
                        sh.send_auth = true;
                    }
                }
                status => {
                    return Err(s.fail(classify::http_status(
                        &s.shown_url,
                        &s.auth_hint,
                        status,
                        head.retry_after.as_deref(),
                        send_auth,
                    )))
                }
            }
        }
    }

    /// The repository's new base URL from a redirect of `from` to `location`. Only http(s)
    /// is followed, https never falls back to plain http, and credentials never follow to
    /// another origin (scheme, host and port: what a browser and libcurl compare).
    fn redirect_base(&self, from: &str, location: &str) -> io::Result<String> {
        let s = &self.settings;
        let to = url::Url::parse(from)
            .and_then(|f| f.join(location))
            .map_err(|_| {
                s.fail(Error::RepoNotFound {
                    url: s.shown_url.clone(),
                    detail: "the server redirected to an address that is not a URL".into(),
                })
            })?;
        let shown = {
            let mut u = to.clone();
            u.set_query(None);
            u.set_fragment(None);
            redact::url(u.as_str().trim_end_matches("/info/refs"))
        };
        if !matches!(to.scheme(), "http" | "https") {
            return Err(s.fail(Error::Trust {
                detail: format!(
                    "{} redirected to {shown}: gitinit follows redirects only to http:// and https://",
                    s.shown_url
                ),
                hint: "A git server never sends a client to another protocol: check the URL, and do not trust this server".into(),
            }));
        }
        if from.starts_with("https:") && to.scheme() != "https" {
            return Err(s.fail(Error::Trust {
                detail: format!("{} redirected from https to {shown}", s.shown_url),
                hint: "gitinit never follows https to plain http: use the https URL the repository really has".into(),
            }));
        }
        if to.origin() != s.origin && s.credentials.is_some() {
            let (ours, theirs) = (
                s.origin.ascii_serialization(),
                to.origin().ascii_serialization(),
            );
            let host = to.host_str().unwrap_or_default().to_ascii_lowercase();
            let same_host = url::Url::parse(&ours)
                .ok()
                .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
                .is_some_and(|h| h == host);
            let detail = if same_host {
                format!("the server redirected to another origin, {theirs} (another port or scheme), and credentials for {ours} are never sent there")
            } else {
                format!("the server redirected to another host, {host}, and credentials for {ours} are never sent there")
            };
            return Err(s.fail(Error::Auth {
                url: s.shown_url.clone(),
                detail,
                hint: format!("If the repository moved to {theirs}, use that URL: --url {shown}"),
            }));
        }
        let path = to.path();
        let Some(base_path) = path.strip_suffix("/info/refs") else {
            return Err(s.fail(Error::RepoNotFound {
                url: s.shown_url.clone(),
                detail: format!("the server redirected to {shown}, which is not a git repository"),
            }));
        };
        let mut base = to.clone();
        base.set_query(None);
        base.set_fragment(None);
        // User-info in a Location is the server's, never sent on.
        let _ = base.set_username("");
        let _ = base.set_password(None);
        base.set_path(base_path);
        Ok(base.as_str().trim_end_matches('/').to_string())
    }

    /// Starts the transfer on its own thread; its first message is the response head (or the
    /// failure that prevented one).
    fn send(&self, mut easy: Easy, url: &str, send_auth: bool) -> io::Result<Body> {
        let s = &self.settings;
        // Every URL here is built from the repository's (http or https) and redirects checked
        // by `redirect_base`: libcurl, which speaks many protocols, never gets another one.
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(s.fail(s.bad_server(format!(
                "refusing a request to {}: only http:// and https:// are spoken",
                redact::url(url)
            ))));
        }
        let setup = |easy: &mut Easy| -> Result<(), curl::Error> {
            easy.url(url)?;
            let mut headers = List::new();
            if self.first {
                easy.get(true)?;
                headers.append("Accept: */*")?;
                headers.append("Pragma: no-cache")?;
            } else {
                easy.post(true)?;
                let body = self
                    .speculation
                    .as_ref()
                    .map_or(&self.body, |sp| &sp.expected);
                easy.post_fields_copy(body)?;
                headers.append("Content-Type: application/x-git-upload-pack-request")?;
                headers.append("Accept: application/x-git-upload-pack-result")?;
            }
            headers.append("Expect:")?;
            easy.http_headers(headers)?;
            if let (true, Some(c)) = (send_auth, &s.credentials) {
                easy.username(&c.username)?;
                easy.password(&c.password)?;
            }
            Ok(())
        };
        setup(&mut easy).map_err(|e| s.fail(s.network(format!("libcurl: {e}"))))?;
        let (tx, rx) = sync_channel(CHANNEL_CHUNKS);
        std::thread::Builder::new()
            .name("gitinit-http".into())
            .spawn({
                let io_timeout = s.io_timeout;
                move || transfer(easy, tx, io_timeout)
            })
            .map_err(|e| s.fail(s.network(format!("cannot start a thread: {e}"))))?;
        Ok(Body {
            rx,
            chunk: Vec::new(),
            pos: 0,
            done: false,
        })
    }
}

/// A handle whose transfer ended cleanly keeps its connection open for the next request.
fn put_back(shared: &Mutex<Shared>, easy: Option<Easy>) {
    if let (Some(e), Ok(mut sh)) = (easy, shared.lock()) {
        sh.idle = Some(e);
    }
}

/// Runs on the request's thread: the head before the first byte of body, then the body, then
/// the end, with the handle when its connection can be reused.
fn transfer(mut easy: Easy, tx: SyncSender<Msg>, io_timeout: Duration) {
    let head = RefCell::new(Head::default());
    let head_sent = std::cell::Cell::new(false);
    // The last moment anything moved: bytes in or out, or libgit2 taking a chunk.
    let moved = std::cell::Cell::new(std::time::Instant::now());
    let seen = std::cell::Cell::new(0u64);
    let result = {
        let mut t = easy.transfer();
        let r = t
            .header_function(|line| {
                moved.set(std::time::Instant::now());
                head.borrow_mut().header(line);
                true
            })
            .and_then(|()| {
                // curl calls this about once a second, idle or not: a connection silent for
                // the I/O timeout is cut (curl's own low-speed check averages over seconds
                // of earlier traffic and so cuts a mid-transfer stall several seconds late).
                t.progress_function(|_, down, _, up| {
                    let total = (down + up) as u64;
                    if total != seen.replace(total) {
                        moved.set(std::time::Instant::now());
                    }
                    moved.get().elapsed() < io_timeout
                })
            })
            .and_then(|()| {
                t.write_function(|data| {
                    if !head_sent.replace(true)
                        && tx.send(Msg::Head(head.borrow().clone())).is_err()
                    {
                        return Ok(0);
                    }
                    // A closed channel (libgit2 stopped reading) aborts the transfer.
                    let sent = tx.send(Msg::Data(data.to_vec()));
                    moved.set(std::time::Instant::now());
                    match sent {
                        Ok(()) => Ok(data.len()),
                        Err(_) => Ok(0),
                    }
                })
            });
        r.and_then(|()| t.perform())
    };
    let head = head.into_inner();
    if !head_sent.get() && head.status != 0 && (result.is_ok() || head.status != 200) {
        let _ = tx.send(Msg::Head(head));
    }
    let reusable = result.is_ok();
    let _ = tx.send(Msg::End(result, reusable.then_some(easy)));
}

impl Body {
    /// Waits a moment for the end of an answer nobody reads further (an error page, or the
    /// rest after the protocol's last packet), so the handle, and with it the open connection
    /// and its TLS session, serves the next request instead of a new connect and handshake. A
    /// long or slow remainder is left to abort with the channel.
    fn finish(&mut self, shared: &Mutex<Shared>) {
        if self.done {
            return;
        }
        self.done = true;
        let deadline = std::time::Instant::now() + Duration::from_millis(200);
        let mut extra = 0usize;
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match self.rx.recv_timeout(left) {
                Ok(Msg::Data(d)) => {
                    extra += d.len();
                    if extra > 64 * 1024 {
                        return;
                    }
                }
                Ok(Msg::End(_, easy)) => {
                    put_back(shared, easy);
                    return;
                }
                Ok(Msg::Head(_)) => {}
                Err(_) => return,
            }
        }
    }
}

/// libgit2 stops reading at the protocol's last packet, before the transfer has ended.
impl Drop for Request {
    fn drop(&mut self) {
        // A speculative response lives on in the stash for the next request.
        if let (Some(body), None) = (self.response.as_mut(), &self.speculation) {
            body.finish(&self.shared);
        }
    }
}

impl Body {
    fn read(&mut self, buf: &mut [u8], shared: &Mutex<Shared>, s: &Settings) -> io::Result<usize> {
        loop {
            if self.pos < self.chunk.len() {
                let n = buf.len().min(self.chunk.len() - self.pos);
                buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if self.done {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Msg::Data(d)) => {
                    self.chunk = d;
                    self.pos = 0;
                }
                Ok(Msg::End(Ok(()), easy)) => {
                    self.done = true;
                    put_back(shared, easy);
                }
                Ok(Msg::End(Err(e), _)) => {
                    self.done = true;
                    return Err(s.fail(classify::curl(
                        &s.shown_url,
                        &e,
                        Some(200),
                        s.proxy.is_some(),
                        s.io_timeout,
                    )));
                }
                Ok(Msg::Head(_)) => {}
                Err(_) => {
                    self.done = true;
                    return Err(s.fail(s.network("the HTTP transfer stopped unexpectedly".into())));
                }
            }
        }
    }
}

/// A shallow fetch in one request instead of two. libgit2 (protocol v0, stateless) first
/// sends its wants and `deepen` alone and reads the shallow list up to its flush packet, then
/// sends the very same request with `done` appended and reads the rest: the server lists the
/// shallow commits again and then sends the pack. git's own client sends `done` at once when it
/// has nothing to negotiate. So the first request goes out with `done`; libgit2 gets its
/// answer up to that flush, and the second request, if it is exactly the first plus `done`, is
/// answered from the same response (replaying the shallow list) instead of a new round trip
/// and a second run of upload-pack on the server. Anything else is sent as it is.
struct Speculation {
    /// The request libgit2 is expected to send next.
    expected: Vec<u8>,
    /// What libgit2 has read of the response so far, to replay.
    read: Vec<u8>,
    scan: PktScan,
}

struct Stash {
    expected: Vec<u8>,
    read: Vec<u8>,
    body: Body,
}

const DONE_PKT: &[u8] = b"0009done\n";

/// Whether a request is the first step of a shallow fetch with nothing to negotiate: wants and a
/// `deepen`, no `have`, no `done`, ending in a flush.
fn first_shallow_step(body: &[u8]) -> bool {
    let mut rest = body;
    let mut deepen = false;
    while rest.len() >= 4 {
        let Some(len) = std::str::from_utf8(&rest[..4])
            .ok()
            .and_then(|h| usize::from_str_radix(h, 16).ok())
        else {
            return false;
        };
        if len == 0 {
            return deepen && rest.len() == 4;
        }
        if len < 4 || len > rest.len() {
            return false;
        }
        let line = &rest[4..len];
        if line.starts_with(b"have ") || line.starts_with(b"done") {
            return false;
        }
        deepen |= line.starts_with(b"deepen");
        rest = &rest[len..];
    }
    false
}

/// Checks the length headers of a stream of pkt-lines (a ref advertisement): four hex digits,
/// 0 (flush) or at least 4.
#[derive(Default)]
struct PktFraming {
    header: Vec<u8>,
    left: usize,
    broken: bool,
}

impl PktFraming {
    fn check(&mut self, bytes: &[u8]) -> Result<(), String> {
        let mut i = 0;
        while i < bytes.len() && !self.broken {
            if self.left > 0 {
                let n = self.left.min(bytes.len() - i);
                self.left -= n;
                i += n;
                continue;
            }
            self.header.push(bytes[i]);
            i += 1;
            if self.header.len() < 4 {
                continue;
            }
            let header = std::mem::take(&mut self.header);
            let len = std::str::from_utf8(&header)
                .ok()
                .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
                .and_then(|h| usize::from_str_radix(h, 16).ok());
            match len {
                Some(0) => {}
                Some(n) if n >= 4 => self.left = n - 4,
                _ => {
                    self.broken = true;
                    return Err(format!(
                        "its list of refs holds a malformed pkt-line length `{}`",
                        String::from_utf8_lossy(&header).escape_debug()
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Finds the end of the first flush packet in a stream of pkt-lines.
#[derive(Default)]
struct PktScan {
    header: Vec<u8>,
    left: usize,
}

impl PktScan {
    /// How many of `bytes` come up to and including the first flush packet, if it ends here.
    fn feed(&mut self, bytes: &[u8]) -> Option<usize> {
        let mut i = 0;
        while i < bytes.len() {
            if self.left > 0 {
                let n = self.left.min(bytes.len() - i);
                self.left -= n;
                i += n;
                continue;
            }
            self.header.push(bytes[i]);
            i += 1;
            if self.header.len() < 4 {
                continue;
            }
            let len = std::str::from_utf8(&self.header)
                .ok()
                .and_then(|h| usize::from_str_radix(h, 16).ok());
            self.header.clear();
            match len {
                Some(0) => return Some(i),
                Some(n) if n >= 4 => self.left = n - 4,
                // Not pkt-lines (or a delimiter): let libgit2 see it all and decide.
                _ => return Some(bytes.len()),
            }
        }
        None
    }
}

impl Read for Request {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.response.is_none() {
            if self.answered {
                return Ok(0);
            }
            let stashed = self.shared.lock().ok().and_then(|mut sh| sh.stash.take());
            self.response = Some(match stashed {
                Some(st) if !self.first && st.expected == self.body => {
                    debug!("answering libgit2's second shallow request from the first response");
                    let mut body = st.body;
                    let mut chunk = st.read;
                    chunk.extend_from_slice(&body.chunk[body.pos..]);
                    body.chunk = chunk;
                    body.pos = 0;
                    body
                }
                _ => {
                    let fresh = self
                        .settings
                        .nothing_to_negotiate
                        .load(std::sync::atomic::Ordering::Relaxed);
                    if fresh && !self.first && first_shallow_step(&self.body) {
                        let mut expected = self.body.clone();
                        expected.extend_from_slice(DONE_PKT);
                        self.speculation = Some(Speculation {
                            expected,
                            read: vec![],
                            scan: PktScan::default(),
                        });
                    }
                    self.start()?
                }
            });
        }
        let (s, shared) = (self.settings.clone(), self.shared.clone());
        let body = self.response.as_mut().expect("set above");
        let n = body.read(buf, &shared, &s)?;
        self.received += n;
        if self.first {
            // libgit2 fails on a length of 1 to 3 without saying why (its last, unrelated
            // message is reported instead): say it here.
            if let Err(what) = self.framing.check(&buf[..n]) {
                return Err(s.fail(s.bad_server(what)));
            }
        }
        if self.first && self.received > MAX_ADVERTISEMENT {
            return Err(s.fail(s.bad_server(format!(
                "its list of refs is more than {} MiB (decompressed); no repository has that many refs",
                MAX_ADVERTISEMENT >> 20
            ))));
        }
        let Some(spec) = self.speculation.as_mut() else {
            return Ok(n);
        };
        let Some(end) = spec.scan.feed(&buf[..n]) else {
            if spec.read.len() + n > MAX_ADVERTISEMENT {
                return Err(s.fail(s.bad_server(format!(
                    "its list of shallow commits is more than {} MiB",
                    MAX_ADVERTISEMENT >> 20
                ))));
            }
            spec.read.extend_from_slice(&buf[..n]);
            return Ok(n);
        };
        // The flush that ends the shallow list: the rest waits for the second request.
        body.pos -= n - end;
        spec.read.extend_from_slice(&buf[..end]);
        let spec = self.speculation.take().expect("checked above");
        let body = self.response.take().expect("checked above");
        self.answered = true;
        if let Ok(mut sh) = self.shared.lock() {
            sh.stash = Some(Stash {
                expected: spec.expected,
                read: spec.read,
                body,
            });
        }
        Ok(end)
    }
}

impl Write for Request {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.response.is_some() {
            return Err(io::Error::other("the request was already sent"));
        }
        self.body.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A handle with what every request of the session shares: proxy, trust, timeouts, identity.
fn new_handle(s: &Settings) -> Result<Easy, curl::Error> {
    let mut e = Easy::new();
    e.useragent(concat!("git/2.0 (gitinit ", env!("CARGO_PKG_VERSION"), ")"))?;
    e.follow_location(false)?;
    e.accept_encoding("")?;
    // A connection that delivers nothing for the I/O timeout is cut by the progress callback of
    // `transfer` and the attempt retried: a stalled server must not hang the pod, while a slow
    // but moving transfer goes on.
    e.progress(true)?;
    e.connect_timeout(s.io_timeout.min(Duration::from_secs(30)))?;
    e.buffer_size(64 * 1024)?;
    e.tcp_nodelay(true)?;
    match &s.proxy {
        Some(p) => {
            let (url, creds) = split_proxy(p);
            e.proxy(&url)?;
            if let Some((user, pass)) = creds {
                e.proxy_username(&user)?;
                e.proxy_password(&pass)?;
            }
        }
        // Decided by `proxy::choose`: curl must not pick one from the environment on its own.
        None => e.proxy("")?,
    }
    e.ssl_verify_peer(s.ssl_verify)?;
    e.ssl_verify_host(s.ssl_verify)?;
    let system = system_roots();
    match (&s.ca_file, &system.0) {
        (Some(ca), file) => {
            // --ca-file adds to the system roots, as documented.
            let mut blob = file
                .as_ref()
                .and_then(|f| std::fs::read(f).ok())
                .unwrap_or_default();
            blob.push(b'\n');
            blob.extend(std::fs::read(ca).unwrap_or_default());
            e.ssl_cainfo_blob(&blob)?;
        }
        (None, Some(file)) => e.cainfo(file)?,
        (None, None) => {}
    }
    if let Some(dir) = &system.1 {
        e.capath(dir)?;
    }
    Ok(e)
}

/// The system's CA bundle and directory, found like OpenSSL-based tools do (`SSL_CERT_FILE`,
/// `SSL_CERT_DIR`, then the usual places of each distribution).
fn system_roots() -> &'static (Option<std::path::PathBuf>, Option<std::path::PathBuf>) {
    static ROOTS: OnceLock<(Option<std::path::PathBuf>, Option<std::path::PathBuf>)> =
        OnceLock::new();
    ROOTS.get_or_init(|| {
        let p = openssl_probe::probe();
        (p.cert_file, p.cert_dir)
    })
}

/// `http://user:pass@proxy:3128` → the URL without user-info, and the decoded credentials.
fn split_proxy(p: &str) -> (String, Option<(String, String)>) {
    let Ok(mut u) = url::Url::parse(p) else {
        return (p.to_string(), None);
    };
    // Percent-decoded as libcurl would: a `+` in a password is a plus.
    let creds = (!u.username().is_empty()).then(|| {
        (
            percent_decode(u.username()),
            percent_decode(u.password().unwrap_or_default()),
        )
    });
    let _ = u.set_username("");
    let _ = u.set_password(None);
    (u.as_str().trim_end_matches('/').to_string(), creds)
}

fn check_content_type(s: &Settings, head: &Head) -> io::Result<()> {
    let ct = head.content_type.as_deref().unwrap_or("no content type");
    if ct.starts_with("application/x-git-upload-pack-advertisement") {
        return Ok(());
    }
    Err(s.fail(Error::RepoNotFound {
        url: s.shown_url.clone(),
        detail: format!("the server answered with {ct}, not git's smart HTTP protocol: is this the repository's clone URL?"),
    }))
}

/// `Retry-After`: seconds, or an HTTP date.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
        let d = parse_retry_after(&later).unwrap();
        assert!(
            d > Duration::from_secs(100) && d <= Duration::from_secs(120),
            "{d:?}"
        );
        let past = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(60));
        assert_eq!(parse_retry_after(&past), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn proxy_credentials_leave_the_url() {
        let (url, creds) = split_proxy("http://us%40er:p%3Ass@proxy:3128");
        assert_eq!(url, "http://proxy:3128");
        assert_eq!(creds, Some(("us@er".into(), "p:ss".into())));
        let (_, creds) = split_proxy("http://u+1:p+a%2Bss%25@proxy:3128");
        assert_eq!(creds, Some(("u+1".into(), "p+a+ss%".into())));
        assert_eq!(split_proxy("http://proxy:3128/").1, None);
    }

    #[test]
    fn the_last_response_head_wins() {
        let mut h = Head::default();
        for line in [
            "HTTP/1.1 407 Proxy Authentication Required\r\n",
            "Retry-After: 9\r\n",
            "\r\n",
            "HTTP/1.1 429 Too Many Requests\r\n",
            "Content-Type: text/plain\r\n",
            "retry-after: 3\r\n",
        ] {
            h.header(line.as_bytes());
        }
        assert_eq!(h.status, 429);
        assert_eq!(h.retry_after.as_deref(), Some("3"));
        assert_eq!(h.content_type.as_deref(), Some("text/plain"));
    }
}

#[cfg(test)]
mod pkt_tests {
    use super::*;

    #[test]
    fn the_first_step_of_a_shallow_fetch_is_recognised() {
        let want = b"0032want 5f08cc064b779ad1701ffe202ec4b235ad6b0946\n";
        let mut body = want.to_vec();
        body.extend_from_slice(b"000ddeepen 1\n0000");
        assert!(first_shallow_step(&body));
        let mut with_done = body.clone();
        with_done.extend_from_slice(DONE_PKT);
        assert!(!first_shallow_step(&with_done));
        let mut no_deepen = want.to_vec();
        no_deepen.extend_from_slice(b"0000");
        assert!(!first_shallow_step(&no_deepen));
        let mut haves = body[..body.len() - 4].to_vec();
        haves.extend_from_slice(b"0032have 5f08cc064b779ad1701ffe202ec4b235ad6b0946\n0000");
        assert!(!first_shallow_step(&haves));
        assert!(!first_shallow_step(b"zzzz"));
    }

    #[test]
    fn malformed_pkt_line_lengths_are_found_across_chunks() {
        let good = b"001e# service=git-upload-pack\n0000000bhello\n0000";
        for split in 0..good.len() {
            let mut f = PktFraming::default();
            let (a, b) = good.split_at(split);
            assert_eq!(
                f.check(a).and_then(|()| f.check(b)),
                Ok(()),
                "split at {split}"
            );
        }
        for bad in [&b"0000000200"[..], b"0001", b"zzzzabc", b"00+4"] {
            assert!(PktFraming::default().check(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_scan_stops_after_the_first_flush_across_chunks() {
        let stream = b"0035shallow 5f08cc064b779ad1701ffe202ec4b235ad6b0946\n00000008NAK\nPACK";
        for split in 0..stream.len() {
            let mut scan = PktScan::default();
            let (a, b) = stream.split_at(split);
            let end = match scan.feed(a) {
                Some(e) => e,
                None => a.len() + scan.feed(b).expect("a flush in the stream"),
            };
            assert_eq!(&stream[..end], &stream[..0x35 + 4], "split at {split}");
        }
    }
}
