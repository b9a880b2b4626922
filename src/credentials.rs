//! HTTPS credentials as users hand them to us (SPEC §2). The `Debug` form is redacted so a
//! stray `{:?}` can never print a secret.

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Credentials {{ username: {:?}, password: *** }}",
            self.username
        )
    }
}

impl Credentials {
    /// `username:password` (split at the FIRST colon, so passwords may hold `:`), or a bare
    /// access token, which is sent with the token user name the provider expects.
    pub fn parse(value: &str, host: &str) -> Option<Credentials> {
        let value = value.trim_matches(|c: char| c == '\n' || c == '\r' || c == ' ');
        if value.is_empty() {
            return None;
        }
        Some(match value.split_once(':') {
            Some((user, pass)) => Credentials {
                username: user.to_string(),
                password: pass.to_string(),
            },
            None => Self::token(value, host),
        })
    }

    /// User-info written into an http(s) URL, as written (percent-encoded): `user:pass@` or a
    /// bare `token@`.
    pub fn from_url_userinfo(user: &str, password: Option<&str>, host: &str) -> Credentials {
        let user = percent_decode(user);
        match password {
            Some(pass) => Credentials {
                username: user,
                password: percent_decode(pass),
            },
            None => Self::token(&user, host),
        }
    }

    fn token(token: &str, host: &str) -> Credentials {
        let token_user = match host.to_ascii_lowercase().as_str() {
            "github.com" => Some("x-access-token"),
            "gitlab.com" => Some("oauth2"),
            "bitbucket.org" => Some("x-token-auth"),
            _ => None,
        };
        match token_user {
            Some(user) => Credentials {
                username: user.to_string(),
                password: token.to_string(),
            },
            // What Polyaxon does for other hosts: the token as the user name.
            None => Credentials {
                username: token.to_string(),
                password: String::new(),
            },
        }
    }

    /// Looks `scheme://host[:port]/path` up in a git-credentials file (`https://user:pass@host`
    /// lines, as `git credential-store` writes them). A line with a path matches only URLs under
    /// that path; the most specific line wins.
    pub fn from_store(
        text: &str,
        scheme: &str,
        host: &str,
        port: Option<u16>,
        path: &str,
    ) -> Option<Credentials> {
        let mut best: Option<(usize, Credentials)> = None;
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let Ok(u) = url::Url::parse(line) else {
                continue;
            };
            let same_host = u.host_str().is_some_and(|h| h.eq_ignore_ascii_case(host));
            if u.scheme() != scheme || !same_host || u.port() != port || u.username().is_empty() {
                continue;
            }
            let prefix = u.path().trim_end_matches('/');
            let wanted = path.trim_end_matches('/');
            let under = prefix.is_empty()
                || wanted == prefix
                || wanted
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('/'));
            if !under || best.as_ref().is_some_and(|(len, _)| *len > prefix.len()) {
                continue;
            }
            let creds = Self::from_url_userinfo(u.username(), u.password(), host);
            best = Some((prefix.len() + 1, creds));
        }
        best.map(|(_, c)| c)
    }
}

/// Decodes user-info as URLs encode it (RFC 3986, as libcurl and git read it): `%XX` is the
/// byte XX, and everything else, `+` included, stands for itself (form decoding would turn `+`
/// into a space and break a password). A `%` not followed by two hex digits is kept as it is.
/// The one decoder for secrets from a URL, a credentials file or a proxy URL.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_password_splits_at_first_colon() {
        let c = Credentials::parse("alice:p:a@s/s%", "example.com").unwrap();
        assert_eq!(c.username, "alice");
        assert_eq!(c.password, "p:a@s/s%");
    }

    #[test]
    fn bare_tokens_get_the_provider_user() {
        for (host, user) in [
            ("github.com", "x-access-token"),
            ("gitlab.com", "oauth2"),
            ("bitbucket.org", "x-token-auth"),
        ] {
            let c = Credentials::parse("tok123", host).unwrap();
            assert_eq!((c.username.as_str(), c.password.as_str()), (user, "tok123"));
        }
        let c = Credentials::parse("tok123", "git.example.com").unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("tok123", ""));
    }

    #[test]
    fn store_matches_scheme_host_and_path() {
        let store = "https://bob:b%40d@git.example.com\nhttps://alice:a%3Ab@git.example.com/team\nhttp://eve:x@other\n";
        let c = Credentials::from_store(store, "https", "git.example.com", None, "/team/repo.git")
            .unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("alice", "a:b"));
        let c = Credentials::from_store(store, "https", "GIT.example.com", None, "/other/repo.git")
            .unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("bob", "b@d"));
        assert!(Credentials::from_store(store, "https", "other", None, "/r").is_none());
        assert!(
            Credentials::from_store(store, "https", "git.example.com", Some(8443), "/r").is_none()
        );
    }

    #[test]
    fn percent_decoding_keeps_plus_and_stray_percent_signs() {
        for (raw, decoded) in [
            ("p+ss", "p+ss"),
            ("p%2Bss", "p+ss"),
            ("a%2Fb%3Fc%23d%40e%3Af", "a/b?c#d@e:f"),
            ("%C3%A9t%C3%A9", "été"),
            ("100%", "100%"),
            ("%zz%4", "%zz%4"),
            ("%41%", "A%"),
            ("", ""),
        ] {
            assert_eq!(percent_decode(raw), decoded, "{raw}");
        }
    }

    #[test]
    fn url_userinfo_is_percent_decoded() {
        let c = Credentials::from_url_userinfo("al%40ice", Some("p+a%2Fss"), "h");
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("al@ice", "p+a/ss")
        );
        let c = Credentials::from_url_userinfo("tok%2B1", None, "github.com");
        assert_eq!(c.password, "tok+1");
    }

    #[test]
    fn debug_is_redacted() {
        let c = Credentials::parse("alice:hunter2", "h").unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
