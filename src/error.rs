//! One error type for the library, and the one place where an error becomes an exit code
//! (SPEC §3). Every message says what happened and what to do; none may carry a secret, so
//! variants hold redacted URLs only.

use std::path::PathBuf;

/// Exit codes of SPEC §3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitCode {
    Success = 0,
    Internal = 1,
    InvalidInput = 2,
    Auth = 3,
    RepoNotFound = 4,
    RevisionNotFound = 5,
    Network = 6,
    Destination = 7,
    Trust = 8,
    Signature = 9,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Exit: 2. Options, flags, URL or catalog that cannot be used as given.
    #[error("{message}")]
    InvalidInput { message: String },

    /// Exit: 3. The server refused the credentials, or there were none for a private repository.
    #[error("authentication to {url} failed: {detail}. {hint}")]
    Auth {
        url: String,
        detail: String,
        hint: String,
    },

    /// Exit: 4.
    #[error("repository not found: {url} ({detail}). Check the URL; if the repository is private, check that the credentials can see it")]
    RepoNotFound { url: String, detail: String },

    /// Exit: 4. The repository holds what gitinit refuses to write: a path that could leave the
    /// destination or overwrite `.git`, a symlinked `.gitmodules`, a local submodule of a
    /// remote superproject, a symlink in a local source's objects, an unreadable tree.
    #[error("refusing to check out {url}: {detail}. A repository like this is damaged or made to write outside the destination: use another revision, or ask its owner to fix it")]
    UnsafeRepository { url: String, detail: String },

    /// Exit: 4. What the server sent cannot be a repository's data (a pack that is not one,
    /// or claims more objects than any repository has, or does not match its checksum): the
    /// remote's fault, not a bug, and not retried (it would send the same).
    #[error("the repository {url} is broken: {detail}. The server sent data git cannot use: ask the repository's owner to check it (`git fsck` on the server)")]
    BrokenRepo { url: String, detail: String },

    /// Exit: 6. The server answered, but not as a git server does (garbage where pkt-lines
    /// belong, an unknown object format, an answer without bound). Not retried: it would
    /// answer the same.
    #[error("the server of {url} does not answer as a git server: {detail}. Check that this is the repository's clone URL; if it is, the server (or a proxy in between) is misbehaving: ask its admin")]
    BadServer { url: String, detail: String },

    /// Exit: 4. The LFS server does not have an object the checkout needs.
    #[error("the LFS server of {url} does not have the object {oid} of `{path}`. Push it (`git lfs push --all origin`), leave the path out with --lfs-exclude, or keep the pointers with --lfs off")]
    LfsObjectMissing {
        url: String,
        path: String,
        oid: String,
    },

    /// Exit: 5.
    #[error("revision `{revision}` not found in {url}{}", suggest(.suggestions))]
    RevisionNotFound {
        revision: String,
        url: String,
        suggestions: Vec<String>,
    },

    /// Exit: 5.
    #[error(
        "short SHA `{prefix}` is ambiguous in {url}: give more hex digits or the full 40-digit SHA"
    )]
    AmbiguousRevision { prefix: String, url: String },

    /// Exit: 5.
    #[error("the repository {url} has no commits yet: push a commit first, or check the URL")]
    EmptyRepository { url: String },

    /// Exit: 6. Transient failures that remained after the retries.
    #[error("network failure talking to {url}: {detail}. Check that the host is reachable from here (proxy, DNS, firewall) and try again")]
    Network { url: String, detail: String },

    /// Exit: 6. The server answered 429, 408 or 5xx: busy, rate-limiting or failing for now.
    #[error("the server of {url} answered HTTP {status} ({}){}. It is busy or limiting requests: try again later", status_text(*.status), retry_text(.retry_after))]
    Unavailable {
        url: String,
        status: u32,
        retry_after: Option<std::time::Duration>,
    },

    /// Exit: 7.
    #[error("destination {}: {detail}", .path.display())]
    Destination { path: PathBuf, detail: String },

    /// Exit: 8.
    #[error("{detail}. {hint}")]
    Trust { detail: String, hint: String },

    /// Exit: 9. `--verify-signatures`: the commit (or the signed tag) is unsigned, its signature
    /// does not verify, or its key is not allowed; `key` is the fingerprint, or `unsigned`.
    #[error("signature not trusted: commit {commit} (key: {key}): {detail}")]
    Signature {
        commit: String,
        key: String,
        detail: String,
    },

    /// Exit: that of the failure inside the submodule.
    #[error("submodule `{path}`: {source}")]
    Submodule { path: String, source: Box<Error> },

    /// Exit: 1. A bug, or a libgit2 failure we could not classify.
    #[error("internal error: {0}. This is a bug in gitinit: please report it with the log above")]
    Internal(String),
}

fn status_text(status: u32) -> &'static str {
    match status {
        408 => "request timeout",
        429 => "too many requests",
        500 => "internal server error",
        502 => "bad gateway",
        503 => "service unavailable",
        504 => "gateway timeout",
        _ => "server error",
    }
}

fn retry_text(after: &Option<std::time::Duration>) -> String {
    match after {
        Some(d) => format!(", asking to retry after {}s", d.as_secs()),
        None => String::new(),
    }
}

fn suggest(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        ". Check the spelling, or push it first".to_string()
    } else {
        format!(". Did you mean: {}?", suggestions.join(", "))
    }
}

impl Error {
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidInput {
            message: message.into(),
        }
    }

    pub fn destination(path: impl Into<PathBuf>, detail: impl Into<String>) -> Self {
        Error::Destination {
            path: path.into(),
            detail: detail.into(),
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::InvalidInput { .. } => ExitCode::InvalidInput,
            Error::Auth { .. } => ExitCode::Auth,
            Error::RepoNotFound { .. }
            | Error::UnsafeRepository { .. }
            | Error::BrokenRepo { .. }
            | Error::LfsObjectMissing { .. } => ExitCode::RepoNotFound,
            Error::RevisionNotFound { .. }
            | Error::AmbiguousRevision { .. }
            | Error::EmptyRepository { .. } => ExitCode::RevisionNotFound,
            Error::Network { .. } | Error::Unavailable { .. } | Error::BadServer { .. } => {
                ExitCode::Network
            }
            Error::Destination { .. } => ExitCode::Destination,
            Error::Trust { .. } => ExitCode::Trust,
            Error::Signature { .. } => ExitCode::Signature,
            Error::Internal(_) => ExitCode::Internal,
            Error::Submodule { source, .. } => source.exit_code(),
        }
    }

    /// Whether another attempt could succeed (SPEC §9: only transient network failures).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Submodule { source, .. } => source.is_transient(),
            // `BadServer` and `BrokenRepo` are not: the server would answer the same.
            e => matches!(e, Error::Network { .. } | Error::Unavailable { .. }),
        }
    }

    /// How long the server asked us to wait before the next attempt (`Retry-After`).
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Error::Submodule { source, .. } => source.retry_after(),
            Error::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_class_uses_the_reserved_success_code() {
        let all = [
            Error::invalid("x"),
            Error::Internal("x".into()),
            Error::destination("/x", "y"),
        ];
        for e in all {
            assert_ne!(e.exit_code(), ExitCode::Success);
        }
    }
}
