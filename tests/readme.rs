//! README.md is the reference users read: every option and env var `--help` shows is documented
//! there, and every exit code of the error type is in its table.

#[path = "support/mod.rs"]
mod common;

use common::{gitinit, run};

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

#[test]
fn every_option_and_env_var_of_help_is_in_the_readme() {
    let readme = readme();
    for sub in [&["clone"][..], &["check"], &["initializer", "git"]] {
        let out = run(gitinit().args(sub).arg("--help"));
        assert_eq!(out.code, 0, "{}", out.stderr);
        let mut found = 0;
        for word in out
            .stdout
            .split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']')
        {
            let word = word.trim_end_matches(['.', ':']);
            let opt = word.split('=').next().unwrap_or(word);
            let is_option = opt.starts_with("--")
                && opt.len() > 2
                && opt[2..].chars().all(|c| c.is_ascii_lowercase() || c == '-');
            let env = word
                .strip_prefix("env:")
                .unwrap_or(word)
                .split('=')
                .next()
                .unwrap_or_default();
            let is_env = env.starts_with("GITINIT_") || env.starts_with("POLYAXON_");
            if is_option && opt != "--help" && opt != "--version" {
                assert!(
                    readme.contains(&format!("`{opt}")),
                    "README does not document {opt} ({sub:?})"
                );
                found += 1;
            }
            if is_env {
                assert!(readme.contains(env), "README does not document {env}");
            }
        }
        assert!(
            found > 10,
            "{sub:?} --help lists its options: {}",
            out.stdout
        );
    }
    // Env vars read outside clap.
    for var in [
        "POLYAXON_GIT_CREDENTIALS",
        "POLYAXON_GIT_CREDENTIALS_STORE",
        "POLYAXON_SSH_PATH",
        "POLYAXON_SSH_PRIVATE_KEY",
        "GITINIT_SSH_KEY",
        "GITINIT_SSH_KEY_PASSPHRASE",
        "GITINIT_GITHUB_APP_PRIVATE_KEY",
        "GITINIT_TERMINATION_LOG",
        "GITINIT_IO_TIMEOUT",
        "HTTPS_PROXY",
        "NO_PROXY",
        "RUST_LOG",
    ] {
        assert!(readme.contains(var), "README does not document {var}");
    }
}

#[test]
fn help_never_shows_env_values() {
    let out = run(gitinit()
        .env("GITINIT_URL", "https://user:hunter2@example.com/r.git")
        .args(["clone", "--help"]));
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("GITINIT_URL"));
    assert!(!out.stdout.contains("hunter2"), "{}", out.stdout);
}

#[test]
fn every_exit_code_is_in_the_readme_table() {
    let readme = readme();
    for code in 0..=9 {
        assert!(
            readme.contains(&format!("\n| {code} | ")),
            "exit code {code} missing from README"
        );
    }
}
