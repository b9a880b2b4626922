//! One request of libgit2's: the URL after redirects, credentials after a 401, the response
//! head, and the body read back to libgit2 (through a shallow speculation when there is one).

use super::*;

/// One request: libgit2 writes the body (if any), then reads the response.
pub(super) struct Request {
    pub(super) settings: Arc<Settings>,
    pub(super) shared: Arc<Mutex<Shared>>,
    pub(super) url: String,
    /// The ref advertisement (GET info/refs), the only request whose redirects are followed.
    pub(super) first: bool,
    pub(super) body: Vec<u8>,
    pub(super) response: Option<Body>,
    pub(super) speculation: Option<Speculation>,
    /// This request's part of a shared response has been read (see [`Speculation`]).
    pub(super) answered: bool,
    /// Bytes of the response libgit2 has read (after libcurl's decoding), to bound the
    /// advertisement.
    pub(super) received: usize,
    /// The advertisement's pkt-line framing, checked as it is read.
    pub(super) framing: PktFraming,
    /// The advertisement's start, until its capabilities are read.
    pub(super) adv_head: Vec<u8>,
    /// gitinit's own request ([`partial::fetch_objects`]), sent as it is written.
    pub(super) own: bool,
}

#[derive(Debug, Default, Clone)]
pub(super) struct Head {
    pub(super) status: u32,
    pub(super) content_type: Option<String>,
    pub(super) retry_after: Option<String>,
    pub(super) location: Option<String>,
}

impl Head {
    pub(super) fn header(&mut self, line: &[u8]) {
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
    /// A request to `url` (a trailing `/` dropped) that has neither been sent nor answered;
    /// `own`: gitinit's own, whose `body` is complete already.
    pub(super) fn new(
        settings: Arc<Settings>,
        shared: Arc<Mutex<Shared>>,
        url: &str,
        first: bool,
        body: Vec<u8>,
        own: bool,
    ) -> Request {
        Request {
            settings,
            shared,
            url: url.trim_end_matches('/').to_string(),
            first,
            body,
            response: None,
            speculation: None,
            answered: false,
            received: 0,
            framing: PktFraming::default(),
            adv_head: Vec::new(),
            own,
        }
    }

    pub(super) fn target(&self) -> String {
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
    pub(super) fn start(&mut self) -> io::Result<Body> {
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
    pub(super) fn redirect_base(&self, from: &str, location: &str) -> io::Result<String> {
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
                hint: crate::hints::moved(&theirs, &shown),
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
    pub(super) fn send(&self, mut easy: Easy, url: &str, send_auth: bool) -> io::Result<Body> {
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

/// libgit2 stops reading at the protocol's last packet, before the transfer has ended.
impl Drop for Request {
    fn drop(&mut self) {
        // A speculative response lives on in the stash for the next request.
        if let (Some(body), None) = (self.response.as_mut(), &self.speculation) {
            body.finish(&self.shared);
        }
    }
}

impl Read for Request {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.response.is_none() {
            if self.answered {
                return Ok(0);
            }
            if !self.first && !self.own {
                self.add_filter();
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
            capture_caps(&mut self.adv_head, &s, &buf[..n]);
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

/// Keeps the capabilities of the advertisement (after the NUL of its first ref line); `head`
/// holds its start until then.
fn capture_caps(head: &mut Vec<u8>, s: &Settings, bytes: &[u8]) {
    const MAX: usize = 64 << 10;
    if head.len() >= MAX {
        return;
    }
    head.extend_from_slice(bytes);
    let Some(nul) = head.iter().position(|&b| b == 0) else {
        return;
    };
    let Some(end) = head[nul..].iter().position(|&b| b == b'\n') else {
        return;
    };
    let caps = String::from_utf8_lossy(&head[nul + 1..nul + end]).into_owned();
    if let Ok(mut c) = s.caps.lock() {
        *c = Some(caps);
    }
    // Done: nothing more is kept.
    *head = vec![0; MAX];
}

impl Request {
    /// `--filter` in libgit2's fetch request, as git sends it: the capability on the first
    /// `want`, and `filter <spec>` before the flush. A server without `filter` gets the request
    /// as it is (and sends every blob), with a warning.
    fn add_filter(&mut self) {
        let Some(spec) = self.settings.filter.clone() else {
            return;
        };
        match self.settings.server_filters() {
            Some(true) => {
                if let Some(body) = partial::with_filter(&self.body, &spec) {
                    self.body = body;
                }
            }
            _ => {
                if !self
                    .settings
                    .warned_filter
                    .swap(true, std::sync::atomic::Ordering::Relaxed)
                {
                    tracing::warn!(
                        url = %self.settings.shown_url,
                        "the server does not support --filter={spec} (it does not advertise `filter`; on git's own server: uploadpack.allowFilter): fetching every blob"
                    );
                }
            }
        }
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

pub(super) fn check_content_type(s: &Settings, head: &Head) -> io::Result<()> {
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
