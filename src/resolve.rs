//! The only reader of the run's inputs: options (already merged with their env vars by clap),
//! the connections catalog, the flags string, the other env vars and the files they name
//! (credentials store, SSH keys, known_hosts, CA bundle) become one [`Config`]. Precedence,
//! lowest first: the catalog, then env vars, then options.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::{CloneArgs, Command, ConnArgs, SubmodulesMode};
use crate::config::{
    CacheConfig, Config, CredentialStore, HostKeys, Remote, ReportTarget, SshConfig, SshKey, Want,
    CREDENTIALS_ENV, CREDENTIALS_STORE_ENV,
};
use crate::credentials::Credentials;
use crate::error::{Error, Result};
use crate::flags;
use crate::remote_url::RepoUrl;
use crate::revision::Revision;

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
    let (url_arg, dest_arg) = command.positional();
    if let (Some(a), Some(b)) = (url_arg, conn.url.as_deref()) {
        if a != b {
            return Err(Error::invalid(format!(
                "the repository is given twice, as `{}` and as --url (or GITINIT_URL) `{}`: give it once",
                crate::remote_url::redact_input(a),
                crate::remote_url::redact_input(b)
            )));
        }
    }
    if let (Some(a), Some(b)) = (dest_arg, clone.and_then(|c| c.dest.as_deref())) {
        if a != b {
            return Err(Error::invalid(format!(
                "the destination is given twice, as `{}` and as --dest (or GITINIT_DEST) `{}`: give it once",
                a.display(),
                b.display()
            )));
        }
    }
    let url_text = url_arg
        .map(str::to_string)
        .or_else(|| conn.url.clone())
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
            detail: match looks_like_a_host(&url_text) {
                Some(https) => format!("no such path; did you mean {https}?"),
                None => "no such path".into(),
            },
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
    let mut flags = flags::parse(&flag_values)?;
    if let Some(c) = clone {
        apply_clone_spellings(c, &mut flags)?;
    }
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

    // `--filter SPEC` and the flag `--filter=SPEC` must agree; git ignores it for a local
    // repository, and so does gitinit (its objects are hard-linked, nothing is transferred).
    let filter = match (
        clone
            .and_then(|c| c.filter.as_deref())
            .filter(|f| !f.trim().is_empty()),
        flags.filter.clone(),
    ) {
        (Some(o), Some(f)) if o.trim() != f => {
            return Err(Error::invalid(format!(
                "--filter {o} and the flag `--filter={f}` disagree: give the filter once"
            )))
        }
        (Some(o), _) => Some(flags::filter_spec(o, "--filter (or GITINIT_FILTER)")?),
        (None, f) => f,
    };
    let filter = match filter {
        Some(f) if url.is_local() => {
            warnings.push(format!(
                "--filter={f} is ignored for a local repository (its objects are hard-linked: nothing is transferred), as git ignores it when cloning a path"
            ));
            None
        }
        f => f,
    };
    let cache = match (resolve_cache(clone, cwd)?, &filter) {
        (Some(_), Some(f)) => {
            warnings.push(format!(
                "--cache is not used with --filter={f}: a partial clone fetches only the blobs it needs from the remote, and a cache entry holds whole histories"
            ));
            None
        }
        (c, _) => c,
    };
    let proxy_env = crate::proxy::ProxyEnv::read(env);
    let github_app = resolve_github_app(conn, cwd, &url, env, &proxy_env, &mut warnings)?;
    // The App's token, bought by the job, replaces the repository's credentials.
    let credentials = match github_app {
        Some(_) => None,
        None => resolve_credentials(conn, &url, env)?,
    };
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
            let d = dest_arg
                .map(Path::to_path_buf)
                .or_else(|| c.dest.clone())
                .ok_or_else(|| {
                    Error::invalid(
                        "no destination given: pass --dest DIR (or GITINIT_DEST), or write `gitinit clone URL DIR`",
                    )
                })?;
            Some(if d.is_absolute() { d } else { cwd.join(d) })
        }
    };

    let report = report_target(conn, cwd);

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

    let io_timeout = match env("GITINIT_IO_TIMEOUT").filter(|v| !v.trim().is_empty()) {
        Some(v) => parse_duration(v.trim())?,
        None => Duration::from_secs(60),
    };
    Ok(Config {
        remote: Remote {
            url,
            credentials,
            ssh,
            proxy,
            proxy_env,
            credentials_store,
            ca_file,
            ssl_verify: flags.ssl_verify,
            io_timeout,
        },
        want: Want {
            revision,
            revision_text,
            depth,
            all_branches: flags.all_branches,
            no_tags: flags.no_tags,
            sparse: match clone.and_then(|c| c.sparse.as_deref()) {
                Some(dirs) => crate::sparse::Cone::parse(dirs)?,
                None => None,
            },
            filter,
        },
        dest,
        connection,
        report,
        results_dir: clone
            .and_then(|c| c.results_dir.as_ref())
            .map(|d| cwd.join(d)),
        timeout,
        retries: conn.retries,
        clean: clone.is_some_and(|c| c.clean),
        home: env("HOME").filter(|h| !h.is_empty()).map(PathBuf::from),
        lfs: resolve_lfs(clone, env)?,
        cache,
        verify_signatures: resolve_signatures(clone, cwd)?,
        progress_interval: env("GITINIT_PROGRESS_INTERVAL_MS")
            .and_then(|v| v.trim().parse().ok())
            .map(Duration::from_millis)
            .unwrap_or(Duration::from_secs(5)),
        progress_bar: conn.log_format == crate::cli::LogFormat::Text,
        warnings,
        flags,
        github_app,
    })
}

/// `github.com/org/repo`, written without a scheme, is a local path to git; when no such path
/// exists it was most likely meant as `https://github.com/org/repo`.
fn looks_like_a_host(input: &str) -> Option<String> {
    let input = input.trim();
    let (host, rest) = input.split_once('/')?;
    let is_host = host.contains('.')
        && !host.starts_with('.')
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
    (is_host && !rest.is_empty() && !input.contains("://"))
        .then(|| format!("https://{}", crate::remote_url::redact_input(input)))
}

/// `--report`: `-` is stdout, anything else a file (relative to `cwd`).
pub fn report_target(conn: &ConnArgs, cwd: &Path) -> Option<ReportTarget> {
    conn.report.as_deref().map(|r| match r {
        "-" => ReportTarget::Stdout,
        path => ReportTarget::File(cwd.join(path)),
    })
}

/// `--depth N` and `--submodules MODE` are the flags `--depth N` and `--recurse-submodules`
/// (`--shallow-submodules`) spelled as options: given both ways they must agree.
fn apply_clone_spellings(c: &CloneArgs, flags: &mut flags::Flags) -> Result<()> {
    match (c.depth, flags.depth) {
        (Some(o), Some(f)) if o != f => {
            return Err(Error::invalid(format!(
                "--depth {o} and the flag `--depth {f}` disagree: give the depth once"
            )))
        }
        (Some(o), _) => flags.depth = Some(o),
        _ => {}
    }
    match c.submodules {
        Some(SubmodulesMode::Off) if flags.recurse_submodules => {
            return Err(Error::invalid(
                "--submodules off and the flag `--recurse-submodules` disagree: give one of them",
            ))
        }
        Some(SubmodulesMode::Off) => flags.shallow_submodules = false,
        Some(SubmodulesMode::Recursive) => flags.recurse_submodules = true,
        Some(SubmodulesMode::Shallow) => {
            flags.recurse_submodules = true;
            flags.shallow_submodules = true;
        }
        None => {}
    }
    Ok(())
}

/// SPEC §13: the Polyaxon run `initializer git` reports to (`None` for the other commands,
/// outside Polyaxon, and with `POLYAXON_NO_API`), and warnings for the log. Resolved apart from
/// [`resolve`], before it, so that a failure to resolve the options is reported too.
pub fn polyaxon(
    command: &Command,
    env: &dyn Fn(&str) -> Option<String>,
) -> (Option<crate::polyaxon::Run>, Vec<String>) {
    match command {
        Command::Initializer(_) => crate::polyaxon::Run::from_env(env),
        Command::Clone(_) | Command::Check(_) => (None, vec![]),
    }
}

/// `--verify-signatures FILE`, read and parsed now: a bad file fails before anything is fetched.
fn resolve_signatures(
    clone: Option<&CloneArgs>,
    cwd: &Path,
) -> Result<Option<crate::signature::AllowedKeys>> {
    let Some(file) = clone.and_then(|c| c.verify_signatures.as_deref()) else {
        return Ok(None);
    };
    let path = cwd.join(file);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Error::invalid(format!(
            "--verify-signatures {}: cannot read it: {e} (give the file of allowed keys: SSH allowed_signers lines and/or armored OpenPGP public keys)",
            path.display()
        ))
    })?;
    crate::signature::AllowedKeys::parse(&text, &path).map(Some)
}

/// `--lfs` (or `GITINIT_LFS`) beats `GIT_LFS_SKIP_SMUDGE`, git-lfs's own switch.
/// `--cache DIR` (relative to `cwd`) and `--cache-max-size SIZE`.
fn resolve_cache(clone: Option<&CloneArgs>, cwd: &Path) -> Result<Option<CacheConfig>> {
    let Some(dir) = clone.and_then(|c| c.cache.as_ref()) else {
        return Ok(None);
    };
    if dir.as_os_str().is_empty() {
        return Ok(None);
    }
    let max_size = match clone.and_then(|c| c.cache_max_size.as_deref()) {
        Some(text) => Some(parse_size(text).ok_or_else(|| {
            Error::invalid(format!(
                "--cache-max-size `{text}`: give a size in bytes with an optional unit, e.g. 500M or 20G (K, M, G, T: powers of 1024)"
            ))
        })?),
        None => None,
    };
    Ok(Some(CacheConfig {
        dir: cwd.join(dir),
        max_size,
    }))
}

/// `20G`, `500MiB`, `1.5g`, `1048576`: powers of 1024, as Kubernetes' `Gi` (also accepted).
fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number.parse().ok()?;
    let unit = unit.trim().to_ascii_lowercase();
    let shift = match unit
        .trim_end_matches("ib")
        .trim_end_matches('i')
        .trim_end_matches('b')
    {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => return None,
    };
    let bytes = number * (1u64 << shift) as f64;
    (bytes.is_finite() && bytes >= 1.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

fn resolve_lfs(
    clone: Option<&CloneArgs>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<crate::lfs::Options> {
    let skip_smudge = env("GIT_LFS_SKIP_SMUDGE").is_some_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    });
    let enabled = match clone.and_then(|c| c.lfs) {
        Some(mode) => mode == crate::cli::LfsMode::Auto,
        None => !skip_smudge,
    };
    let filter = crate::lfs::Filter::new(
        clone.and_then(|c| c.lfs_include.as_deref()),
        clone.and_then(|c| c.lfs_exclude.as_deref()),
    )?;
    Ok(crate::lfs::Options { enabled, filter })
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

/// The env var with the GitHub App's private key (its contents).
pub const GITHUB_APP_KEY_ENV: &str = "GITINIT_GITHUB_APP_PRIVATE_KEY";

/// SPEC §14: `--github-app-id` and its companions → the App, or `None`. Its token replaces the
/// repository's credentials, so credentials given another way with it are a contradiction.
fn resolve_github_app(
    conn: &ConnArgs,
    cwd: &Path,
    url: &RepoUrl,
    env: &dyn Fn(&str) -> Option<String>,
    proxy_env: &crate::proxy::ProxyEnv,
    warnings: &mut Vec<String>,
) -> Result<Option<crate::config::GithubApp>> {
    use crate::remote_url::Scheme;
    let given = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let key_env = env(GITHUB_APP_KEY_ENV).filter(|k| !k.trim().is_empty());
    let Some(id) = given(&conn.github_app_id) else {
        if given(&conn.github_app_installation_id).is_some()
            || conn.github_app_private_key_file.is_some()
            || key_env.is_some()
        {
            return Err(Error::invalid(format!(
                "a GitHub App installation or private key is given (--github-app-installation-id, --github-app-private-key-file or {GITHUB_APP_KEY_ENV}) without the App: give its id with --github-app-id (GITINIT_GITHUB_APP_ID)"
            )));
        }
        return Ok(None);
    };
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(Error::invalid(format!(
            "--github-app-id `{id}`: not a GitHub App id (a number, e.g. 123456) or client id (e.g. Iv23liAbCdEf): copy it from the App's settings"
        )));
    }
    let installation = match given(&conn.github_app_installation_id) {
        None => None,
        Some(i) => Some(i.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
            Error::invalid(format!(
                "--github-app-installation-id `{i}`: not an installation id, the number at the end of the installation's settings URL (…/settings/installations/12345678); or leave it out to look it up from the repository's owner"
            ))
        })?),
    };
    let host = url.host_str().to_string();
    if !matches!(url.scheme, Scheme::Https | Scheme::Http) {
        return Err(Error::invalid(format!(
            "--github-app-id: a GitHub App's token works over HTTPS, and {url} is not an https:// URL: give the repository as https://{host}/{}",
            url.path.trim_start_matches('/')
        )));
    }
    let explicit = if url.credentials.is_some() {
        Some("credentials in the URL".to_string())
    } else if let Some(var) = &conn.credentials_env {
        Some(format!("--credentials-env {}", var.trim()))
    } else if env(CREDENTIALS_ENV).is_some_and(|v| !v.trim().is_empty()) {
        Some(CREDENTIALS_ENV.to_string())
    } else {
        None
    };
    if let Some(what) = explicit {
        return Err(Error::invalid(format!(
            "--github-app-id and {what} both give the repository's credentials: give one of them (the App's installation token replaces the others)"
        )));
    }
    let parts: Vec<&str> = url.path.trim_matches('/').split('/').collect();
    let repository = match parts[..] {
        [owner, repo] if !owner.is_empty() && !repo.is_empty() => Some((
            owner.to_string(),
            repo.strip_suffix(".git").unwrap_or(repo).to_string(),
        )),
        _ => None,
    };
    if installation.is_none() && repository.is_none() {
        return Err(Error::invalid(format!(
            "--github-app-id: {url} is not https://HOST/OWNER/REPO, so the App's installation cannot be looked up from its owner: give it with --github-app-installation-id"
        )));
    }
    let api = match given(&conn.github_api_url) {
        Some(a) => a.trim_end_matches('/').to_string(),
        None if host.eq_ignore_ascii_case("github.com") => "https://api.github.com".to_string(),
        None => {
            let suggested = if host.to_ascii_lowercase().ends_with(".ghe.com") {
                format!("https://api.{host}")
            } else {
                format!("https://{host}/api/v3")
            };
            return Err(Error::invalid(format!(
                "--github-app-id: the repository is on {host}, not github.com: give its GitHub API with --github-api-url (GITINIT_GITHUB_API_URL), e.g. {suggested}"
            )));
        }
    };
    let bad_api = |why: &str| {
        Error::invalid(format!(
            "--github-api-url `{}`: {why} (GitHub: https://api.github.com; GitHub Enterprise Server: https://HOST/api/v3)",
            crate::redact::url(&api)
        ))
    };
    let parsed = url::Url::parse(&api).map_err(|e| bad_api(&format!("not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "https" | "http") || parsed.host_str().is_none() {
        return Err(bad_api("not an https:// URL"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad_api(
            "it holds credentials; the App's JWT is the API's credential: remove them",
        ));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(bad_api("it holds a query or fragment"));
    }
    if parsed.scheme() == "http" {
        warnings.push(format!(
            "insecure: --github-api-url {api} is http://: the App's JWT and its installation token travel unencrypted, and anyone on the network path can read them and act as the App"
        ));
    }
    let api_url = RepoUrl::parse(&format!("{api}/app"), Path::new("/"))
        .map_err(|e| bad_api(&e.to_string()))?;
    let proxy = crate::proxy::choose(&api_url, proxy_env)?;
    let key_error = |detail: String, hint: &str| Error::Auth {
        url: format!("GitHub as App {id}"),
        detail,
        hint: hint.into(),
    };
    const HINT_KEY: &str = "Give the private key GitHub generated for the App (its settings > Private keys > Generate a private key), as a file with --github-app-private-key-file or its contents in GITINIT_GITHUB_APP_PRIVATE_KEY";
    let (text, source) = if let Some(file) = &conn.github_app_private_key_file {
        let file = cwd.join(file);
        let source = format!("--github-app-private-key-file {}", file.display());
        let text = std::fs::read_to_string(&file).map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
                "This is a file permission problem, not a wrong key: the container's user cannot read it. Mount the secret readable by that user (defaultMode: 0440 with the pod's fsGroup, or runAsUser the file's owner)"
            } else {
                HINT_KEY
            };
            key_error(format!("cannot read {source}: {e}"), hint)
        })?;
        (text, source)
    } else if let Some(text) = key_env {
        (text, GITHUB_APP_KEY_ENV.to_string())
    } else {
        return Err(Error::invalid(format!(
            "--github-app-id needs the App's private key: give --github-app-private-key-file FILE (GITINIT_GITHUB_APP_PRIVATE_KEY_FILE) or its contents in {GITHUB_APP_KEY_ENV}"
        )));
    };
    let pem = crate::github_app::normalize_key(&text);
    crate::github_app::check_key(&pem)
        .map_err(|problem| key_error(format!("{source}: {problem}"), HINT_KEY))?;
    Ok(Some(crate::config::GithubApp {
        id,
        installation,
        repository,
        key: crate::config::AppKey { pem, source },
        api,
        proxy,
    }))
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
        std::fs::read_to_string(path).map_err(|e| {
            let detail = format!("cannot read {what} {}: {e}", path.display());
            if e.kind() == std::io::ErrorKind::PermissionDenied {
                Error::Auth {
                    url: "the SSH key".into(),
                    detail,
                    hint: "This is a file permission problem, not a wrong key: the container's user cannot read it. Mount the secret readable by that user (defaultMode: 0440 with the pod's fsGroup, or runAsUser the file's owner)".into(),
                }
            } else {
                auth(detail)
            }
        })
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
            // Then git-sync's `ssh` and the `ssh-privatekey` of a Kubernetes SSH-auth secret.
            None => ["id_ed25519", "id_ecdsa", "id_rsa", "ssh", "ssh-privatekey"]
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

#[cfg(test)]
mod tests {
    #[test]
    fn cache_sizes_read_as_kubernetes_and_git_users_write_them() {
        for (text, bytes) in [
            ("1048576", 1 << 20),
            ("300K", 300 << 10),
            ("500M", 500 << 20),
            ("500MiB", 500 << 20),
            ("20G", 20 << 30),
            ("20Gi", 20 << 30),
            ("20gb", 20 << 30),
            ("1.5g", 3 << 29),
            ("1T", 1 << 40),
        ] {
            assert_eq!(parse_size(text), Some(bytes), "{text}");
        }
        for bad in ["", "lots", "10X", "-1G", "0", "G"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }

    use std::collections::HashMap;

    use clap::FromArgMatches;

    use super::*;
    use crate::cli::Cli;

    /// Resolves `args` (after `gitinit`) with exactly the env vars of `vars`, in `cwd`.
    fn resolve_with(args: &[&str], vars: &[(&str, &str)], cwd: &Path) -> Result<Config> {
        let matches = crate::cli::command("test".into())
            .try_get_matches_from(std::iter::once("gitinit").chain(args.iter().copied()))
            .expect("the arguments parse");
        let cli = Cli::from_arg_matches(&matches).unwrap();
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        resolve(&cli.command, cwd, &|k| vars.get(k).cloned())
    }

    fn catalog(dir: &Path) -> PathBuf {
        let path = dir.join("connections.yaml");
        std::fs::write(
            &path,
            "connections:\n  - name: repo1\n    kind: git\n    schema:\n      url: https://git.example.com/org/repo.git\n      revision: feature\n      flags: [\"--depth 3\", \"--no-tags\"]\n",
        )
        .unwrap();
        path
    }

    #[test]
    fn options_win_over_the_catalog_and_fill_what_it_leaves() {
        let dir = tempfile::tempdir().unwrap();
        let cat = catalog(dir.path());
        let cat = cat.to_str().unwrap();
        let base = ["clone", "--connections", cat, "--dest", "w"];
        // The catalog alone: its URL, revision and flags.
        let cfg = resolve_with(&base, &[], dir.path()).unwrap();
        assert_eq!(
            cfg.remote.url.to_string(),
            "https://git.example.com/org/repo.git"
        );
        assert_eq!(cfg.want.revision_text.as_deref(), Some("feature"));
        assert_eq!(cfg.want.depth, Some(3));
        assert!(cfg.want.no_tags);
        assert_eq!(cfg.connection.as_deref(), Some("repo1"));
        assert_eq!(cfg.dest, Some(dir.path().join("w")));
        // Options replace each of them; flags replace the catalog's flags as a whole.
        let mut args = base.to_vec();
        args.extend([
            "--url",
            "https://other.example.com/x.git",
            "--revision",
            "v2",
            "--flags",
            "--depth 1",
        ]);
        let cfg = resolve_with(&args, &[], dir.path()).unwrap();
        assert_eq!(
            cfg.remote.url.to_string(),
            "https://other.example.com/x.git"
        );
        assert_eq!(cfg.want.revision_text.as_deref(), Some("v2"));
        assert_eq!(cfg.want.depth, Some(1));
        assert!(
            !cfg.want.no_tags,
            "the catalog's flags are replaced, not merged"
        );
    }

    #[test]
    fn revision_beats_a_branch_in_the_flags() {
        let dir = tempfile::tempdir().unwrap();
        let url = "https://h.example.com/r.git";
        let args = ["clone", "--url", url, "--dest", "w", "--flags", "-b dev"];
        let cfg = resolve_with(&args, &[], dir.path()).unwrap();
        assert_eq!(cfg.want.revision_text.as_deref(), Some("dev"));
        let mut with_rev = args.to_vec();
        with_rev.extend(["--revision", "main"]);
        let cfg = resolve_with(&with_rev, &[], dir.path()).unwrap();
        assert_eq!(cfg.want.revision_text.as_deref(), Some("main"));
    }

    #[test]
    fn credentials_from_the_url_then_the_named_variable_then_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        std::fs::write(&store, "https://stored:s3@h.example.com\n").unwrap();
        let store = store.to_str().unwrap();
        let plain = [
            "clone",
            "--url",
            "https://h.example.com/r.git",
            "--dest",
            "w",
        ];
        let user = |cfg: &Config| cfg.remote.credentials.as_ref().map(|c| c.username.clone());

        let cfg = resolve_with(&plain, &[(CREDENTIALS_STORE_ENV, store)], dir.path()).unwrap();
        assert_eq!(user(&cfg).as_deref(), Some("stored"));
        let env = [
            (CREDENTIALS_ENV, "envuser:pw"),
            (CREDENTIALS_STORE_ENV, store),
        ];
        let cfg = resolve_with(&plain, &env, dir.path()).unwrap();
        assert_eq!(user(&cfg).as_deref(), Some("envuser"));
        let in_url = [
            "clone",
            "--url",
            "https://urluser:pw@h.example.com/r.git",
            "--dest",
            "w",
        ];
        let cfg = resolve_with(&in_url, &env, dir.path()).unwrap();
        assert_eq!(user(&cfg).as_deref(), Some("urluser"));
        assert_eq!(cfg.remote.url.to_string(), "https://h.example.com/r.git");

        let mut named = plain.to_vec();
        named.extend(["--credentials-env", "MY_TOKEN"]);
        let cfg = resolve_with(&named, &[("MY_TOKEN", "tok:pw")], dir.path()).unwrap();
        assert_eq!(user(&cfg).as_deref(), Some("tok"));
        let err = resolve_with(&named, &[], dir.path()).unwrap_err();
        assert!(matches!(err, Error::InvalidInput { .. }), "{err}");
        // A submodule on another host finds the store without reading the environment again.
        let cfg = resolve_with(&plain, &[(CREDENTIALS_STORE_ENV, store)], dir.path()).unwrap();
        assert!(cfg.remote.credentials_store.is_some());
    }

    #[test]
    fn the_environment_is_read_here_once() {
        let dir = tempfile::tempdir().unwrap();
        let args = [
            "clone",
            "--url",
            "https://h.example.com/r.git",
            "--dest",
            "w",
        ];
        let vars = [
            ("HTTPS_PROXY", "http://upper:3128"),
            ("https_proxy", "http://lower:3128"),
            ("NO_PROXY", "other.example.com"),
            ("HOME", "/home/u"),
            ("GITINIT_IO_TIMEOUT", "5s"),
        ];
        let cfg = resolve_with(&args, &vars, dir.path()).unwrap();
        assert_eq!(cfg.remote.proxy.as_deref(), Some("http://lower:3128"));
        assert_eq!(
            cfg.remote.proxy_env.no_proxy.as_deref(),
            Some("other.example.com")
        );
        assert_eq!(cfg.home, Some(PathBuf::from("/home/u")));
        assert_eq!(cfg.remote.io_timeout, Duration::from_secs(5));
        let cfg = resolve_with(&args, &[], dir.path()).unwrap();
        assert_eq!(cfg.remote.proxy, None);
        assert_eq!(cfg.remote.io_timeout, Duration::from_secs(60));
    }

    #[test]
    fn the_ssh_path_also_finds_git_syncs_and_kubernetes_key_names() {
        for name in ["ssh", "ssh-privatekey"] {
            let dir = tempfile::tempdir().unwrap();
            let st = std::process::Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(dir.path().join(name))
                .status()
                .unwrap();
            assert!(st.success());
            let args = ["clone", "--url", "git@h.example.com:o/r.git", "--dest", "w"];
            let path = dir.path().to_str().unwrap();
            let cfg = resolve_with(&args, &[("POLYAXON_SSH_PATH", path)], dir.path()).unwrap();
            let key = cfg.remote.ssh.unwrap().key.unwrap();
            assert!(key.source.ends_with(name), "{}", key.source);
        }
    }

    #[test]
    fn a_github_app_replaces_the_repositorys_credentials_and_finds_its_api() {
        let dir = tempfile::tempdir().unwrap();
        let pem = openssl::rsa::Rsa::generate(2048)
            .unwrap()
            .private_key_to_pem()
            .unwrap();
        std::fs::write(dir.path().join("app.pem"), pem).unwrap();
        let store = dir.path().join("store");
        std::fs::write(&store, "https://stored:s3@github.com\n").unwrap();
        let store = store.to_str().unwrap();
        let args = [
            "clone",
            "--url",
            "https://github.com/acme/models.git",
            "--dest",
            "w",
            "--github-app-id",
            "123",
            "--github-app-private-key-file",
            "app.pem",
        ];
        let env = [
            (CREDENTIALS_STORE_ENV, store),
            ("HTTPS_PROXY", "http://proxy:3128"),
        ];
        let cfg = resolve_with(&args, &env, dir.path()).unwrap();
        let app = cfg.github_app.expect("an App");
        assert_eq!(app.api, "https://api.github.com");
        assert_eq!(app.repository, Some(("acme".into(), "models".into())));
        assert_eq!(app.installation, None);
        assert_eq!(app.proxy.as_deref(), Some("http://proxy:3128"));
        assert!(!format!("{:?}", app.key).contains("PRIVATE"));
        // The store's line for github.com gives way to the App's token; it stays for the
        // submodules on other hosts.
        assert!(cfg.remote.credentials.is_none());
        assert!(cfg.remote.credentials_store.is_some());
        assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);

        // GitHub Enterprise: the API given (a trailing `/` dropped), NO_PROXY honoured, and
        // plain http:// warned about.
        let mut ghe = args.to_vec();
        ghe[2] = "https://ghe.example.com/acme/models";
        ghe.extend(["--github-api-url", "http://ghe.example.com/api/v3/"]);
        let env = [
            ("HTTP_PROXY", "http://proxy:3128"),
            ("NO_PROXY", "ghe.example.com"),
        ];
        let cfg = resolve_with(&ghe, &env, dir.path()).unwrap();
        let app = cfg.github_app.unwrap();
        assert_eq!(app.api, "http://ghe.example.com/api/v3");
        assert_eq!(app.proxy, None);
        assert!(cfg.warnings.iter().any(|w| w.starts_with("insecure")));
        // Without it, the message names the API to give.
        let mut no_api = args.to_vec();
        no_api[2] = "https://ghe.example.com/acme/models";
        let err = resolve_with(&no_api, &[], dir.path()).unwrap_err();
        assert!(
            err.to_string().contains("https://ghe.example.com/api/v3"),
            "{err}"
        );
    }

    #[test]
    fn a_local_source_ignores_depth_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir(&src).unwrap();
        let args = [
            "clone",
            "--url",
            "src",
            "--dest",
            "w",
            "--flags",
            "--depth 1",
        ];
        let cfg = resolve_with(&args, &[], dir.path()).unwrap();
        assert_eq!(cfg.want.depth, None);
        assert!(cfg
            .warnings
            .iter()
            .any(|w| w.contains("--depth 1 is ignored")));
    }
}
