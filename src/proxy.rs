//! Which HTTP proxy a URL goes through, from the env vars pods set (`HTTPS_PROXY`,
//! `HTTP_PROXY`, `NO_PROXY`, either case). Decided here, once, so the choice is logged and the
//! HTTP transport (libcurl) is told exactly which proxy to use rather than looking on its own.

use crate::error::{Error, Result};
use crate::redact;
use crate::remote_url::{RepoUrl, Scheme};

/// The proxy variables of the environment, read once by `resolve::resolve` (lower case wins, as
/// with curl), so that a submodule on another host is routed without reading them again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyEnv {
    pub https: Option<String>,
    pub http: Option<String>,
    pub all: Option<String>,
    pub no_proxy: Option<String>,
}

impl ProxyEnv {
    /// `env` reads an env var.
    pub fn read(env: &dyn Fn(&str) -> Option<String>) -> ProxyEnv {
        let get = |upper: &str| {
            env(&upper.to_ascii_lowercase())
                .or_else(|| env(upper))
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        ProxyEnv {
            https: get("HTTPS_PROXY"),
            http: get("HTTP_PROXY"),
            all: get("ALL_PROXY"),
            no_proxy: get("NO_PROXY"),
        }
    }
}

/// The proxy URL for `url`, if any.
pub fn choose(url: &RepoUrl, vars: &ProxyEnv) -> Result<Option<String>> {
    let proxy = match url.scheme {
        Scheme::Https => vars.https.clone().or_else(|| vars.all.clone()),
        Scheme::Http => vars.http.clone().or_else(|| vars.all.clone()),
        // git:// and ssh:// do not go through HTTP proxies (as with git itself).
        Scheme::Ssh | Scheme::Git | Scheme::File => None,
    };
    let Some(proxy) = proxy else { return Ok(None) };
    if let Some(no_proxy) = &vars.no_proxy {
        if no_proxy_matches(no_proxy, url.host_str(), url.port) {
            return Ok(None);
        }
    }
    if !proxy.contains("://") {
        // Like curl: a bare host:port means an http proxy.
        return Ok(Some(format!("http://{proxy}")));
    }
    let scheme = proxy
        .split("://")
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(Error::invalid(format!(
            "proxy `{}`: only http:// and https:// proxies are supported (not {scheme}://)",
            redact::url(&proxy)
        )));
    }
    Ok(Some(proxy))
}

/// `NO_PROXY` as curl reads it: `*`, host names matching themselves and their subdomains
/// (a leading dot is optional), IP addresses, each optionally with `:port`.
pub fn no_proxy_matches(list: &str, host: &str, port: Option<u16>) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    list.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|entry| {
            if entry == "*" {
                return true;
            }
            let (name, entry_port) = match entry.rsplit_once(':') {
                Some((n, p)) if !n.contains(':') || n.ends_with(']') => (n, p.parse::<u16>().ok()),
                _ => (entry, None),
            };
            if let (Some(ep), Some(p)) = (entry_port, port) {
                if ep != p {
                    return false;
                }
            }
            let name = name
                .trim_start_matches("*.")
                .trim_start_matches('.')
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_ascii_lowercase();
            host == name || host.ends_with(&format!(".{name}"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::path::Path;

    fn pick(url: &str, vars: &[(&str, &str)]) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let u = RepoUrl::parse(url, Path::new("/")).unwrap();
        choose(&u, &ProxyEnv::read(&|k| map.get(k).cloned())).unwrap()
    }

    #[test]
    fn scheme_decides_which_variable() {
        let vars = [("HTTPS_PROXY", "http://p:3128"), ("http_proxy", "p2:8080")];
        assert_eq!(
            pick("https://h/r.git", &vars).as_deref(),
            Some("http://p:3128")
        );
        assert_eq!(
            pick("http://h/r.git", &vars).as_deref(),
            Some("http://p2:8080")
        );
        assert_eq!(
            pick(
                "http://h/r.git",
                &[("http_proxy", "p2:8080"), ("no_proxy", "h")]
            ),
            None
        );
        assert_eq!(pick("git@h:r.git", &vars), None);
        assert_eq!(pick("git://h/r.git", &vars), None);
    }

    #[test]
    fn no_proxy_forms() {
        assert!(no_proxy_matches("*", "a.b", None));
        assert!(no_proxy_matches("example.com", "git.example.com", None));
        assert!(no_proxy_matches(".example.com", "example.com", None));
        assert!(no_proxy_matches(
            "10.0.0.1, 127.0.0.1",
            "127.0.0.1",
            Some(80)
        ));
        assert!(no_proxy_matches("127.0.0.1:8080", "127.0.0.1", Some(8080)));
        assert!(!no_proxy_matches("127.0.0.1:8080", "127.0.0.1", Some(9090)));
        assert!(!no_proxy_matches("ample.com", "example.com", None));
        let vars = [("HTTPS_PROXY", "http://p:3128"), ("NO_PROXY", "h")];
        assert_eq!(pick("https://h/r.git", &vars), None);
    }
}
