//! The LFS server: where it is (git-lfs's endpoint rules), the batch API (`POST
//! …/objects/batch`, operation `download`, transfer `basic`), and the downloads of the actions
//! it answers with. Credentials go only to the clone's own scheme, host and port; an action's
//! own headers are sent as given, to wherever its `href` points.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use curl::easy::{Easy, List};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::pointer::Pointer;
use crate::config::Config;
use crate::credentials::Credentials;
use crate::error::Error;
use crate::git::classify;
use crate::redact;
use crate::remote_url::{RepoUrl, Scheme};

/// git-lfs asks for at most this many objects per batch request.
const BATCH_SIZE: usize = 100;
/// A batch answer is JSON about at most [`BATCH_SIZE`] objects: anything larger is not one.
const MAX_ANSWER: usize = 16 << 20;
const MEDIA_TYPE: &str = "application/vnd.git-lfs+json";

/// Where the batch API is, and what may be sent there.
pub struct Endpoint {
    /// `…/info/lfs`, no trailing slash.
    pub url: String,
    /// The clone's credentials, when the endpoint has the clone URL's scheme, host and port.
    credentials: Option<Credentials>,
    /// The proxy chosen for the endpoint's URL.
    proxy: Option<String>,
    /// Headers the endpoint was given with (`git-lfs-authenticate`'s, for an SSH remote).
    header: HashMap<String, String>,
}

impl Endpoint {
    /// git-lfs's rules: `lfs.url` (or `remote.origin.lfsurl`) of the tree's `.lfsconfig`, else
    /// the repository's URL with `.git` (unless there) and `/info/lfs`; an SSH remote's HTTPS
    /// twin on the same host. `None` for a remote that has no HTTP twin (git://, local).
    pub fn find(cfg: &Config, lfsconfig: Option<&str>) -> crate::error::Result<Option<Endpoint>> {
        let configured = lfsconfig.and_then(lfs_url);
        let mut header = HashMap::new();
        let from_ssh = match (&configured, cfg.remote.url.scheme) {
            (None, Scheme::Ssh) => super::ssh::authenticate(cfg)?,
            _ => None,
        };
        let url = match (configured, from_ssh) {
            (Some(u), _) => u.trim_end_matches('/').to_string(),
            (None, Some(answer)) => {
                header = answer.header;
                answer.href.trim_end_matches('/').to_string()
            }
            (None, None) => match cfg.remote.url.scheme {
                Scheme::Https | Scheme::Http => {
                    let base = cfg.remote.url.to_string();
                    let base = base.trim_end_matches('/');
                    let dot_git = if base.ends_with(".git") { "" } else { ".git" };
                    format!("{base}{dot_git}/info/lfs")
                }
                Scheme::Ssh => {
                    let path = cfg
                        .remote
                        .url
                        .path
                        .trim_start_matches('/')
                        .trim_end_matches('/');
                    let dot_git = if path.ends_with(".git") { "" } else { ".git" };
                    format!(
                        "https://{}/{path}{dot_git}/info/lfs",
                        cfg.remote.url.host_str()
                    )
                }
                Scheme::Git | Scheme::File => return Ok(None),
            },
        };
        let parsed = url::Url::parse(&url).map_err(|_| {
            Error::invalid(format!(
                "the repository's .lfsconfig names the LFS server `{}`, which is not a URL",
                redact::url(&url)
            ))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Error::invalid(format!(
                "the LFS server `{}` is not http(s): gitinit downloads LFS objects over HTTP(S) only",
                redact::url(&url)
            )));
        }
        let same_origin = url::Url::parse(&cfg.remote.url.fetch_url())
            .is_ok_and(|clone| clone.origin() == parsed.origin());
        let as_repo = RepoUrl::parse(&url, Path::new("/"))?;
        let proxy = crate::proxy::choose(&as_repo, &cfg.remote.proxy_env)?;
        Ok(Some(Endpoint {
            url,
            credentials: if same_origin {
                cfg.remote.credentials.clone()
            } else {
                None
            },
            proxy,
            header,
        }))
    }
}

/// `lfs.url`, else `remote.origin.lfsurl`, of a git-config text (`.lfsconfig`).
pub fn lfs_url(text: &str) -> Option<String> {
    let mut section = String::new();
    let (mut lfs, mut remote) = (None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let name = rest.split(']').next().unwrap_or_default();
            let (sec, sub) = match name.split_once(char::is_whitespace) {
                Some((s, sub)) => (
                    s.to_ascii_lowercase(),
                    sub.trim().trim_matches('"').to_string(),
                ),
                None => (name.to_ascii_lowercase(), String::new()),
            };
            section = if sub.is_empty() {
                sec
            } else {
                format!("{sec}.{sub}")
            };
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim().to_ascii_lowercase();
        let value = value.trim().trim_matches('"').to_string();
        match (section.as_str(), key.as_str()) {
            ("lfs", "url") => lfs = Some(value),
            ("remote.origin", "lfsurl") => remote = Some(value),
            _ => {}
        }
    }
    lfs.or(remote).filter(|u| !u.is_empty())
}

/// What the HTTP requests of the stage share.
pub struct Client<'a> {
    pub endpoint: &'a Endpoint,
    cfg: &'a Config,
    /// The endpoint asked for credentials once: send them with every later batch.
    send_auth: std::sync::atomic::AtomicBool,
}

/// Where one object comes from.
#[derive(Debug, Clone)]
pub struct Download {
    pub href: String,
    pub header: HashMap<String, String>,
}

/// The batch API's answer for one object.
pub enum Answer {
    Download(Download),
    /// The server says it does not have it (404 or 410).
    Missing,
}

#[derive(Serialize)]
struct Request<'a> {
    operation: &'static str,
    transfers: [&'static str; 1],
    objects: Vec<ObjectId<'a>>,
}

#[derive(Serialize)]
struct ObjectId<'a> {
    oid: &'a str,
    size: u64,
}

#[derive(Deserialize)]
struct Response {
    #[serde(default)]
    objects: Vec<ObjectAnswer>,
}

#[derive(Deserialize)]
struct ObjectAnswer {
    oid: String,
    #[serde(default)]
    actions: Option<Actions>,
    #[serde(default)]
    error: Option<ObjectError>,
}

#[derive(Deserialize)]
struct Actions {
    download: Option<Action>,
}

#[derive(Deserialize)]
struct Action {
    href: String,
    #[serde(default)]
    header: HashMap<String, String>,
}

#[derive(Deserialize)]
struct ObjectError {
    code: u32,
    #[serde(default)]
    message: String,
}

/// The answer to a request: status, `Retry-After`, and the body (bounded).
struct Reply {
    status: u32,
    retry_after: Option<String>,
    body: Vec<u8>,
}

impl<'a> Client<'a> {
    pub fn new(endpoint: &'a Endpoint, cfg: &'a Config) -> Client<'a> {
        Client {
            endpoint,
            cfg,
            send_auth: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn shown(&self) -> String {
        redact::url(&self.endpoint.url)
    }

    fn handle(&self, proxy: Option<&str>) -> Result<Easy, Error> {
        let mut e = crate::git::http::handle(
            proxy,
            self.cfg.remote.ssl_verify,
            self.cfg.remote.ca_file.as_deref(),
            self.cfg.remote.io_timeout,
        )
        .map_err(|e| self.network(format!("libcurl: {e}")))?;
        // A transfer that moves nothing for the I/O timeout is cut and retried.
        let io = self.cfg.remote.io_timeout.max(Duration::from_secs(1));
        let setup = |e: &mut Easy| -> Result<(), curl::Error> {
            e.progress(false)?;
            e.low_speed_limit(1)?;
            e.low_speed_time(io)
        };
        setup(&mut e).map_err(|e| self.network(format!("libcurl: {e}")))?;
        Ok(e)
    }

    fn network(&self, detail: String) -> Error {
        Error::Network {
            url: self.shown(),
            detail,
        }
    }

    /// Asks where the objects are; one answer per object, in the order given.
    pub fn batch(&self, objects: &[&Pointer]) -> Result<HashMap<String, Answer>, Error> {
        let mut answers = HashMap::new();
        for chunk in objects.chunks(BATCH_SIZE) {
            answers.extend(self.batch_chunk(chunk)?);
        }
        Ok(answers)
    }

    fn batch_chunk(&self, objects: &[&Pointer]) -> Result<HashMap<String, Answer>, Error> {
        let url = format!("{}/objects/batch", self.endpoint.url);
        let body = serde_json::to_vec(&Request {
            operation: "download",
            transfers: ["basic"],
            objects: objects
                .iter()
                .map(|p| ObjectId {
                    oid: &p.oid,
                    size: p.size,
                })
                .collect(),
        })
        .map_err(|e| Error::Internal(format!("encoding an LFS batch request: {e}")))?;
        use std::sync::atomic::Ordering::Relaxed;
        let mut reply = self.post(&url, &body, self.send_auth.load(Relaxed))?;
        if reply.status == 401
            && self.endpoint.credentials.is_some()
            && !self.send_auth.load(Relaxed)
        {
            self.send_auth.store(true, Relaxed);
            reply = self.post(&url, &body, true)?;
        }
        match reply.status {
            200 => {}
            // giftless answers a batch in which no object exists with a whole-request 404.
            404 | 410 => {
                return Ok(objects
                    .iter()
                    .map(|p| (p.oid.clone(), Answer::Missing))
                    .collect())
            }
            status => {
                return Err(classify::http_status(
                    &self.shown(),
                    &crate::hints::auth(&self.cfg.remote),
                    status,
                    reply.retry_after.as_deref(),
                    self.send_auth.load(Relaxed),
                ))
            }
        }
        let response: Response =
            serde_json::from_slice(&reply.body).map_err(|e| Error::BadServer {
                url: self.shown(),
                detail: format!("its LFS batch answer is not the JSON of the batch API: {e}"),
            })?;
        let mut answers = HashMap::new();
        for o in response.objects {
            let answer = match (o.actions.and_then(|a| a.download), o.error) {
                (Some(a), _) => Answer::Download(Download {
                    href: a.href,
                    header: a.header,
                }),
                (None, Some(e)) if e.code == 404 || e.code == 410 => Answer::Missing,
                (None, Some(e)) => {
                    return Err(Error::BadServer {
                        url: self.shown(),
                        detail: format!(
                            "its LFS server refused object {} ({}: {})",
                            o.oid,
                            e.code,
                            redact::text(&e.message)
                        ),
                    })
                }
                // No action and no error: the server says the client already has it, which
                // for a download means it has nothing to give.
                (None, None) => Answer::Missing,
            };
            answers.insert(o.oid, answer);
        }
        Ok(answers)
    }

    fn post(&self, url: &str, body: &[u8], auth: bool) -> Result<Reply, Error> {
        let mut e = self.handle(self.endpoint.proxy.as_deref())?;
        let shown = self.shown();
        let curl_err = |err: curl::Error| {
            classify::curl(
                &shown,
                &err,
                None,
                self.endpoint.proxy.is_some(),
                self.cfg.remote.io_timeout,
            )
        };
        let setup = |e: &mut Easy| -> Result<(), curl::Error> {
            e.url(url)?;
            e.post(true)?;
            e.post_fields_copy(body)?;
            let mut headers = List::new();
            headers.append(&format!("Accept: {MEDIA_TYPE}"))?;
            headers.append(&format!("Content-Type: {MEDIA_TYPE}"))?;
            headers.append("Expect:")?;
            for (k, v) in &self.endpoint.header {
                headers.append(&format!("{k}: {v}"))?;
            }
            e.http_headers(headers)?;
            if let (true, Some(c)) = (auth, &self.endpoint.credentials) {
                e.username(&c.username)?;
                e.password(&c.password)?;
            }
            Ok(())
        };
        setup(&mut e).map_err(curl_err)?;
        let mut reply = Reply {
            status: 0,
            retry_after: None,
            body: vec![],
        };
        let too_big = std::cell::Cell::new(false);
        {
            let mut t = e.transfer();
            t.header_function(|line| {
                if let Ok(line) = std::str::from_utf8(line) {
                    if let Some((k, v)) = line.split_once(':') {
                        if k.trim().eq_ignore_ascii_case("retry-after") {
                            reply.retry_after = Some(v.trim().to_string());
                        }
                    }
                }
                true
            })
            .map_err(curl_err)?;
            t.write_function(|data| {
                if reply.body.len() + data.len() > MAX_ANSWER {
                    too_big.set(true);
                    return Ok(0);
                }
                reply.body.extend_from_slice(data);
                Ok(data.len())
            })
            .map_err(curl_err)?;
            let r = t.perform();
            if too_big.get() {
                return Err(Error::BadServer {
                    url: shown.clone(),
                    detail: format!("its LFS batch answer exceeds {} MiB", MAX_ANSWER >> 20),
                });
            }
            r.map_err(curl_err)?;
        }
        reply.status = e.response_code().map_err(curl_err)?;
        Ok(reply)
    }

    /// Downloads one object into `to` (created), verifying its size and SHA-256 as it arrives;
    /// `progress` gets each chunk's length.
    pub fn download(
        &self,
        pointer: &Pointer,
        from: &Download,
        to: &Path,
        progress: &dyn Fn(u64),
    ) -> Result<(), Error> {
        let target = url::Url::parse(&from.href).map_err(|_| Error::BadServer {
            url: self.shown(),
            detail: format!(
                "its LFS server gave a download link that is not a URL for {}",
                pointer.oid
            ),
        })?;
        if !matches!(target.scheme(), "http" | "https") {
            return Err(Error::BadServer {
                url: self.shown(),
                detail: format!(
                    "its LFS server sent object {} to a {}:// link; only http(s) is followed",
                    pointer.oid,
                    target.scheme()
                ),
            });
        }
        let shown_href = redact::url(target.as_str());
        let proxy = RepoUrl::parse(target.as_str(), Path::new("/"))
            .ok()
            .map(|u| crate::proxy::choose(&u, &self.cfg.remote.proxy_env))
            .transpose()?
            .flatten();
        let mut e = self.handle(proxy.as_deref())?;
        let curl_err = |err: curl::Error, status: Option<u32>| {
            classify::curl(
                &shown_href,
                &err,
                status,
                proxy.is_some(),
                self.cfg.remote.io_timeout,
            )
        };
        let setup = |e: &mut Easy| -> Result<(), curl::Error> {
            e.url(target.as_str())?;
            e.get(true)?;
            let mut headers = List::new();
            for (k, v) in &from.header {
                headers.append(&format!("{k}: {v}"))?;
            }
            e.http_headers(headers)?;
            Ok(())
        };
        setup(&mut e).map_err(|err| curl_err(err, None))?;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(to)
            .map_err(|err| Error::destination(to, format!("cannot write an LFS object: {err}")))?;
        let file = std::cell::RefCell::new(file);
        let hasher = std::cell::RefCell::new(Sha256::new());
        let written = std::cell::Cell::new(0u64);
        let write_error = std::cell::RefCell::new(None::<std::io::Error>);
        let status_seen = std::cell::Cell::new(0u32);
        {
            let mut t = e.transfer();
            t.header_function(|line| {
                if line.starts_with(b"HTTP/") {
                    status_seen.set(
                        std::str::from_utf8(line)
                            .ok()
                            .and_then(|l| l.split_whitespace().nth(1))
                            .and_then(|s| s.parse().ok())
                            .unwrap_or(0),
                    );
                }
                true
            })
            .map_err(|err| curl_err(err, None))?;
            t.write_function(|data| {
                if status_seen.get() != 200 {
                    // An error page: read and dropped, the status says what happened.
                    return Ok(data.len());
                }
                let n = data.len() as u64;
                if written.get() + n > pointer.size {
                    written.set(written.get() + n);
                    return Ok(0);
                }
                if let Err(err) = file.borrow_mut().write_all(data) {
                    *write_error.borrow_mut() = Some(err);
                    return Ok(0);
                }
                hasher.borrow_mut().update(data);
                written.set(written.get() + n);
                progress(n);
                Ok(data.len())
            })
            .map_err(|err| curl_err(err, None))?;
            let r = t.perform();
            if let Some(err) = write_error.borrow_mut().take() {
                return Err(Error::destination(
                    to,
                    format!("cannot write an LFS object: {err}"),
                ));
            }
            if written.get() > pointer.size {
                return Err(self.mismatch(pointer, "more bytes than its size"));
            }
            r.map_err(|err| curl_err(err, Some(status_seen.get())))?;
        }
        let written = written.get();
        let hasher = hasher.into_inner();
        let file = file.into_inner();
        let status = e.response_code().map_err(|err| curl_err(err, None))?;
        match status {
            200 => {}
            404 | 410 => {
                return Err(Error::LfsObjectMissing {
                    url: self.shown(),
                    path: String::new(),
                    oid: pointer.oid.clone(),
                })
            }
            status => {
                return Err(classify::http_status(
                    &shown_href,
                    "The LFS server's download link was refused: ask the repository's owner to check the LFS storage's access",
                    status,
                    None,
                    false,
                ))
            }
        }
        if written != pointer.size {
            return Err(self.mismatch(pointer, &format!("{written} of its {} bytes", pointer.size)));
        }
        let digest = hex(&hasher.finalize());
        if digest != pointer.oid {
            return Err(self.mismatch(pointer, &format!("SHA-256 {digest}")));
        }
        file.sync_all()
            .map_err(|err| Error::destination(to, format!("cannot write an LFS object: {err}")))?;
        Ok(())
    }

    /// A download that does not match its pointer: transient (retried), as a transfer that
    /// went wrong on the way.
    fn mismatch(&self, pointer: &Pointer, what: &str) -> Error {
        self.network(format!(
            "LFS object {} arrived with {what}, not what its pointer says",
            pointer.oid
        ))
    }
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lfsconfig_names_the_endpoint_as_git_config_does() {
        assert_eq!(
            lfs_url("[lfs]\n\turl = https://lfs.example.com/org/repo\n").as_deref(),
            Some("https://lfs.example.com/org/repo")
        );
        assert_eq!(
            lfs_url("[remote \"origin\"]\n  lfsurl = \"https://x/y\"\n").as_deref(),
            Some("https://x/y")
        );
        assert_eq!(
            lfs_url("[remote \"origin\"]\nlfsurl = https://r\n[LFS]\nURL = https://l\n").as_deref(),
            Some("https://l")
        );
        assert_eq!(lfs_url("# nothing\n[core]\nurl = no\n"), None);
    }
}
