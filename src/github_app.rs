//! GitHub App credentials (SPEC §14): a JWT signed with the App's private key (RS256) buys an
//! installation token from GitHub's REST API, and the run uses that token as `x-access-token`
//! for the repository and the submodules on its host. The installation is the one given, or the
//! one installed on the repository's owner (`GET /repos/{owner}/{repo}/installation`).
//!
//! The token (and the JWT) live in memory only: in the run's [`Credentials`], whose `Debug`
//! hides them; never in a log line, an error, the report or a file.

use std::cell::Cell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use curl::easy::{Easy, List};
use openssl::pkey::{Id, PKey, Private};
use serde_json::{json, Value};
use tracing::{debug, info, warn};

use crate::config::{GithubApp, Remote};
use crate::credentials::Credentials;
use crate::error::{Error, Result};
use crate::redact;
use crate::retry::retrying;

/// The user name GitHub expects with an installation token.
pub const TOKEN_USER: &str = "x-access-token";
/// The REST API version the calls are written for.
const API_VERSION: &str = "2022-11-28";
/// One call may take this long.
const CALL_LIMIT: Duration = Duration::from_secs(30);
/// What is kept of an answer (GitHub's are a few hundred bytes).
const MAX_ANSWER: usize = 64 * 1024;
/// GitHub's advice against clock drift: `iat` 60 s in the past.
const IAT_BACK: i64 = 60;
/// `exp - iat`: GitHub refuses a JWT that lives longer than 10 minutes.
const LIFETIME: i64 = 600;
/// A node clock further off GitHub's (its `Date` header) than this is corrected once.
const SKEW_NOTICED: i64 = 30;

/// What to do about a JWT that GitHub refused.
const HINT_JWT: &str = "Check the node's clock (GitHub refuses a JWT whose time is off by more than a minute: enable NTP), the App id (--github-app-id, GITINIT_GITHUB_APP_ID: the App's \"App ID\" or \"Client ID\"), and that the key is a current private key of this App (--github-app-private-key-file, GITINIT_GITHUB_APP_PRIVATE_KEY)";

/// The key as users paste it into a secret: surrounding spaces, CRLF line ends, or flattened
/// onto one line with literal `\n`.
pub fn normalize_key(text: &str) -> String {
    let text = text.trim();
    let text = if !text.contains('\n') && text.contains("\\n") {
        text.replace("\\n", "\n")
    } else {
        text.to_string()
    };
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    format!("{}\n", lines.join("\n"))
}

/// The RSA private key of `pem` (PKCS#1 as GitHub hands it out, or PKCS#8), or what is wrong
/// with it. An encrypted key is refused, never prompted for.
fn private_key(pem: &str) -> std::result::Result<PKey<Private>, String> {
    if !pem.contains("-----BEGIN") {
        return Err("it is not a PEM key (no -----BEGIN line)".into());
    }
    if pem.contains("PUBLIC KEY-----") {
        return Err("it is a public key, and the App signs with its private key".into());
    }
    if pem.contains("ENCRYPTED") {
        return Err("it is encrypted, and GitHub generates App keys unencrypted".into());
    }
    let key = PKey::private_key_from_pem_callback(pem.as_bytes(), |_| Ok(0))
        .map_err(|_| "OpenSSL cannot read it as a PEM private key".to_string())?;
    if key.id() != Id::RSA {
        return Err("it is not an RSA key, and GitHub Apps sign with RSA (RS256)".into());
    }
    Ok(key)
}

/// Whether `pem` is a key a JWT can be signed with; what is wrong otherwise (for resolve).
pub fn check_key(pem: &str) -> std::result::Result<(), String> {
    private_key(pem).map(drop)
}

/// The JWT's claims at `now` (seconds since the epoch): issued 60 s ago against clock drift, as
/// GitHub advises, expiring 10 minutes after that (GitHub's limit), issued by the App. A
/// numeric App id goes as a number, a client id (`Iv1.…`) as a string.
pub fn claims(id: &str, now: i64) -> Value {
    let iat = now - IAT_BACK;
    let iss = match id.parse::<u64>() {
        Ok(n) => json!(n),
        Err(_) => json!(id),
    };
    json!({"iat": iat, "exp": iat + LIFETIME, "iss": iss})
}

/// The App's JWT at `now`: `header.claims.signature`, RS256 (RSA PKCS#1 v1.5, SHA-256).
pub fn jwt(id: &str, pem: &str, now: i64) -> std::result::Result<String, String> {
    let key = private_key(pem)?;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims(id, now).to_string());
    let input = format!("{header}.{body}");
    let mut signer = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &key)
        .map_err(|e| format!("OpenSSL: {e}"))?;
    signer
        .update(input.as_bytes())
        .map_err(|e| format!("OpenSSL: {e}"))?;
    let signature = signer.sign_to_vec().map_err(|e| format!("OpenSSL: {e}"))?;
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

/// The credentials of the App's installation for `remote`'s host: a fresh installation token
/// as `x-access-token`. GitHub's answers are retried as the git transfers are (5xx, 429,
/// network), `retries` times.
pub fn credentials(app: &GithubApp, remote: &Remote, retries: u32) -> Result<Credentials> {
    let client = Client {
        app,
        remote,
        skew: Cell::new(0),
    };
    let installation = match app.installation {
        Some(id) => id,
        None => retrying(retries, || client.look_up())?,
    };
    let (token, expires) = retrying(retries, || client.token(installation))?;
    info!(
        app = %app.id,
        installation,
        expires_at = %expires,
        "authenticated as GitHub App {} (installation {installation}); its token expires at {expires}",
        app.id
    );
    Ok(Credentials {
        username: TOKEN_USER.into(),
        password: token,
    })
}

/// An answer of the API.
struct Reply {
    status: u32,
    body: Vec<u8>,
    retry_after: Option<String>,
    /// GitHub's clock, from its `Date` header.
    date: Option<SystemTime>,
}

struct Client<'a> {
    app: &'a GithubApp,
    remote: &'a Remote,
    /// Seconds to add to this node's clock to get GitHub's, once a refused JWT showed it is off.
    skew: Cell<i64>,
}

impl Client<'_> {
    fn shown(&self) -> String {
        redact::url(&self.app.api)
    }

    fn auth(&self, detail: String, hint: &str) -> Error {
        Error::Auth {
            url: format!("GitHub's API {} as App {}", self.shown(), self.app.id),
            detail,
            hint: hint.into(),
        }
    }

    /// `GET /repos/{owner}/{repo}/installation`: the installation on the repository's owner.
    fn look_up(&self) -> Result<u64> {
        let (owner, repo) = self.app.repository.as_ref().ok_or_else(|| {
            Error::Internal("a GitHub App without an installation or a repository".into())
        })?;
        let path = format!("/repos/{owner}/{repo}/installation");
        let reply = self.call(&path, None)?;
        match reply.status {
            200 => {}
            404 => return Err(self.auth(
                format!("the App is not installed on {owner}, or its installation cannot see the repository {owner}/{repo} (HTTP 404 from GET {path})"),
                &format!("Install the App on {owner} with access to {repo} (GitHub: the App's settings > Install App), or give its installation with --github-app-installation-id"),
            )),
            _ => return Err(self.failure(&reply, "GET", &path)),
        }
        let id = self
            .json(&reply, "GET", &path)?
            .get("id")
            .and_then(Value::as_u64)
            .ok_or_else(|| self.not_github("GET", &path, "no numeric `id`"))?;
        debug!(installation = id, "the App's installation on {owner}");
        Ok(id)
    }

    /// `POST /app/installations/{id}/access_tokens`: a token that can read contents (the
    /// least a clone needs, whatever more the App may do), and when it expires.
    fn token(&self, installation: u64) -> Result<(String, String)> {
        let path = format!("/app/installations/{installation}/access_tokens");
        let body = json!({"permissions": {"contents": "read"}}).to_string();
        let reply = self.call(&path, Some(body.as_bytes()))?;
        match reply.status {
            200 | 201 => {}
            404 => return Err(self.auth(
                format!("the App has no installation {installation} (HTTP 404 from POST {path})"),
                "Give the id of an installation of this App (--github-app-installation-id: the number at the end of the installation's settings URL), or leave it out to look it up from the repository's owner",
            )),
            422 => return Err(self.auth(
                format!("GitHub refused a read-only token (HTTP 422{})", message(&reply.body)),
                "Give the App the repository permission \"Contents: Read-only\" (or more), and accept it in the installation's settings",
            )),
            _ => return Err(self.failure(&reply, "POST", &path)),
        }
        let answer = self.json(&reply, "POST", &path)?;
        let token = answer
            .get("token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_graphic()))
            .ok_or_else(|| self.not_github("POST", &path, "no `token`"))?;
        let expires = answer
            .get("expires_at")
            .and_then(Value::as_str)
            .unwrap_or("(not said)")
            .chars()
            .filter(|c| !c.is_control())
            .take(40)
            .collect();
        Ok((token.to_string(), expires))
    }

    /// One call with a fresh JWT; when GitHub refuses it and its clock (`Date`) is more than
    /// 30 s off this node's, once more with a JWT at GitHub's time.
    fn call(&self, path: &str, body: Option<&[u8]>) -> Result<Reply> {
        let reply = self.send(path, body)?;
        if reply.status != 401 || self.skew.get() != 0 {
            return Ok(reply);
        }
        let Some(theirs) = reply.date else {
            return Ok(reply);
        };
        let skew = seconds(theirs) - seconds(SystemTime::now());
        if skew.abs() <= SKEW_NOTICED {
            return Ok(reply);
        }
        warn!(
            skew_s = skew,
            "this node's clock is {}s {} GitHub's: signing the App's JWT again with GitHub's time (fix the node's clock: NTP)",
            skew.abs(),
            if skew > 0 { "behind" } else { "ahead of" }
        );
        self.skew.set(skew);
        self.send(path, body)
    }

    fn send(&self, path: &str, body: Option<&[u8]>) -> Result<Reply> {
        let now = seconds(SystemTime::now()) + self.skew.get();
        let token = jwt(&self.app.id, &self.app.key.pem, now).map_err(|problem| {
            self.auth(
                format!("cannot sign with {}: {problem}", self.app.key.source),
                HINT_JWT,
            )
        })?;
        let url = format!("{}{path}", self.app.api);
        let shown = self.shown();
        let curl_err = |e: curl::Error| {
            crate::git::classify::curl(
                &shown,
                &e,
                None,
                self.app.proxy.is_some(),
                self.remote.io_timeout,
            )
        };
        let mut e = crate::git::http::handle(
            self.app.proxy.as_deref(),
            self.remote.ssl_verify,
            self.remote.ca_file.as_deref(),
            self.remote.io_timeout,
        )
        .map_err(curl_err)?;
        let setup = |e: &mut Easy| -> std::result::Result<(), curl::Error> {
            e.progress(false)?;
            e.timeout(CALL_LIMIT)?;
            e.url(&url)?;
            e.useragent(concat!("gitinit/", env!("CARGO_PKG_VERSION")))?;
            let mut headers = List::new();
            headers.append("Accept: application/vnd.github+json")?;
            headers.append(&format!("X-GitHub-Api-Version: {API_VERSION}"))?;
            headers.append(&format!("Authorization: Bearer {token}"))?;
            if let Some(b) = body {
                e.post(true)?;
                e.post_fields_copy(b)?;
                headers.append("Content-Type: application/json")?;
                headers.append("Expect:")?;
            }
            e.http_headers(headers)
        };
        setup(&mut e).map_err(curl_err)?;
        let mut answer = Vec::new();
        let mut retry_after = None;
        let mut date = None;
        {
            let mut t = e.transfer();
            t.header_function(|line| {
                let line = String::from_utf8_lossy(line);
                if let Some((name, value)) = line.split_once(':') {
                    let value = value.trim().to_string();
                    if name.eq_ignore_ascii_case("retry-after") {
                        retry_after = Some(value);
                    } else if name.eq_ignore_ascii_case("date") {
                        date = httpdate::parse_http_date(&value).ok();
                    }
                }
                true
            })
            .map_err(curl_err)?;
            t.write_function(|data| {
                let room = MAX_ANSWER.saturating_sub(answer.len());
                answer.extend_from_slice(&data[..data.len().min(room)]);
                Ok(data.len())
            })
            .map_err(curl_err)?;
            t.perform().map_err(curl_err)?;
        }
        let status = e.response_code().map_err(curl_err)?;
        debug!(
            status,
            "{} {path}",
            if body.is_some() { "POST" } else { "GET" }
        );
        Ok(Reply {
            status,
            body: answer,
            retry_after,
            date,
        })
    }

    /// An answer other than the ones the calls expect.
    fn failure(&self, reply: &Reply, method: &str, path: &str) -> Error {
        let said = message(&reply.body);
        match reply.status {
            401 => self.auth(
                format!("GitHub refused the App's JWT (HTTP 401 from {method} {path}{said})"),
                HINT_JWT,
            ),
            403 => self.auth(
                format!("GitHub refused the App (HTTP 403 from {method} {path}{said})"),
                "Check that the App and its installation are not suspended, and that the installation can see this repository",
            ),
            408 | 429 | 500..=599 => Error::Unavailable {
                url: self.shown(),
                status: reply.status,
                retry_after: reply
                    .retry_after
                    .as_deref()
                    .and_then(crate::git::http::parse_retry_after),
            },
            300..=399 => Error::invalid(format!(
                "--github-api-url {}: it answered {method} {path} with a redirect (HTTP {}): give the API's own URL (https://api.github.com; GitHub Enterprise: https://HOST/api/v3)",
                self.shown(),
                reply.status
            )),
            status => Error::Network {
                url: self.shown(),
                detail: format!("unexpected HTTP {status} from {method} {path}{said}"),
            },
        }
    }

    fn json(&self, reply: &Reply, method: &str, path: &str) -> Result<Value> {
        serde_json::from_slice(&reply.body)
            .map_err(|e| self.not_github(method, path, &format!("not JSON: {e}")))
    }

    /// A 2xx answer that is not GitHub's: most likely a URL that is not the API.
    fn not_github(&self, method: &str, path: &str, what: &str) -> Error {
        Error::invalid(format!(
            "--github-api-url {}: its answer to {method} {path} is not GitHub's ({what}): give GitHub's REST API (https://api.github.com; GitHub Enterprise: https://HOST/api/v3)",
            self.shown()
        ))
    }
}

/// `: <GitHub's message>` of an error answer, short and printable, or nothing.
fn message(body: &[u8]) -> String {
    let text = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("message")?.as_str().map(str::to_string))
        .unwrap_or_default();
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    let text = redact::text(text.trim());
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

fn seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rsa_pem() -> String {
        let rsa = openssl::rsa::Rsa::generate(2048).unwrap();
        String::from_utf8(rsa.private_key_to_pem().unwrap()).unwrap()
    }

    #[test]
    fn the_claims_allow_for_drift_and_stay_within_githubs_ten_minutes() {
        let now = 1_800_000_000;
        let c = claims("12345", now);
        assert_eq!(
            c["iat"],
            now - 60,
            "iat 60 s in the past, as GitHub advises"
        );
        let (iat, exp) = (c["iat"].as_i64().unwrap(), c["exp"].as_i64().unwrap());
        assert!(exp - iat <= 600, "GitHub refuses a JWT longer than 10 min");
        assert!(exp > now + 60, "long enough for two calls");
        assert_eq!(c["iss"], json!(12345), "a numeric App id goes as a number");
        assert_eq!(claims("Iv23liAbC", now)["iss"], json!("Iv23liAbC"));
    }

    #[test]
    fn the_jwt_is_rs256_and_verifies_with_the_public_key() {
        let pem = rsa_pem();
        let token = jwt("7", &pem, 1_800_000_000).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header, json!({"alg": "RS256", "typ": "JWT"}));
        let body: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(body["iss"], json!(7));
        let key = PKey::private_key_from_pem(pem.as_bytes()).unwrap();
        let public = PKey::public_key_from_pem(&key.public_key_to_pem().unwrap()).unwrap();
        let mut v =
            openssl::sign::Verifier::new(openssl::hash::MessageDigest::sha256(), &public).unwrap();
        v.update(format!("{}.{}", parts[0], parts[1]).as_bytes())
            .unwrap();
        assert!(v
            .verify(&URL_SAFE_NO_PAD.decode(parts[2]).unwrap())
            .unwrap());
    }

    #[test]
    fn keys_as_pasted_are_accepted_and_others_refused_with_a_reason() {
        let pem = rsa_pem();
        let flat = format!("  {}  ", pem.trim().replace('\n', "\\n"));
        assert_eq!(normalize_key(&flat), pem);
        assert_eq!(normalize_key(&pem.replace('\n', "\r\n")), pem);
        assert!(check_key(&normalize_key(&flat)).is_ok());
        // PKCS#8 holds RSA just as well.
        let pkcs8 = PKey::private_key_from_pem(pem.as_bytes())
            .unwrap()
            .private_key_to_pem_pkcs8()
            .unwrap();
        assert!(check_key(std::str::from_utf8(&pkcs8).unwrap()).is_ok());
        let ec = openssl::ec::EcKey::generate(
            &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap(),
        )
        .unwrap();
        let ec = String::from_utf8(ec.private_key_to_pem().unwrap()).unwrap();
        assert!(check_key(&ec).unwrap_err().contains("not an RSA key"));
        assert!(check_key("hello").unwrap_err().contains("not a PEM"));
        let public = PKey::private_key_from_pem(pem.as_bytes())
            .unwrap()
            .public_key_to_pem()
            .unwrap();
        let public = String::from_utf8(public).unwrap();
        assert!(check_key(&public).unwrap_err().contains("a public key"));
        let broken = pem.replace(&pem[100..140], "");
        assert!(check_key(&broken).unwrap_err().contains("cannot read"));
        let encrypted = openssl::rsa::Rsa::private_key_from_pem(pem.as_bytes())
            .unwrap()
            .private_key_to_pem_passphrase(openssl::symm::Cipher::aes_128_cbc(), b"pw")
            .unwrap();
        let encrypted = String::from_utf8(encrypted).unwrap();
        assert!(check_key(&encrypted).unwrap_err().contains("encrypted"));
    }

    #[test]
    fn githubs_message_is_quoted_short_and_clean() {
        assert_eq!(
            message(
                br#"{"message":"A JSON web token could not be decoded","documentation_url":"x"}"#
            ),
            ": A JSON web token could not be decoded"
        );
        assert_eq!(message(b"<html>"), "");
        let long = format!(r#"{{"message":"{}\u0007"}}"#, "a".repeat(500));
        let m = message(long.as_bytes());
        assert!(m.len() <= 202 && !m.contains('\u{7}'));
    }
}
