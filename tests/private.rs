//! Private repositories over HTTP(S): credentials from every source, redirects, proxies. Every
//! secret-bearing test greps all outputs and the checkout for the secret.

#[path = "support/mod.rs"]
mod common;

use common::{assert_no_secret, fixtures, git_out, gitinit, ok, run, HttpServer, Output, Proxy};

const ALICE_PASSWORD: &str = "s3cr:et@/%x";

fn clone(url: &str, env: &[(&str, &str)], extra: &[&str]) -> (Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = gitinit();
    cmd.envs(env.iter().copied())
        .env(
            "GITINIT_TERMINATION_LOG",
            dir.path().join("termination-log"),
        )
        .args(["clone", "-v", "--report", "-", "--url", url, "--dest"])
        .arg(dir.path().join("work"))
        .args(extra);
    (run(&mut cmd), dir)
}

#[test]
fn a_credentials_store_file_matches_by_host() {
    let fx = fixtures();
    let http = HttpServer::start();
    let url = http.http_url("private/basic.git");
    let store_dir = tempfile::tempdir().unwrap();
    let store = store_dir.path().join("git-credentials");
    std::fs::write(
        &store,
        format!(
            "https://nobody:nothing@example.com\nhttp://alice:s3cr%3Aet%40%2F%25x@127.0.0.1:{}\n",
            http.http_port
        ),
    )
    .unwrap();
    let (out, dir) = clone(
        &url,
        &[("POLYAXON_GIT_CREDENTIALS_STORE", store.to_str().unwrap())],
        &[],
    );
    ok(&out);
    assert_eq!(
        git_out(&dir.path().join("work"), &["rev-parse", "HEAD"]),
        fx.sha("c3")
    );
    assert_no_secret(&[&out.stdout, &out.stderr], dir.path(), ALICE_PASSWORD);
}

#[test]
fn credentials_env_names_another_variable() {
    let http = HttpServer::start();
    let url = http.http_url("private/basic.git");
    let (out, dir) = clone(
        &url,
        &[
            ("SHIPPABLE_INTEGRATION_TOKEN", "bob:plainpass"),
            ("POLYAXON_GIT_CREDENTIALS", "bob:wrong"),
        ],
        &["--credentials-env", "SHIPPABLE_INTEGRATION_TOKEN"],
    );
    ok(&out);
    assert_no_secret(&[&out.stdout, &out.stderr], dir.path(), "plainpass");
    let (out, _) = clone(&url, &[], &["--credentials-env", "UNSET_VARIABLE"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("UNSET_VARIABLE"), "{}", out.stderr);
}

#[test]
fn redirects_are_followed_but_credentials_stay_on_their_host() {
    let fx = fixtures();
    let http = HttpServer::start();
    let (out, dir) = clone(&http.http_url("redirect/basic.git"), &[], &[]);
    ok(&out);
    assert_eq!(
        git_out(&dir.path().join("work"), &["rev-parse", "HEAD"]),
        fx.sha("c3")
    );

    let (out, dir) = clone(
        &http.http_url("elsewhere/basic.git"),
        &[(
            "POLYAXON_GIT_CREDENTIALS",
            &format!("alice:{ALICE_PASSWORD}"),
        )],
        &[],
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("redirected to another host, localhost"),
        "{}",
        out.stderr
    );
    assert_no_secret(&[&out.stdout, &out.stderr], dir.path(), ALICE_PASSWORD);
    // The server never saw alice's credentials on the other host name.
    assert!(!http.log().contains("alice"), "{}", http.log());
}

#[test]
fn https_goes_through_the_proxy_from_the_environment() {
    let fx = fixtures();
    let http = HttpServer::start();
    let proxy = Proxy::start(None);
    let ca = common::ca_file();
    let (out, dir) = clone(
        &http.https_url("public/basic.git"),
        &[("HTTPS_PROXY", &proxy.url())],
        &["--ca-file", ca.to_str().unwrap()],
    );
    ok(&out);
    assert_eq!(
        git_out(&dir.path().join("work"), &["rev-parse", "HEAD"]),
        fx.sha("c3")
    );
    assert!(
        proxy
            .log()
            .contains(&format!("CONNECT 127.0.0.1:{}", http.https_port)),
        "the traffic went through the proxy: {}",
        proxy.log()
    );

    // NO_PROXY sends it around the proxy, as asked.
    let proxy2 = Proxy::start(None);
    let (out, _) = clone(
        &http.https_url("public/basic.git"),
        &[
            ("https_proxy", &proxy2.url()),
            ("no_proxy", "localhost,127.0.0.1"),
        ],
        &["--ca-file", ca.to_str().unwrap()],
    );
    ok(&out);
    assert!(
        !proxy2
            .log()
            .contains(&format!("CONNECT 127.0.0.1:{}", http.https_port)),
        "{}",
        proxy2.log()
    );
}

/// A proxy that wants credentials and gets none fails as a network failure that names the
/// proxy (tinyproxy with BasicAuth).
#[test]
fn a_proxy_that_wants_credentials() {
    let http = HttpServer::start();
    let proxy = Proxy::start(Some(("proxyuser", "proxy-pass-42")));
    let ca = common::ca_file();
    let (out, _) = clone(
        &http.https_url("public/basic.git"),
        &[("HTTPS_PROXY", &proxy.url())],
        &["--ca-file", ca.to_str().unwrap(), "--retries", "0"],
    );
    assert_eq!(out.code, 6, "{}", out.stderr);
    assert!(out.stderr.contains("proxy"), "{}", out.stderr);

    // With its credentials in the proxy URL, every run gets through (libgit2's own client
    // failed about half of these re-sent CONNECTs to tinyproxy), and none prints them.
    for _ in 0..5 {
        let (out, dir) = clone(
            &http.https_url("public/basic.git"),
            &[(
                "HTTPS_PROXY",
                &proxy
                    .url()
                    .replace("http://", "http://proxyuser:proxy-pass-42@"),
            )],
            &["--ca-file", ca.to_str().unwrap(), "--retries", "0"],
        );
        ok(&out);
        assert_no_secret(&[&out.stdout, &out.stderr], dir.path(), "proxy-pass-42");
    }
}

/// Plain http:// goes through the proxy too (libgit2's own client went around it).
#[test]
fn plain_http_goes_through_the_proxy() {
    let fx = fixtures();
    let http = HttpServer::start();
    let proxy = Proxy::start(None);
    let (out, dir) = clone(
        &http.http_url("public/basic.git"),
        &[("HTTP_PROXY", &proxy.url())],
        &[],
    );
    ok(&out);
    assert_eq!(
        git_out(&dir.path().join("work"), &["rev-parse", "HEAD"]),
        fx.sha("c3")
    );
    assert!(
        proxy.log().contains(&format!(
            "GET http://127.0.0.1:{}/public/basic.git/info/refs",
            http.http_port
        )),
        "the request went through the proxy: {}",
        proxy.log()
    );
    let proxy2 = Proxy::start(None);
    let (out, _) = clone(
        &http.http_url("public/basic.git"),
        &[("HTTP_PROXY", &proxy2.url()), ("NO_PROXY", "127.0.0.1")],
        &[],
    );
    ok(&out);
    assert!(!proxy2.log().contains("GET http://"), "{}", proxy2.log());
}

/// Credentials in the proxy URL are sent to the proxy (after its 407), never to the server,
/// and never printed.
#[test]
fn proxy_credentials_in_the_proxy_url() {
    let fx = fixtures();
    let http = HttpServer::start();
    let proxy = common::AuthProxy::start("proxyuser", "proxy-pass-42");
    let ca = common::ca_file();
    let (out, dir) = clone(
        &http.https_url("public/basic.git"),
        &[(
            "HTTPS_PROXY",
            &proxy.url_with_credentials("proxyuser", "proxy-pass-42"),
        )],
        &["--ca-file", ca.to_str().unwrap(), "--retries", "0"],
    );
    ok(&out);
    assert_eq!(
        git_out(&dir.path().join("work"), &["rev-parse", "HEAD"]),
        fx.sha("c3")
    );
    let requests = proxy.requests.lock().unwrap().clone();
    let target = format!("CONNECT 127.0.0.1:{} ", http.https_port);
    assert!(
        requests.iter().all(|r| r.starts_with(&target)),
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.contains("Proxy-Authorization: Basic")),
        "{requests:?}"
    );
    assert_no_secret(&[&out.stdout, &out.stderr], dir.path(), "proxy-pass-42");
}
