//! The examples stay true: the catalog parses, every gitinit invocation in the Kubernetes
//! manifests is accepted by the CLI, and the CI smoke script passes against a local server.

#[path = "support/mod.rs"]
mod common;

use std::path::Path;
use std::process::Command;

use common::{fixtures, run, HttpServer};

fn examples() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples"))
}

#[test]
fn the_example_catalog_parses_and_its_urls_are_valid() {
    let cat = gitinit::catalog::Catalog::load(&examples().join("connections.yaml")).unwrap();
    let names: Vec<&str> = cat.connections.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "ripgrep",
            "private-github",
            "gitlab",
            "bitbucket-cloud",
            "bitbucket-server"
        ]
    );
    for c in &cat.connections {
        let url = gitinit::remote_url::RepoUrl::parse(&c.url, Path::new("/")).unwrap();
        assert!(
            url.credentials.is_none(),
            "no secret in the example catalog"
        );
        gitinit::flags::parse(&c.flags).unwrap();
    }
    let server = cat.select(Some("bitbucket-server")).unwrap();
    assert_eq!(
        gitinit::remote_url::RepoUrl::parse(&server.url, Path::new("/"))
            .unwrap()
            .port,
        Some(7999)
    );
}

/// Every container of the manifests that runs gitinit (or its `polyaxon` name) gets arguments
/// the CLI accepts.
#[test]
fn manifest_invocations_parse() {
    let mut seen = 0;
    for file in [
        "job.yaml",
        "pod.yaml",
        "polyaxon.yaml",
        "cache-job.yaml",
        "github-app.yaml",
    ] {
        let text = std::fs::read_to_string(examples().join(file)).unwrap();
        let doc: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        let spec = if doc["kind"] == "Job" {
            &doc["spec"]["template"]["spec"]
        } else {
            &doc["spec"]
        };
        for c in spec["initContainers"].as_array().unwrap() {
            let mut argv: Vec<String> = vec!["gitinit".into()];
            for part in [&c["command"], &c["args"]] {
                if let Some(list) = part.as_array() {
                    argv.extend(list.iter().map(|v| v.as_str().unwrap().to_string()));
                }
            }
            if argv.get(1).map(String::as_str) == Some("polyaxon") {
                argv.remove(1);
            }
            gitinit::cli::command("test".into())
                .try_get_matches_from(&argv)
                .unwrap_or_else(|e| panic!("{file}: {argv:?}: {e}"));
            seen += 1;
        }
    }
    assert_eq!(seen, 5);
}

#[test]
fn the_ci_smoke_script_passes_against_a_local_server() {
    let fx = fixtures();
    let http = HttpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("bash");
    common::clean_env(&mut cmd, dir.path());
    cmd.arg(examples().join("ci-smoke/smoke.sh"))
        .env("GITINIT", env!("CARGO_BIN_EXE_gitinit"))
        .env("URL", http.http_url("public/basic.git"))
        .env("REVISION", "feature")
        .env("DEST", dir.path().join("repo"));
    let out = run(&mut cmd);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(&format!("is at {}", fx.sha("c4"))),
        "{}",
        out.stdout
    );

    // And it fails, loudly, when the repository cannot be checked.
    let mut cmd = Command::new("bash");
    common::clean_env(&mut cmd, dir.path());
    cmd.arg(examples().join("ci-smoke/smoke.sh"))
        .env("GITINIT", env!("CARGO_BIN_EXE_gitinit"))
        .env("URL", http.http_url("public/nothere.git"))
        .env("DEST", dir.path().join("none"));
    assert_ne!(run(&mut cmd).code, 0);
}

/// Every pod of the manifests passes the Kubernetes "restricted" Pod Security profile: seccomp
/// `RuntimeDefault`, non-root, no privilege escalation, every capability dropped — for each
/// container, init or main, set on it or inherited from the pod.
#[test]
fn manifests_pass_the_restricted_pod_security_profile() {
    for file in [
        "job.yaml",
        "pod.yaml",
        "polyaxon.yaml",
        "cache-job.yaml",
        "github-app.yaml",
    ] {
        let text = std::fs::read_to_string(examples().join(file)).unwrap();
        let doc: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        let spec = if doc["kind"] == "Job" {
            &doc["spec"]["template"]["spec"]
        } else {
            &doc["spec"]
        };
        let pod = &spec["securityContext"];
        for kind in ["initContainers", "containers"] {
            for c in spec[kind].as_array().unwrap() {
                let name = format!("{file}: {}", c["name"]);
                let sc = &c["securityContext"];
                let either = |key: &str| {
                    if sc[key].is_null() {
                        pod[key].clone()
                    } else {
                        sc[key].clone()
                    }
                };
                assert_eq!(
                    either("seccompProfile")["type"],
                    "RuntimeDefault",
                    "{name}: seccompProfile"
                );
                assert_eq!(either("runAsNonRoot"), true, "{name}: runAsNonRoot");
                assert_ne!(either("runAsUser"), 0, "{name}: runAsUser 0");
                assert_eq!(
                    sc["allowPrivilegeEscalation"], false,
                    "{name}: allowPrivilegeEscalation"
                );
                assert_eq!(
                    sc["capabilities"]["drop"],
                    serde_json::json!(["ALL"]),
                    "{name}: capabilities.drop"
                );
            }
        }
    }
}

/// The GitHub Actions example builds the gitinit it runs: no image that nothing builds, and
/// no distroless image (no shell) under a shell script.
#[test]
fn the_github_actions_example_builds_what_it_runs() {
    let text = std::fs::read_to_string(examples().join("ci-smoke/github-actions.yml")).unwrap();
    let doc: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let job = &doc["jobs"]["smoke"];
    assert!(job["container"].is_null(), "no prebuilt image: {job}");
    let runs: Vec<&str> = job["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["run"].as_str())
        .collect();
    let build = runs.iter().position(|r| r.contains("cargo install"));
    let smoke = runs.iter().position(|r| r.contains("smoke.sh"));
    assert!(build.is_some() && build < smoke, "{runs:?}");
}
