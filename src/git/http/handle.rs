//! The curl handle: proxy, trust, timeouts and identity that every request of a session shares.

use super::*;

/// A handle with what every request of the session shares: proxy, trust, timeouts, identity.
pub(super) fn new_handle(s: &Settings) -> Result<Easy, curl::Error> {
    handle(
        s.proxy.as_deref(),
        s.ssl_verify,
        s.ca_file.as_deref(),
        s.io_timeout,
    )
}

/// A handle set up as the git transport's, for another HTTP(S) client of the run (LFS):
/// `proxy` as decided for its URL, trust (`ssl_verify`, the system roots plus `ca_file`), the
/// connect timeout, no redirects followed on its own.
pub fn handle(
    proxy: Option<&str>,
    ssl_verify: bool,
    ca_file: Option<&std::path::Path>,
    io_timeout: Duration,
) -> Result<Easy, curl::Error> {
    let mut e = Easy::new();
    e.useragent(concat!("git/2.0 (gitinit ", env!("CARGO_PKG_VERSION"), ")"))?;
    e.follow_location(false)?;
    e.accept_encoding("")?;
    // A connection that delivers nothing for the I/O timeout is cut by the progress callback of
    // `transfer` and the attempt retried: a stalled server must not hang the pod, while a slow
    // but moving transfer goes on.
    e.progress(true)?;
    e.connect_timeout(io_timeout.min(Duration::from_secs(30)))?;
    e.buffer_size(64 * 1024)?;
    e.tcp_nodelay(true)?;
    match proxy {
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
    e.ssl_verify_peer(ssl_verify)?;
    e.ssl_verify_host(ssl_verify)?;
    let system = system_roots();
    match (ca_file, &system.0) {
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
pub(super) fn system_roots() -> &'static (Option<std::path::PathBuf>, Option<std::path::PathBuf>) {
    static ROOTS: OnceLock<(Option<std::path::PathBuf>, Option<std::path::PathBuf>)> =
        OnceLock::new();
    ROOTS.get_or_init(|| {
        let p = openssl_probe::probe();
        (p.cert_file, p.cert_dir)
    })
}

/// `http://user:pass@proxy:3128` → the URL without user-info, and the decoded credentials.
pub(super) fn split_proxy(p: &str) -> (String, Option<(String, String)>) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_credentials_leave_the_url() {
        let (url, creds) = split_proxy("http://us%40er:p%3Ass@proxy:3128");
        assert_eq!(url, "http://proxy:3128");
        assert_eq!(creds, Some(("us@er".into(), "p:ss".into())));
        let (_, creds) = split_proxy("http://u+1:p+a%2Bss%25@proxy:3128");
        assert_eq!(creds, Some(("u+1".into(), "p+a+ss%".into())));
        assert_eq!(split_proxy("http://proxy:3128/").1, None);
    }
}
