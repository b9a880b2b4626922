//! Every failure of libgit2, libcurl or an HTTP answer becomes an [`Error`] here, in one
//! place, with the hints of [`crate::hints`]: what the user can do about it. libgit2 reports most
//! transport failures as a class and free text, so the text is read too; the HTTP transport
//! hands over typed failures (status, curl error) instead.

use std::path::Path;
use std::time::Duration;

use crate::error::Error;

use crate::hints::{HINT_CA, HINT_PROXY};

/// What a libgit2 failure is about: the repository (as printed), the destination, and what to
/// do when the server refuses the login.
pub struct Context<'a> {
    pub url: &'a str,
    pub dest: Option<&'a Path>,
    pub auth_hint: &'a str,
}

/// Sorts a libgit2 error into our classes. `url` must already be redacted. libgit2 reports most
/// transport failures with class and a free-text message only, so the message is read too.
pub fn libgit2(err: &git2::Error, at: &Context<'_>) -> Error {
    let url = at.url;
    use git2::{ErrorClass as C, ErrorCode as K};
    let msg = err.message().to_string();
    let lower = msg.to_ascii_lowercase();
    let net = |detail: String| Error::Network {
        url: url.to_string(),
        detail,
    };
    if err.code() == K::Certificate
        || err.class() == C::Ssl
        || lower.contains("certificate")
        || lower.contains("ssl error")
    {
        return Error::Trust {
            detail: format!("the TLS certificate of {url} is not trusted: {msg}"),
            hint: HINT_CA.into(),
        };
    }
    // The local disk, not the network: never retried, and the destination's fault.
    if [
        "no space left",
        "file too large",
        "read-only file system",
        "disk quota",
    ]
    .iter()
    .any(|m| lower.contains(m))
    {
        return Error::Destination {
            path: at.dest.map(Path::to_path_buf).unwrap_or_default(),
            detail: format!("cannot write: {msg}. Free space on the volume, or give it more"),
        };
    }
    if lower.contains("proxy") {
        return net(proxy_detail(&format!("the proxy failed: {msg}")));
    }
    if err.code() == K::Auth
        || lower.contains("401")
        || lower.contains("403")
        || lower.contains("authentication required")
        || lower.contains("permission denied")
    {
        return Error::Auth {
            url: url.to_string(),
            detail: msg,
            hint: at.auth_hint.to_string(),
        };
    }
    if lower.contains("404")
        || lower.contains("repository not found")
        || lower.contains("does not appear to be a git repository")
        || lower.contains("not exported")
        || lower.contains("could not find repository")
        || (err.class() == C::Os && lower.contains("no such file"))
        || lower.contains("failed to resolve path")
    {
        return Error::RepoNotFound {
            url: url.to_string(),
            detail: msg,
        };
    }
    // Truncated transfers first: a stream that ended early is the network's doing.
    if lower.contains("early eof") || lower.contains("timed out") {
        return net(msg);
    }
    if let Some(e) = remote_fault(err, url) {
        return e;
    }
    if lower.contains("unexpected http status code: 5")
        || lower.contains("429")
        || matches!(err.class(), C::Net | C::Http | C::Ssh | C::Os)
        || lower.contains("connection")
    {
        return net(msg);
    }
    Error::Internal(format!(
        "libgit2 ({:?}/{:?}): {msg}",
        err.class(),
        err.code()
    ))
}

/// What libgit2 says when the remote, not gitinit, is at fault: data that is no pack (exit 4)
/// or talk that is not git's protocol (exit 6). Neither is retried.
fn remote_fault(err: &git2::Error, url: &str) -> Option<Error> {
    use git2::ErrorClass as C;
    let msg = err.message().to_string();
    let lower = msg.to_ascii_lowercase();
    let broken = || {
        Some(Error::BrokenRepo {
            url: url.to_string(),
            detail: msg.clone(),
        })
    };
    // The indexer, the object database and zlib read what the server sent: a pack with a bad
    // signature, version, object count, delta or checksum, objects that do not inflate. (A
    // missing object is a question of revisions; a failed write of the pack is the disk's.)
    let reads_the_pack = matches!(err.class(), C::Indexer | C::Zlib)
        || (matches!(err.class(), C::Odb | C::Object) && err.code() != git2::ErrorCode::NotFound);
    let says_so = !matches!(err.class(), C::Os | C::Net | C::Invalid)
        && [
            "invalid pack",
            "pack signature",
            "pack version",
            "too many objects",
            "corrupt",
        ]
        .iter()
        .any(|m| lower.contains(m));
    if reads_the_pack || says_so {
        return broken();
    }
    let protocol = [
        "pkt-line",
        "packet",
        "pkt type",
        "hex digit in length",
        "invalid response",
        "unexpected pack file",
        "invalid symref",
        "object format",
        "oversized progress message",
        "could not read refs",
    ];
    if matches!(err.class(), C::Net | C::Invalid) && protocol.iter().any(|m| lower.contains(m)) {
        return Some(Error::BadServer {
            url: url.to_string(),
            detail: msg,
        });
    }
    None
}

/// An object whose contents do not hash to its id, seen when libgit2 re-hashes what it reads
/// (`--verify-signatures` turns that on): the source's object files were altered after the
/// fact, and what a signature covers would not be what is checked out (exit 4).
pub fn corrupt_object(err: &git2::Error, url: &str) -> Option<Error> {
    err.message()
        .contains("hash mismatch")
        .then(|| Error::BrokenRepo {
            url: url.to_string(),
            detail: format!("an object is not what its id says ({})", err.message()),
        })
}

/// What the remote itself said (`fatal: …` lines of its sideband) goes into the error line. A
/// server that says it cannot read its own repository has a broken repository (exit 4): another
/// attempt would get the same answer.
pub fn with_remote_message(e: Error, said: &[String]) -> Error {
    if said.is_empty() {
        return e;
    }
    let remote = said
        .iter()
        .map(|l| format!("remote: {l}"))
        .collect::<Vec<_>>()
        .join("; ");
    let broken = [
        "unable to read",
        "bad object",
        "corrupt",
        "missing blob",
        "missing tree",
        "missing commit",
        "loose object",
        "bad pack",
        "pack-objects died",
        "did not receive expected object",
    ];
    let says_broken = said.iter().any(|l| {
        let l = l.to_ascii_lowercase();
        broken.iter().any(|m| l.contains(m))
    });
    match e {
        Error::Network { url, .. } | Error::BadServer { url, .. } if says_broken => {
            Error::BrokenRepo {
                url,
                detail: remote,
            }
        }
        Error::Network { url, detail } => Error::Network {
            url,
            detail: format!("{detail} ({remote})"),
        },
        Error::BadServer { url, detail } => Error::BadServer {
            url,
            detail: format!("{detail} ({remote})"),
        },
        Error::BrokenRepo { url, detail } => Error::BrokenRepo {
            url,
            detail: format!("{detail} ({remote})"),
        },
        Error::Internal(detail) => Error::Internal(format!("{detail} ({remote})")),
        e => e,
    }
}

/// Our error for an HTTP status other than 200.
/// `retry_after`: the header's value, if any; `sent_auth`: credentials went with the request.
pub fn http_status(
    url: &str,
    auth_hint: &str,
    status: u32,
    retry_after: Option<&str>,
    sent_auth: bool,
) -> Error {
    let network = |detail: String| Error::Network {
        url: url.to_string(),
        detail,
    };
    let auth = |detail: &str| Error::Auth {
        url: url.to_string(),
        detail: detail.to_string(),
        hint: auth_hint.to_string(),
    };
    match status {
        401 if sent_auth => auth("the server rejected the credentials"),
        401 => auth("the server asks for credentials and none were given"),
        403 => auth("the server refused access (HTTP 403)"),
        404 | 410 => Error::RepoNotFound {
            url: url.to_string(),
            detail: format!("HTTP {status}"),
        },
        407 => network(proxy_detail("the proxy asks for credentials (HTTP 407)")),
        301..=308 => network(format!(
            "too many redirects (HTTP {status}), or a redirect of a request other than the first"
        )),
        408 | 429 | 500..=599 => Error::Unavailable {
            url: url.to_string(),
            status,
            retry_after: retry_after.and_then(super::http::parse_retry_after),
        },
        _ => network(format!("unexpected HTTP status {status}")),
    }
}

fn proxy_detail(what: &str) -> String {
    format!("{what} ({HINT_PROXY})")
}

/// Our error for a transfer libcurl could not complete. `status` is the answer already
/// received, if any; `via_proxy`: the request went through a proxy; `io_timeout`: how long the
/// transfer may stall before it is cut.
pub fn curl(
    url: &str,
    e: &curl::Error,
    status: Option<u32>,
    via_proxy: bool,
    io_timeout: Duration,
) -> Error {
    let network = |detail: String| Error::Network {
        url: url.to_string(),
        detail,
    };
    let what = e.extra_description().unwrap_or(e.description());
    if e.is_peer_failed_verification()
        || e.is_ssl_cacert()
        || e.is_ssl_certproblem()
        || e.is_ssl_cacert_badfile()
        || e.is_ssl_issuer_error()
    {
        return Error::Trust {
            detail: format!("the TLS certificate of {url} is not trusted: {what}"),
            hint: HINT_CA.into(),
        };
    }
    // CURLE_PROXY (97): the proxy refused the tunnel or answered something else.
    if e.is_couldnt_resolve_proxy()
        || (via_proxy && status.is_none() && (e.is_couldnt_connect() || e.code() == 97))
    {
        return network(proxy_detail(&format!("the proxy failed: {what}")));
    }
    if e.is_aborted_by_callback() {
        return network(format!(
            "no data for {} ({}): the server stopped answering",
            humantime::format_duration(io_timeout),
            crate::hints::IO_TIMEOUT
        ));
    }
    if status.is_some() {
        return network(format!("the connection broke while receiving: {what}"));
    }
    network(what.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ExitCode;

    #[test]
    fn what_a_hostile_remote_sends_is_its_fault_not_a_bug() {
        use git2::{ErrorClass as C, ErrorCode as K};
        let e = |class, msg: &str| {
            libgit2(
                &git2::Error::new(K::GenericError, class, msg),
                &Context {
                    url: "https://h/r",
                    dest: None,
                    auth_hint: "",
                },
            )
        };
        for (class, msg) in [
            (C::Indexer, "too many objects"),
            (C::Indexer, "wrong pack signature"),
            (C::Indexer, "packfile trailer mismatch"),
            (C::Indexer, "packfile is missing 3 objects"),
            (C::Odb, "invalid pack file - bad object header"),
            (C::Zlib, "error inflating zlib stream"),
        ] {
            let err = e(class, msg);
            assert!(matches!(err, Error::BrokenRepo { .. }), "{msg}: {err}");
            assert_eq!(err.exit_code(), ExitCode::RepoNotFound);
            assert!(!err.is_transient() && !err.to_string().contains("bug"));
        }
        for (class, msg) in [
            (C::Net, "invalid hex digit in length: 'zzzz'"),
            (C::Net, "bad packet length"),
            (C::Net, "invalid packet line"),
            (C::Net, "error parsing REF pkt-line"),
            (C::Net, "unexpected pkt type"),
            (C::Net, "remote sent invalid symref"),
            (C::Invalid, "unknown remote object format 'sha999'"),
        ] {
            let err = e(class, msg);
            assert!(matches!(err, Error::BadServer { .. }), "{msg}: {err}");
            assert_eq!(err.exit_code(), ExitCode::Network);
            assert!(!err.is_transient() && !err.to_string().contains("bug"));
        }
        // A transfer cut short stays a transient network failure; a pack the disk could not
        // take is not the remote's fault.
        for (class, msg) in [
            (C::Indexer, "early EOF"),
            (C::Net, "failed to send request"),
        ] {
            assert!(e(class, msg).is_transient(), "{msg}");
        }
        let err = e(
            C::Os,
            "cannot extend packfile '/d/.git/objects/pack/x.pack'",
        );
        assert!(!matches!(err, Error::BrokenRepo { .. }), "{err}");
    }
}
