//! Polyaxon lineage (SPEC §13): inside a Polyaxon run, `initializer git` tells the Polyaxon API
//! what it checked out, as Polyaxon's own git initializer does through its run client: after
//! success one lineage artifact of kind `coderef` (`POST …/runs/{uuid}/lineage/artifacts`),
//! after a failure a `warning` status with reason `GitInitializer` (`POST …/runs/{uuid}/statuses`).
//! The API is a witness, not a step: whatever it answers, the clone's exit code stays; a failed
//! call is retried twice (1 s, 2 s), each bounded by 10 s and by the run's `--timeout`, then
//! logged as a warning.
//!
//! [`Run::from_env`] reads the environment Polyaxon's converter gives its init containers; it is
//! called by `resolve::polyaxon` with the run's env function, like every other input.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use curl::easy::{Easy, List};
use serde_json::{json, Value};
use tracing::{info, warn};

use crate::redact;
use crate::remote_url::{RepoUrl, Scheme};

/// Polyaxon's switch for runs whose agent has no API.
pub const NO_API_ENV: &str = "POLYAXON_NO_API";
/// `owner.project.runs.uuid`, set by Polyaxon's converter on every init container.
pub const RUN_INSTANCE_ENV: &str = "POLYAXON_RUN_INSTANCE";
/// The token, when no auth file holds one.
pub const AUTH_TOKEN_ENV: &str = "POLYAXON_AUTH_TOKEN";
/// Where Polyaxon's auth init container writes `.configs/.auth` (default `/plx-context`).
pub const CONTEXT_ROOT_ENV: &str = "POLYAXON_CONTEXT_ROOT";

/// One API call may take this long (SPEC §13), less when the run's `--timeout` is nearer.
const CALL_LIMIT: Duration = Duration::from_secs(10);
/// The waits before the second and third attempts.
const WAITS: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(2)];
/// Kept free before the `--timeout` watchdog fires, so that it never fires because of us.
const MARGIN: Duration = Duration::from_millis(500);
/// An attempt given less time than this is not made.
const SHORTEST_CALL: Duration = Duration::from_millis(300);
/// What is kept of an answer, for the warning that quotes it.
const MAX_ANSWER: usize = 4096;

/// The Polyaxon run this process reports to: resolved once, before anything else of the run,
/// so that a failure to resolve the options is reported too.
#[derive(Debug, Clone)]
pub struct Run {
    /// `POLYAXON_HOST`, without a trailing `/` (`http://polyaxon-polyaxon-api:80`).
    pub host: String,
    pub owner: String,
    pub project: String,
    pub uuid: String,
    /// `Authorization: <type> <token>`, when a token was found.
    pub auth: Option<Authorization>,
    /// `POLYAXON_HEADER: POLYAXON_HEADER_SERVICE` (`X-POLYAXON-SERVICE: initializer`).
    pub service_header: Option<(String, String)>,
    /// The proxy the API's URL goes through (the run's proxy variables, `NO_PROXY` included).
    pub proxy: Option<String>,
    /// `POLYAXON_VERIFY_SSL=false` turns TLS verification off, as in Polyaxon's client.
    pub ssl_verify: bool,
    /// `POLYAXON_SSL_CA_CERT`: a CA bundle added to the system roots.
    pub ca_file: Option<PathBuf>,
}

/// The value of the `Authorization` header; `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Authorization(String);

impl std::fmt::Debug for Authorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authorization(..)")
    }
}

/// Polyaxon's `to_bool` for the strings it accepts as true.
fn truthy(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "t" | "yes" | "y" | "on"
    )
}

impl Run {
    /// The run of the environment, or `None` outside Polyaxon (no `POLYAXON_RUN_INSTANCE`) and
    /// with `POLYAXON_NO_API` true. The strings are warnings for the log: an environment that
    /// names a run but cannot be used disables the report, never the clone.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> (Option<Run>, Vec<String>) {
        let set = |k: &str| {
            env(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        if set(NO_API_ENV).is_some_and(|v| truthy(&v)) {
            return (None, vec![]);
        }
        let Some(instance) = set(RUN_INSTANCE_ENV) else {
            return (None, vec![]);
        };
        let skip = |why: String| {
            (None, vec![format!("{why}: the code reference is not reported to Polyaxon (set {NO_API_ENV}=true to silence this)")])
        };
        let parts: Vec<&str> = instance.split('.').collect();
        let [owner, project, _, uuid] = parts[..] else {
            return skip(format!(
                "{RUN_INSTANCE_ENV}=`{instance}` is not owner.project.runs.uuid"
            ));
        };
        if [owner, project, uuid].iter().any(|p| {
            p.is_empty()
                || !p
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        }) {
            return skip(format!(
                "{RUN_INSTANCE_ENV}=`{instance}` is not owner.project.runs.uuid"
            ));
        }
        let Some(host) = set("POLYAXON_HOST") else {
            return skip(format!(
                "{RUN_INSTANCE_ENV} is set but POLYAXON_HOST is not"
            ));
        };
        let host = host.trim_end_matches('/').to_string();
        // Parsed as a repository URL under the API's path, for the proxy choice and its checks.
        let api = match RepoUrl::parse(&format!("{host}/api/v1"), Path::new("/")) {
            Ok(u) if matches!(u.scheme, Scheme::Http | Scheme::Https) => u,
            _ => {
                return skip(format!(
                    "POLYAXON_HOST=`{}` is not an http:// or https:// URL",
                    redact::url(&host)
                ))
            }
        };
        let proxy = match crate::proxy::choose(&api, &crate::proxy::ProxyEnv::read(env)) {
            Ok(p) => p,
            Err(e) => return skip(format!("the proxy of POLYAXON_HOST: {e}")),
        };
        let mut warnings = vec![];
        let ssl_verify = !set("POLYAXON_VERIFY_SSL").is_some_and(|v| {
            matches!(
                v.to_ascii_lowercase().as_str(),
                "0" | "false" | "f" | "no" | "n" | "off"
            )
        });
        if !ssl_verify && api.scheme == Scheme::Https {
            warnings.push("insecure: TLS certificates of the Polyaxon API are not verified (POLYAXON_VERIFY_SSL=false)".into());
        }
        let auth = token(env).map(|t| {
            let kind = set("POLYAXON_AUTHENTICATION_TYPE").unwrap_or_else(|| "Token".into());
            Authorization(format!("{kind} {t}"))
        });
        let service_header = match (set("POLYAXON_HEADER"), set("POLYAXON_HEADER_SERVICE")) {
            (Some(name), Some(value)) => Some((name, value)),
            _ => None,
        };
        let run = Run {
            host,
            owner: owner.into(),
            project: project.into(),
            uuid: uuid.into(),
            auth,
            service_header,
            proxy,
            ssl_verify,
            ca_file: set("POLYAXON_SSL_CA_CERT").map(PathBuf::from),
        };
        (Some(run), warnings)
    }

    /// After a successful clone into `dest` from `url`: the coderef lineage, as Polyaxon's
    /// initializer logs it (`log_artifact_lineage`).
    pub fn report_success(
        &self,
        dest: &Path,
        url: &RepoUrl,
        connection: Option<&str>,
        deadline: Option<Instant>,
    ) {
        let (commit, branch) = match checked_out(dest) {
            Ok(c) => c,
            Err(e) => {
                return warn!(
                    "the code reference is not reported to Polyaxon: cannot read {}: {e}",
                    dest.display()
                )
            }
        };
        let body = lineage_body(&commit, &branch, &code_url(url), connection);
        if self.post("lineage/artifacts", &body, deadline) {
            info!(commit = %commit, branch = %branch, "reported the code reference to Polyaxon run {}", self.uuid);
        }
    }

    /// After a failure: a `warning` status whose message is the failure line, as Polyaxon's
    /// initializer logs it (`log_status`).
    pub fn report_failure(&self, line: &str, deadline: Option<Instant>) {
        let body = status_body(line, &now_iso8601());
        if self.post("statuses", &body, deadline) {
            info!("reported the failure to Polyaxon run {}", self.uuid);
        }
    }

    fn endpoint(&self, what: &str) -> String {
        format!(
            "{}/api/v1/{}/{}/runs/{}/{what}",
            self.host, self.owner, self.project, self.uuid
        )
    }

    /// POSTs `body`, retrying transient failures while the deadline allows; `false` (after a
    /// warning) when it was not accepted.
    fn post(&self, what: &str, body: &Value, deadline: Option<Instant>) -> bool {
        let url = self.endpoint(what);
        let body = body.to_string();
        let mut attempt = 0;
        let failed = loop {
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let limit = left.map_or(CALL_LIMIT, |l| l.saturating_sub(MARGIN).min(CALL_LIMIT));
            if limit < SHORTEST_CALL {
                break "the run's --timeout leaves no time for it".to_string();
            }
            match self.send(&url, &body, limit) {
                Ok(()) => return true,
                Err(f) if f.transient && attempt < WAITS.len() => {
                    let wait = WAITS[attempt];
                    let fits = deadline.is_none_or(|d| {
                        d.saturating_duration_since(Instant::now()) >= wait + SHORTEST_CALL + MARGIN
                    });
                    if !fits {
                        break f.detail;
                    }
                    attempt += 1;
                    warn!(
                        attempt,
                        retries = WAITS.len(),
                        "Polyaxon API: {}; retrying in {}s",
                        f.detail,
                        wait.as_secs()
                    );
                    std::thread::sleep(wait);
                }
                Err(f) => break f.detail,
            }
        };
        warn!(
            "could not report to Polyaxon ({}): {failed}; the clone's result stands",
            redact::url(&url)
        );
        false
    }

    /// One attempt.
    fn send(&self, url: &str, body: &str, limit: Duration) -> Result<(), Failure> {
        let curl_failure = |e: curl::Error| Failure {
            // A certificate the API's trust does not accept will not change by retrying.
            transient: !(e.is_peer_failed_verification() || e.is_ssl_cacert()),
            detail: e.to_string(),
        };
        let mut e = crate::git::http::handle(
            self.proxy.as_deref(),
            self.ssl_verify,
            self.ca_file.as_deref(),
            limit,
        )
        .map_err(curl_failure)?;
        let setup = |e: &mut Easy| -> Result<(), curl::Error> {
            e.progress(false)?;
            e.timeout(limit)?;
            e.url(url)?;
            e.post(true)?;
            e.post_fields_copy(body.as_bytes())?;
            let mut headers = List::new();
            headers.append("Accept: application/json")?;
            headers.append("Content-Type: application/json")?;
            headers.append("Expect:")?;
            if let Some((name, value)) = &self.service_header {
                headers.append(&format!("{name}: {value}"))?;
            }
            if let Some(Authorization(auth)) = &self.auth {
                headers.append(&format!("Authorization: {auth}"))?;
            }
            e.http_headers(headers)
        };
        setup(&mut e).map_err(curl_failure)?;
        let mut answer = Vec::new();
        {
            let mut t = e.transfer();
            t.write_function(|data| {
                let room = MAX_ANSWER.saturating_sub(answer.len());
                answer.extend_from_slice(&data[..data.len().min(room)]);
                Ok(data.len())
            })
            .map_err(curl_failure)?;
            t.perform().map_err(curl_failure)?;
        }
        let status = e.response_code().map_err(curl_failure)?;
        if (200..300).contains(&status) {
            return Ok(());
        }
        Err(Failure {
            transient: status >= 500 || status == 429 || status == 408,
            detail: format!("HTTP {status}{}", self.quote(&answer)),
        })
    }

    /// A short, printable piece of an error answer, without the token should it echo it.
    fn quote(&self, answer: &[u8]) -> String {
        let mut text: String = String::from_utf8_lossy(answer)
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(200)
            .collect();
        if let Some(Authorization(auth)) = &self.auth {
            if let Some((_, token)) = auth.split_once(' ') {
                text = text.replace(token, redact::HIDDEN);
            }
        }
        let text = redact::text(text.trim());
        if text.is_empty() {
            String::new()
        } else {
            format!(": {text}")
        }
    }
}

/// Why an attempt failed, and whether another may succeed.
struct Failure {
    transient: bool,
    detail: String,
}

/// The token as Polyaxon's client finds it in an init container: the auth file that its auth
/// init container writes (`<context root>/.configs/.auth`, JSON, the token under
/// `POLYAXON_AUTH_TOKEN` or `token`) wins over `POLYAXON_AUTH_TOKEN` in the environment.
fn token(env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let root = env(CONTEXT_ROOT_ENV)
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "/plx-context".into());
    let from_file = std::fs::read(Path::new(&root).join(".configs/.auth"))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .and_then(|v| {
            [AUTH_TOKEN_ENV, "token"]
                .iter()
                .find_map(|k| v.get(k)?.as_str().map(str::to_string))
        });
    from_file
        .or_else(|| env(AUTH_TOKEN_ENV))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// The commit checked out in `dest`, and its branch as `git rev-parse --abbrev-ref HEAD` prints
/// it (`HEAD` when detached).
fn checked_out(dest: &Path) -> Result<(String, String), String> {
    let repo = git2::Repository::open(dest).map_err(|e| e.message().to_string())?;
    let head = repo.head().map_err(|e| e.message().to_string())?;
    let commit = head
        .peel_to_commit()
        .map_err(|e| e.message().to_string())?
        .id()
        .to_string();
    let branch = if repo.head_detached().unwrap_or(true) {
        "HEAD".to_string()
    } else {
        head.shorthand().unwrap_or("HEAD").to_string()
    };
    Ok((commit, branch))
}

/// The repository's URL as the Polyaxon UI links it: without credentials; an SSH URL of user
/// `git` (`git@github.com:org/repo.git`) becomes `https://github.com/org/repo`, as Polyaxon's
/// `get_code_reference` writes it.
pub fn code_url(url: &RepoUrl) -> String {
    match (url.scheme, url.ssh_user.as_deref()) {
        (Scheme::Ssh, Some("git")) => {
            let path = url.path.trim_start_matches('/');
            let path = path.strip_suffix(".git").unwrap_or(path);
            format!("https://{}/{path}", url.host_str())
        }
        _ => url.to_string(),
    }
}

/// The body of `POST …/lineage/artifacts`, as Polyaxon's client serialises `V1RunArtifacts`
/// (an absent connection is left out).
fn lineage_body(commit: &str, branch: &str, url: &str, connection: Option<&str>) -> Value {
    let mut artifact = json!({
        "name": commit,
        "kind": "coderef",
        "summary": {"commit": commit, "branch": branch, "url": url, "is_dirty": false},
        "is_input": true,
    });
    if let Some(c) = connection {
        artifact["connection"] = json!(c);
    }
    json!({ "artifacts": [artifact] })
}

/// The body of `POST …/statuses`, as Polyaxon's client serialises its `V1StatusCondition`.
fn status_body(message: &str, at: &str) -> Value {
    json!({"condition": {
        "type": "warning",
        "status": true,
        "reason": "GitInitializer",
        "message": message,
        "last_transition_time": at,
        "last_update_time": at,
    }})
}

/// Now, as Python's `datetime.isoformat()` of an aware UTC time.
fn now_iso8601() -> String {
    let t = humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string();
    match t.strip_suffix('Z') {
        Some(t) => format!("{t}+00:00"),
        None => t,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(vars: &[(&str, &str)]) -> (Option<Run>, Vec<String>) {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Run::from_env(&move |k| map.get(k).cloned())
    }

    const MANAGED: [(&str, &str); 6] = [
        ("POLYAXON_HOST", "http://polyaxon-api:80/"),
        ("POLYAXON_RUN_INSTANCE", "acme.vision.runs.8f2e0c"),
        ("POLYAXON_API_VERSION", "v1"),
        ("POLYAXON_HEADER", "X-POLYAXON-SERVICE"),
        ("POLYAXON_HEADER_SERVICE", "initializer"),
        ("POLYAXON_CONTEXT_ROOT", "/nonexistent-context"),
    ];

    #[test]
    fn the_converters_environment_names_the_run() {
        let (run, warnings) = from(&MANAGED);
        let run = run.expect("a run");
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            run.endpoint("statuses"),
            "http://polyaxon-api:80/api/v1/acme/vision/runs/8f2e0c/statuses"
        );
        assert_eq!(
            run.service_header,
            Some(("X-POLYAXON-SERVICE".into(), "initializer".into()))
        );
        assert_eq!(run.auth, None);
        assert!(run.ssl_verify);
    }

    #[test]
    fn no_run_instance_or_no_api_disables() {
        assert!(from(&MANAGED[..1]).0.is_none());
        let mut vars = MANAGED.to_vec();
        vars.push(("POLYAXON_NO_API", "true"));
        let (run, warnings) = from(&vars);
        assert!(run.is_none() && warnings.is_empty());
        vars.pop();
        vars.push(("POLYAXON_NO_API", "false"));
        assert!(from(&vars).0.is_some());
    }

    #[test]
    fn an_unusable_environment_warns_and_disables() {
        let (run, w) = from(&[("POLYAXON_RUN_INSTANCE", "acme.vision.runs.8f2e0c")]);
        assert!(run.is_none());
        assert!(w[0].contains("POLYAXON_HOST is not"), "{w:?}");
        let (run, w) = from(&[
            ("POLYAXON_RUN_INSTANCE", "acme/vision"),
            ("POLYAXON_HOST", "http://h"),
        ]);
        assert!(
            run.is_none() && w[0].contains("owner.project.runs.uuid"),
            "{w:?}"
        );
        let (run, w) = from(&[
            ("POLYAXON_RUN_INSTANCE", "a.b.runs.c"),
            ("POLYAXON_HOST", "ftp://h"),
        ]);
        assert!(run.is_none() && w[0].contains("http://"), "{w:?}");
    }

    #[test]
    fn the_auth_file_wins_over_the_env_token_and_is_never_debug_printed() {
        let ctx = tempfile::tempdir().unwrap();
        let root = ctx.path().to_str().unwrap().to_string();
        let mut vars = MANAGED.to_vec();
        vars.retain(|(k, _)| *k != "POLYAXON_CONTEXT_ROOT");
        vars.push(("POLYAXON_CONTEXT_ROOT", &root));
        vars.push(("POLYAXON_AUTH_TOKEN", "env-token"));
        let run = from(&vars).0.unwrap();
        assert_eq!(run.auth, Some(Authorization("Token env-token".into())));
        std::fs::create_dir_all(ctx.path().join(".configs")).unwrap();
        std::fs::write(
            ctx.path().join(".configs/.auth"),
            r#"{"POLYAXON_AUTH_USERNAME":"u","POLYAXON_AUTH_TOKEN":"file-token"}"#,
        )
        .unwrap();
        vars.push(("POLYAXON_AUTHENTICATION_TYPE", "Bearer"));
        let run = from(&vars).0.unwrap();
        assert_eq!(run.auth, Some(Authorization("Bearer file-token".into())));
        assert!(!format!("{run:?}").contains("file-token"));
    }

    #[test]
    fn the_api_goes_through_the_runs_proxy_unless_no_proxy() {
        let mut vars = MANAGED.to_vec();
        vars.push(("HTTP_PROXY", "http://proxy:3128"));
        assert_eq!(
            from(&vars).0.unwrap().proxy.as_deref(),
            Some("http://proxy:3128")
        );
        vars.push(("NO_PROXY", "polyaxon-api"));
        assert_eq!(from(&vars).0.unwrap().proxy, None);
    }

    #[test]
    fn bodies_are_polyaxons() {
        assert_eq!(
            lineage_body("abc", "main", "https://h/r", Some("repo")).to_string(),
            r#"{"artifacts":[{"connection":"repo","is_input":true,"kind":"coderef","name":"abc","summary":{"branch":"main","commit":"abc","is_dirty":false,"url":"https://h/r"}}]}"#
        );
        assert!(lineage_body("abc", "HEAD", "u", None)
            .to_string()
            .find("connection")
            .is_none());
        let s = status_body("error: x", "2026-01-01T00:00:00.000000+00:00");
        assert_eq!(s["condition"]["type"], "warning");
        assert_eq!(s["condition"]["reason"], "GitInitializer");
        assert_eq!(s["condition"]["message"], "error: x");
        assert!(now_iso8601().ends_with("+00:00"));
    }

    #[test]
    fn the_code_url_has_no_credentials_and_ssh_becomes_https() {
        let cwd = Path::new("/");
        let u = |s: &str| code_url(&RepoUrl::parse(s, cwd).unwrap());
        assert_eq!(
            u("https://user:s3cret@github.com/org/repo.git"),
            "https://github.com/org/repo.git"
        );
        assert_eq!(
            u("git@github.com:org/repo.git"),
            "https://github.com/org/repo"
        );
        assert_eq!(
            u("ssh://git@gitlab.com/group/sub/repo.git"),
            "https://gitlab.com/group/sub/repo"
        );
        assert_eq!(
            u("ssh://deploy@host:2222/repo.git"),
            "ssh://deploy@host:2222/repo.git"
        );
    }
}
