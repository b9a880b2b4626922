//! Options, env vars and flags resolved into one immutable [`Config`] of final decisions.
//! Later stages never look at raw options again.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::{CloneArgs, Command, ConnArgs};
use crate::credentials::Credentials;
use crate::error::{Error, Result};
use crate::flags::{self, Flags};
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportTarget {
    Stdout,
    File(PathBuf),
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The repository, validated; prints without credentials.
    pub url: RepoUrl,
    /// The revision as the user wrote it (for the report), if any.
    pub revision_text: Option<String>,
    /// What the revision means before asking the remote.
    pub revision: Revision,
    /// Where the working tree goes (`clone` only).
    pub dest: Option<PathBuf>,
    /// The git-style flags, resolved.
    pub flags: Flags,
    /// Shallow depth actually used (None for full history, and for local sources, which
    /// libgit2 cannot fetch shallowly).
    pub depth: Option<u32>,
    /// `--connection` name, as a label.
    pub connection: Option<String>,
    pub report: Option<ReportTarget>,
    /// HTTPS credentials (from the URL's user-info, or the environment).
    pub credentials: Option<Credentials>,
    /// Extra CA bundle for HTTPS.
    pub ca_file: Option<PathBuf>,
    /// Whole-run limit.
    pub timeout: Option<Duration>,
    /// How long a connection may stay silent before it is cut (and retried).
    pub io_timeout: Duration,
    /// Retries after the first attempt for transient failures.
    pub retries: u32,
    /// Allow emptying a destination that holds something else.
    pub clean: bool,
    /// SSH key and host-key trust (only for ssh URLs).
    pub ssh: Option<SshConfig>,
    /// The HTTP(S) proxy this URL goes through, from HTTPS_PROXY/HTTP_PROXY/NO_PROXY.
    pub proxy: Option<String>,
    /// The proxy variables themselves, for submodules on other hosts.
    pub proxy_env: crate::proxy::ProxyEnv,
    /// The `POLYAXON_GIT_CREDENTIALS_STORE` file, read once, for submodules on other hosts.
    pub credentials_store: Option<CredentialStore>,
    /// The home directory, which `--clean` never empties.
    pub home: Option<PathBuf>,
    /// Warnings decided while resolving, logged once logging is up.
    pub warnings: Vec<String>,
}

/// Reads env vars through a function so tests can resolve without touching the process env.
pub fn resolve(
    command: &Command,
    cwd: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config> {
    let (conn, clone): (&ConnArgs, Option<&CloneArgs>) = (command.conn(), command.clone_args());
    // Precedence, lowest first: the catalog's schema, then env vars and options (clap has
    // already merged those two, options winning).
    let from_catalog = match &conn.connections {
        Some(path) => {
            let catalog = crate::catalog::Catalog::load(&cwd.join(path))?;
            Some(catalog.select(conn.connection.as_deref())?.clone())
        }
        None => None,
    };
    let url_text = conn
        .url
        .clone()
        .or_else(|| from_catalog.as_ref().map(|c| c.url.clone()))
        .ok_or_else(|| {
            Error::invalid(
                "no repository given: pass --url (or GITINIT_URL), e.g. --url https://github.com/org/repo, or a catalog with --connections FILE --connection NAME",
            )
        })?;
    let url = RepoUrl::parse(&url_text, cwd)?;
    if url.is_local() && !Path::new(&url.path).exists() {
        return Err(Error::RepoNotFound {
            url: url.to_string(),
            detail: "no such path".into(),
        });
    }
    let flag_values = if conn.flags.is_empty() {
        from_catalog
            .as_ref()
            .map(|c| c.flags.clone())
            .unwrap_or_default()
    } else {
        conn.flags.clone()
    };
    let revision_option = conn
        .revision
        .clone()
        .or_else(|| from_catalog.as_ref().and_then(|c| c.revision.clone()));
    let connection = conn
        .connection
        .clone()
        .or_else(|| from_catalog.as_ref().map(|c| c.name.clone()));
    let flags = flags::parse(&flag_values)?;
    let mut warnings = flags.warnings.clone();

    // SPEC §9: --revision beats -b/--branch in the flags.
    let revision_text = revision_option
        .filter(|r| !r.trim().is_empty())
        .or_else(|| flags.branch.clone());
    let revision = Revision::parse(revision_text.as_deref())?;

    let depth = match flags.depth {
        Some(d) if url.is_local() => {
            warnings.push(format!(
                "--depth {d} is ignored for a local repository (libgit2 cannot fetch shallowly from a path or file:// URL); fetching full history"
            ));
            None
        }
        d => d,
    };

    let credentials = resolve_credentials(conn, &url, env)?;
    let proxy_env = crate::proxy::ProxyEnv::read(env);
    let proxy = crate::proxy::choose(&url, &proxy_env)?;
    let credentials_store = env(CREDENTIALS_STORE_ENV)
        .filter(|p| !p.trim().is_empty())
        .and_then(|p| std::fs::read_to_string(p.trim()).ok())
        .map(CredentialStore);
    let ssh = match url.scheme {
        crate::remote_url::Scheme::Ssh => Some(resolve_ssh(conn, cwd, env, &mut warnings)?),
        _ => None,
    };

    if !flags.ssl_verify {
        warnings.push(
            "insecure: TLS certificate verification is disabled by -c http.sslVerify=false; anyone on the network path can impersonate the server".into(),
        );
    }

    let timeout = match conn
        .timeout
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        None => None,
        Some(t) => Some(parse_duration(t)?),
    };

    let dest = match clone {
        None => None,
        Some(c) => {
            let d = c.dest.clone().ok_or_else(|| {
                Error::invalid("no destination given: pass --dest DIR (or GITINIT_DEST)")
            })?;
            Some(if d.is_absolute() { d } else { cwd.join(d) })
        }
    };

    let report = conn.report.as_deref().map(|r| match r {
        "-" => ReportTarget::Stdout,
        path => ReportTarget::File(cwd.join(path)),
    });

    let ca_file = conn.ca_file.as_ref().map(|p| cwd.join(p));
    if let Some(ca) = &ca_file {
        let pem = std::fs::read(ca).map_err(|e| {
            Error::invalid(format!(
                "--ca-file {}: {e} (give a PEM bundle of the CA that signed the server's certificate)",
                ca.display()
            ))
        })?;
        if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
            return Err(Error::invalid(format!(
                "--ca-file {}: holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                ca.display()
            )));
        }
    }

    Ok(Config {
        url,
        revision_text,
        revision,
        dest,
        depth,
        connection,
        report,
        credentials,
        ca_file,
        timeout,
        io_timeout: match env("GITINIT_IO_TIMEOUT").filter(|v| !v.trim().is_empty()) {
            Some(v) => parse_duration(v.trim())?,
            None => Duration::from_secs(60),
        },
        retries: conn.retries,
        clean: clone.is_some_and(|c| c.clean),
        proxy,
        proxy_env,
        credentials_store,
        home: env("HOME").filter(|h| !h.is_empty()).map(PathBuf::from),
        ssh,
        warnings,
        flags,
    })
}

fn resolve_credentials(
    conn: &ConnArgs,
    url: &RepoUrl,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Credentials>> {
    if url.credentials.is_some() {
        return Ok(url.credentials.clone());
    }
    let var = match &conn.credentials_env {
        Some(name) => {
            let name = name.trim();
            if env(name).is_none() {
                return Err(Error::invalid(format!(
                    "--credentials-env names `{name}`, but that env var is not set"
                )));
            }
            name.to_string()
        }
        None => CREDENTIALS_ENV.to_string(),
    };
    if let Some(c) = env(&var).and_then(|v| Credentials::parse(&v, url.host_str())) {
        return Ok(Some(c));
    }
    let Some(store) = env(CREDENTIALS_STORE_ENV).filter(|p| !p.trim().is_empty()) else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(store.trim()).map_err(|e| {
        Error::invalid(format!(
            "{CREDENTIALS_STORE_ENV}={}: cannot read the credentials file: {e}",
            store.trim()
        ))
    })?;
    let scheme = match url.scheme {
        crate::remote_url::Scheme::Https => "https",
        crate::remote_url::Scheme::Http => "http",
        _ => return Ok(None),
    };
    Ok(Credentials::from_store(
        &text,
        scheme,
        url.host_str(),
        url.port,
        &url.path,
    ))
}

fn resolve_ssh(
    conn: &ConnArgs,
    cwd: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<String>,
) -> Result<SshConfig> {
    let auth = |detail: String| Error::Auth {
        url: "the SSH key".into(),
        detail,
        hint: "Give the private key with --ssh-key FILE, GITINIT_SSH_KEY or POLYAXON_SSH_PATH"
            .into(),
    };
    let read = |path: &Path, what: &str| {
        std::fs::read_to_string(path)
            .map_err(|e| auth(format!("cannot read {what} {}: {e}", path.display())))
    };
    let ssh_path = env("POLYAXON_SSH_PATH")
        .filter(|p| !p.trim().is_empty())
        .map(|p| cwd.join(p.trim()));
    let raw: Option<(String, String)> = if let Some(file) = &conn.ssh_key {
        let file = cwd.join(file);
        Some((
            read(&file, "the SSH key")?,
            format!("--ssh-key {}", file.display()),
        ))
    } else if let Some(text) = env("GITINIT_SSH_KEY").filter(|t| !t.trim().is_empty()) {
        Some((text, "GITINIT_SSH_KEY".to_string()))
    } else if let Some(dir) = &ssh_path {
        let named = env("POLYAXON_SSH_PRIVATE_KEY").filter(|n| !n.trim().is_empty());
        let candidates: Vec<String> = match named {
            Some(n) => vec![n.trim().to_string()],
            None => ["id_ed25519", "id_ecdsa", "id_rsa"]
                .map(String::from)
                .to_vec(),
        };
        let found = candidates.iter().map(|n| dir.join(n)).find(|p| p.is_file());
        match found {
            Some(p) => Some((
                read(&p, "the SSH key")?,
                format!("POLYAXON_SSH_PATH {}", p.display()),
            )),
            None => {
                return Err(auth(format!(
                    "POLYAXON_SSH_PATH={} holds none of {}",
                    dir.display(),
                    candidates.join(", ")
                )))
            }
        }
    } else {
        None
    };
    let key = match raw {
        None => None,
        Some((text, source)) => {
            let private = crate::ssh::normalize_private_key(&text)
                .map_err(|problem| auth(format!("{source}: {problem}")))?;
            let encrypted = crate::ssh::is_encrypted(&private);
            let passphrase = env("GITINIT_SSH_KEY_PASSPHRASE").filter(|p| !p.is_empty());
            if encrypted && passphrase.is_none() {
                return Err(auth(format!(
                    "{source} is encrypted and GITINIT_SSH_KEY_PASSPHRASE is not set"
                )));
            }
            Some(SshKey {
                private,
                passphrase,
                source,
                encrypted,
            })
        }
    };
    let host_keys = if conn.insecure_skip_host_key_check {
        warnings.push(
            "insecure: SSH host keys are not verified (--insecure-skip-host-key-check); anyone on the network path can impersonate the server".into(),
        );
        HostKeys::Skip
    } else {
        let file = conn.known_hosts.as_ref().map(|f| cwd.join(f)).or_else(|| {
            ssh_path
                .as_ref()
                .map(|d| d.join("known_hosts"))
                .filter(|p| p.is_file())
        });
        match file {
            Some(f) => {
                let text = std::fs::read_to_string(&f).map_err(|e| {
                    Error::invalid(format!(
                        "--known-hosts {}: cannot read it: {e}",
                        f.display()
                    ))
                })?;
                HostKeys::File(f, crate::ssh::KnownHosts::parse(&text))
            }
            None => HostKeys::Builtin,
        }
    };
    Ok(SshConfig { key, host_keys })
}

pub fn parse_duration(t: &str) -> Result<Duration> {
    // A bare number is seconds, as in most Kubernetes tools.
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(t)
        .map_err(|e| Error::invalid(format!("--timeout `{t}`: {e} (write e.g. 90s, 10m or 1h)")))
}
