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

    /// User-info written into an http(s) URL: `user:pass@` or a bare `token@`.
    pub fn from_url_userinfo(user: &str, password: Option<&str>, host: &str) -> Credentials {
        match password {
            Some(pass) => Credentials {
                username: user.to_string(),
                password: pass.to_string(),
            },
            None => Self::token(user, host),
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

    /// Every string that must never appear in output.
    pub fn secrets(&self) -> Vec<&str> {
        let mut s = vec![];
        if !self.password.is_empty() {
            s.push(self.password.as_str());
        } else {
            s.push(self.username.as_str());
        }
        s
    }
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
    fn debug_is_redacted() {
        let c = Credentials::parse("alice:hunter2", "h").unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
