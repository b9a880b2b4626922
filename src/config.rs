//! The run's final decisions, as plain data: what [`crate::resolve`] made of options, env vars,
//! the catalog and flags. Later stages never look at raw options or the environment again.

use std::path::PathBuf;
use std::time::Duration;

use crate::credentials::Credentials;
use crate::flags::Flags;
use crate::remote_url::RepoUrl;
use crate::revision::Revision;

/// The env var that carries HTTPS credentials unless `--credentials-env` names another.
pub const CREDENTIALS_ENV: &str = "POLYAXON_GIT_CREDENTIALS";
/// A git-credentials file (`https://user:pass@host` lines), matched by scheme, host and path.
pub const CREDENTIALS_STORE_ENV: &str = "POLYAXON_GIT_CREDENTIALS_STORE";

/// An SSH private key, normalised; `Debug` does not show it.
#[derive(Clone)]
pub struct SshKey {
    pub private: String,
    pub passphrase: Option<String>,
    /// Where it came from, for messages (`--ssh-key /secrets/id_ed25519`, `GITINIT_SSH_KEY`).
    pub source: String,
    pub encrypted: bool,
}

impl std::fmt::Debug for SshKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SshKey {{ source: {:?}, encrypted: {} }}",
            self.source, self.encrypted
        )
    }
}

/// Where SSH host keys are checked against.
#[derive(Debug, Clone)]
pub enum HostKeys {
    /// A known_hosts file the user gave (or found in POLYAXON_SSH_PATH).
    File(PathBuf, crate::ssh::KnownHosts),
    /// The published keys of github.com, gitlab.com and bitbucket.org, compiled in.
    Builtin,
    /// `--insecure-skip-host-key-check`.
    Skip,
}

#[derive(Debug, Clone)]
pub struct SshConfig {
    pub key: Option<SshKey>,
    pub host_keys: HostKeys,
}

/// The text of a git-credentials file; `Debug` does not show it.
#[derive(Clone)]
pub struct CredentialStore(pub String);

impl std::fmt::Debug for CredentialStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialStore(..)")
    }
}

/// SPEC §14: authenticate as a GitHub App installation. The job buys the installation token
/// (`github_app`) before the fetch; it becomes the credentials of the repository's host.
#[derive(Debug, Clone)]
pub struct GithubApp {
    /// The App's id (or client id): the JWT's `iss`.
    pub id: String,
    /// The installation; `None`: looked up from the repository's owner.
    pub installation: Option<u64>,
    /// `OWNER` and `REPO` of `https://HOST/OWNER/REPO(.git)`, for the look-up.
    pub repository: Option<(String, String)>,
    pub key: AppKey,
    /// GitHub's REST API, without a trailing `/` (`https://api.github.com`).
    pub api: String,
    /// The proxy the API's URL goes through.
    pub proxy: Option<String>,
}

/// A GitHub App's private key (PEM, RSA), normalised; `Debug` does not show it.
#[derive(Clone)]
pub struct AppKey {
    pub pem: String,
    /// Where it came from, for messages (`--github-app-private-key-file F`, the env var).
    pub source: String,
}

impl std::fmt::Debug for AppKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AppKey {{ source: {:?} }}", self.source)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportTarget {
    Stdout,
    File(PathBuf),
}

/// Where a repository is and how to reach it: all the git layer's transports need (a
/// submodule gets its own, derived from its superproject's).
#[derive(Debug, Clone)]
pub struct Remote {
    /// The repository, validated; prints without credentials.
    pub url: RepoUrl,
    /// HTTPS credentials (from the URL's user-info, or the environment).
    pub credentials: Option<Credentials>,
    /// SSH key and host-key trust (only for ssh URLs).
    pub ssh: Option<SshConfig>,
    /// The HTTP(S) proxy this URL goes through, from HTTPS_PROXY/HTTP_PROXY/NO_PROXY.
    pub proxy: Option<String>,
    /// The proxy variables themselves, for submodules on other hosts.
    pub proxy_env: crate::proxy::ProxyEnv,
    /// The `POLYAXON_GIT_CREDENTIALS_STORE` file, read once, for submodules on other hosts.
    pub credentials_store: Option<CredentialStore>,
    /// Extra CA bundle for HTTPS.
    pub ca_file: Option<PathBuf>,
    /// Verify TLS certificates (`-c http.sslVerify=false` turns it off).
    pub ssl_verify: bool,
    /// How long a connection may stay silent before it is cut (and retried).
    pub io_timeout: Duration,
}

/// What to fetch: the revision, how much history, which other refs.
#[derive(Debug, Clone)]
pub struct Want {
    /// What the revision means before asking the remote.
    pub revision: Revision,
    /// The revision as the user wrote it (for the report), if any.
    pub revision_text: Option<String>,
    /// Shallow depth actually used (None for full history, and for local sources, which
    /// libgit2 cannot fetch shallowly).
    pub depth: Option<u32>,
    /// `--no-single-branch`: every branch too.
    pub all_branches: bool,
    /// `--no-tags`.
    pub no_tags: bool,
    /// `--sparse`: the cone of the checkout (the top repository only).
    pub sparse: Option<crate::sparse::Cone>,
    /// `--filter`: a partial clone with this filter (the top repository only; never for a
    /// local source).
    pub filter: Option<String>,
}

/// The shared cache (SPEC §11).
#[derive(Debug, Clone)]
pub struct CacheConfig {
    pub dir: PathBuf,
    /// `--cache-max-size` in bytes.
    pub max_size: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Where the repository is and how to reach it.
    pub remote: Remote,
    /// What to fetch from it.
    pub want: Want,
    /// Where the working tree goes (`clone` only).
    pub dest: Option<PathBuf>,
    /// The git-style flags, resolved.
    pub flags: Flags,
    /// `--connection` name, as a label.
    pub connection: Option<String>,
    pub report: Option<ReportTarget>,
    /// `--results-dir`: Tekton's result files (`clone` only).
    pub results_dir: Option<PathBuf>,
    /// Whole-run limit.
    pub timeout: Option<Duration>,
    /// Retries after the first attempt for transient failures.
    pub retries: u32,
    /// Allow emptying a destination that holds something else.
    pub clean: bool,
    /// The home directory, which `--clean` never empties.
    pub home: Option<PathBuf>,
    /// Between two progress lines off a terminal (5 s; `GITINIT_PROGRESS_INTERVAL_MS`, a knob
    /// for tests).
    pub progress_interval: Duration,
    /// A live progress bar on a terminal: with text logs only.
    pub progress_bar: bool,
    /// Git LFS after the checkout.
    pub lfs: crate::lfs::Options,
    /// `--cache`: the directory shared by runs, and its size bound.
    pub cache: Option<CacheConfig>,
    /// `--verify-signatures FILE`: the keys a checked-out commit (or tag) must be signed by.
    pub verify_signatures: Option<crate::signature::AllowedKeys>,
    /// Warnings decided while resolving, logged once logging is up.
    pub warnings: Vec<String>,
    /// `--github-app-id`: the credentials are a GitHub App installation's token (SPEC §14).
    pub github_app: Option<GithubApp>,
}
