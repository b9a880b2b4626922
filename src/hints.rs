//! What the user can do about a failure, in the words of gitinit's own options and env vars:
//! the one place where the layers below (git, LFS) find a command-line spelling. Their own
//! messages say what happened; the hint that names an option comes from here.

use crate::config::Remote;
use crate::credentials::Credentials;

/// A private CA, for certificate failures.
pub const HINT_CA: &str =
    "For a self-hosted server with its own CA, pass the CA bundle with --ca-file (GITINIT_CA_FILE)";
/// Proxy failures.
pub const HINT_PROXY: &str = "check HTTPS_PROXY / HTTP_PROXY; proxy credentials go in its URL as http://user:password@proxy:port";
/// The knob behind a stall's cut.
pub const IO_TIMEOUT: &str = "GITINIT_IO_TIMEOUT";
/// The variable that holds an SSH key's passphrase.
pub const SSH_PASSPHRASE: &str = "GITINIT_SSH_KEY_PASSPHRASE";
/// A destination whose `.git` (or a submodule's) points elsewhere.
pub const START_AFRESH: &str = "gitinit writes only inside --dest. Pass --clean to start afresh";
/// A repository with LFS files that cannot be fetched from where it is.
pub const LFS_OFF: &str = "pass --lfs off to keep the pointers";

/// A redirect to another origin (`theirs`), with credentials: use the new URL (`url`).
pub fn moved(theirs: &str, url: &str) -> String {
    format!("If the repository moved to {theirs}, use that URL: --url {url}")
}

/// What to do about a refused login, in the words of the provider's own settings.
pub fn auth(remote: &Remote) -> String {
    if let Some(ssh) = &remote.ssh {
        return match &ssh.key {
            None => "Give the deploy key's private key with --ssh-key FILE, GITINIT_SSH_KEY or POLYAXON_SSH_PATH".into(),
            Some(_) => "Add this key's public half as a deploy key of this repository (read access), or give the private key of the deploy key it already has".into(),
        };
    }
    https(remote.url.host_str(), remote.credentials.as_ref())
}

fn https(host: &str, credentials: Option<&Credentials>) -> String {
    match credentials {
        None => format!(
            "Set {} to `username:password` or an access token that can read this repository",
            crate::config::CREDENTIALS_ENV
        ),
        Some(c) => {
            let host = host.to_ascii_lowercase();
            if host.contains("bitbucket") && c.username.contains('@') {
                format!("Bitbucket app passwords and API tokens need your Bitbucket username, not your email address (`{}`): find it under Personal settings > Account settings", c.username)
            } else if host == "github.com" {
                "Check the token: not expired, and allowed to read this repository (classic token: `repo` scope; fine-grained: Contents read on this repository)".into()
            } else if host.contains("gitlab") {
                "Check the token: not expired, with the `read_repository` scope, and a member of this project".into()
            } else {
                "Check that the username and password (or token) are right, not expired, and allowed to read this repository".into()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_name_what_each_provider_needs() {
        let auth_hint = https;
        let email = Credentials::parse("me@example.com:app-pass", "bitbucket.org");
        assert!(auth_hint("bitbucket.org", email.as_ref()).contains("not your email"));
        let user = Credentials::parse("me:app-pass", "bitbucket.org");
        assert!(!auth_hint("bitbucket.org", user.as_ref()).contains("email"));
        let token = Credentials::parse("ghp_x", "github.com");
        assert!(auth_hint("github.com", token.as_ref()).contains("`repo` scope"));
        let token = Credentials::parse("glpat-x", "gitlab.com");
        assert!(auth_hint("gitlab.com", token.as_ref()).contains("read_repository"));
        assert!(auth_hint("git.example.com", None).contains("POLYAXON_GIT_CREDENTIALS"));
    }

    #[test]
    fn the_ssh_login_hint_is_a_whole_sentence() {
        let key = crate::config::SshKey {
            private: String::new(),
            passphrase: None,
            source: "--ssh-key k".into(),
            encrypted: false,
        };
        let remote = Remote {
            url: crate::remote_url::RepoUrl::parse(
                "git@h.example.com:o/r.git",
                std::path::Path::new("/"),
            )
            .unwrap(),
            credentials: None,
            ssh: Some(crate::config::SshConfig {
                key: Some(key),
                host_keys: crate::config::HostKeys::Builtin,
            }),
            proxy: None,
            proxy_env: Default::default(),
            credentials_store: None,
            ca_file: None,
            ssl_verify: true,
            io_timeout: std::time::Duration::from_secs(1),
        };
        let hint = auth(&remote);
        assert!(!hint.ends_with("that is"), "{hint}");
        assert!(hint.contains("deploy key"), "{hint}");
    }
}
