//! The LFS endpoint of an SSH remote, as git-lfs finds it: `git-lfs-authenticate <path>
//! download` run over SSH (with the clone's key, the host key checked as for the clone) answers
//! the batch API's URL and the header that authorises it (GitHub, GitLab and Bitbucket all
//! implement it).

use std::collections::HashMap;
use std::io::Read;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde::Deserialize;

use crate::config::Config;
use crate::error::Error;

/// The endpoint `git-lfs-authenticate` answered.
pub struct Answer {
    pub href: String,
    pub header: HashMap<String, String>,
}

#[derive(Deserialize)]
struct Json {
    href: String,
    #[serde(default)]
    header: HashMap<String, String>,
}

/// What `git-lfs-authenticate` may print: a line of JSON, not a file.
const MAX_ANSWER: u64 = 64 << 10;

/// Asks the SSH server of `cfg.remote.url`. `Ok(None)`: it has no `git-lfs-authenticate` (git-lfs
/// then uses the HTTPS twin of the URL, and so do we).
pub fn authenticate(cfg: &Config) -> Result<Option<Answer>, Error> {
    let url = &cfg.remote.url;
    let shown = url.to_string();
    let Some(ssh) = &cfg.remote.ssh else {
        return Ok(None);
    };
    let Some(key) = &ssh.key else {
        return Ok(None);
    };
    let port = url.port.unwrap_or(22);
    let host = url.host_str();
    let network = |detail: String| Error::Network {
        url: shown.clone(),
        detail,
    };
    let io = cfg.remote.io_timeout.max(Duration::from_secs(1));
    let addr = (host.trim_start_matches('[').trim_end_matches(']'), port)
        .to_socket_addrs()
        .map_err(|e| network(format!("cannot resolve {host}: {e}")))?
        .next()
        .ok_or_else(|| network(format!("{host} has no address")))?;
    let tcp = TcpStream::connect_timeout(&addr, io.min(Duration::from_secs(30)))
        .map_err(|e| network(format!("cannot connect for git-lfs-authenticate: {e}")))?;
    let _ = tcp.set_read_timeout(Some(io));
    let _ = tcp.set_write_timeout(Some(io));
    let mut session =
        ssh2::Session::new().map_err(|e| network(format!("libssh2: {}", e.message())))?;
    session.set_timeout(io.as_millis().min(u32::MAX as u128) as u32);
    session.set_tcp_stream(tcp);
    session
        .handshake()
        .map_err(|e| network(format!("SSH handshake: {}", e.message())))?;
    let (blob, _) = session
        .host_key()
        .ok_or_else(|| network("the server offered no host key".into()))?;
    crate::ssh::verify_host_key(&ssh.host_keys, host, port, blob)
        .map_err(|(detail, hint)| Error::Trust { detail, hint })?;
    let user = url
        .ssh_user
        .as_deref()
        .filter(|u| !u.is_empty())
        .unwrap_or("git");
    session
        .userauth_pubkey_memory(user, None, &key.private, key.passphrase.as_deref())
        .map_err(|e| Error::Auth {
            url: shown.clone(),
            detail: format!(
                "the server did not accept the key from {} for git-lfs-authenticate: {}",
                key.source,
                e.message()
            ),
            hint: "Use the deploy key that clones the repository".into(),
        })?;
    let mut channel = session
        .channel_session()
        .map_err(|e| network(format!("SSH channel: {}", e.message())))?;
    let path = url.path.trim_start_matches('/');
    let quoted = format!("'{}'", path.replace('\'', "'\\''"));
    channel
        .exec(&format!("git-lfs-authenticate {quoted} download"))
        .map_err(|e| network(format!("git-lfs-authenticate: {}", e.message())))?;
    let mut out = Vec::new();
    channel
        .by_ref()
        .take(MAX_ANSWER)
        .read_to_end(&mut out)
        .map_err(|e| network(format!("reading git-lfs-authenticate's answer: {e}")))?;
    let _ = channel.wait_close();
    let status = channel.exit_status().unwrap_or(-1);
    if status != 0 {
        tracing::info!(
            status,
            "the SSH server has no git-lfs-authenticate: asking the LFS server over HTTPS"
        );
        return Ok(None);
    }
    let json: Json = serde_json::from_slice(&out).map_err(|e| Error::BadServer {
        url: shown.clone(),
        detail: format!("git-lfs-authenticate answered something that is not its JSON: {e}"),
    })?;
    Ok(Some(Answer {
        href: json.href,
        header: json.header,
    }))
}
