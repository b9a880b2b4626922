//! The command line (SPEC §1, §2). Only parsing lives here: no I/O, no decisions; those are in
//! [`crate::resolve`]. Every option also reads an env var; their values are hidden from `--help`
//! because a URL may carry a token.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "gitinit",
    about = "Put a git repository at an exact revision into a directory (a Kubernetes init container, a laptop, CI)",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Clone (or update) the repository at the revision into --dest (or `clone URL DIR`, as git).
    #[command(after_help = CLONE_EXAMPLES)]
    Clone(CloneCmd),
    /// Verify URL, credentials and revision without writing anything; print the commit SHA and ref.
    Check(ConnArgs),
    /// Drop-in for Polyaxon's init container: `initializer git --repo-path P --url U ...`.
    Initializer(InitializerArgs),
}

/// The end of `clone --help`: what people look for first.
const CLONE_EXAMPLES: &str = "Examples:
  gitinit clone https://github.com/org/repo /workspace
  gitinit clone --url git@github.com:org/repo.git --revision v1.2.0 --dest /workspace --depth 1
  POLYAXON_GIT_CREDENTIALS=user:token gitinit clone --url https://gitlab.example.com/org/repo --dest /workspace

Exit codes: 0 done, 1 bug, 2 invalid input, 3 authentication, 4 repository not found (or
refused), 5 revision not found, 6 network after retries, 7 destination, 8 trust (TLS, SSH host key), 9 signature not trusted (--verify-signatures).";

#[derive(Debug, Args)]
pub struct InitializerArgs {
    #[command(subcommand)]
    pub kind: InitializerKind,
}

#[derive(Debug, Subcommand)]
pub enum InitializerKind {
    /// What Polyaxon's converter passes to its git init container (`--flags` as a JSON list).
    Git(CloneArgs),
}

/// `clone`: its options, and git's positional spelling `gitinit clone URL [DIR]` (not offered by
/// `initializer git`, whose arguments are Polyaxon's).
#[derive(Debug, Args)]
pub struct CloneCmd {
    #[command(flatten)]
    pub args: CloneArgs,

    /// The repository, as `git clone URL`: the same as --url.
    #[arg(value_name = "URL")]
    pub repository: Option<String>,

    /// The destination, as `git clone URL DIR`: the same as --dest.
    #[arg(value_name = "DIR", requires = "repository")]
    pub directory: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CloneArgs {
    #[command(flatten)]
    pub conn: ConnArgs,

    /// Where the working tree goes (created if absent).
    #[arg(
        long,
        visible_alias = "repo-path",
        env = "GITINIT_DEST",
        value_name = "DIR"
    )]
    pub dest: Option<PathBuf>,

    /// Allow emptying a non-empty destination that holds something else (its contents only; the directory itself stays).
    #[arg(long, env = "GITINIT_CLEAN", value_parser = EnvBool)]
    pub clean: bool,

    /// Shallow clone of N commits: the same as the flag `--depth N`.
    #[arg(long, env = "GITINIT_DEPTH", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub depth: Option<u32>,

    /// Submodules: recursive (as the flag --recurse-submodules), shallow (plus --shallow-submodules) or off (the default).
    #[arg(long, env = "GITINIT_SUBMODULES", value_enum, value_name = "MODE")]
    pub submodules: Option<SubmodulesMode>,

    /// Write the files commit, url and committer-date there (Tekton's git-clone results; no trailing newline).
    #[arg(long, env = "GITINIT_RESULTS_DIR", value_name = "DIR")]
    pub results_dir: Option<PathBuf>,

    /// Git LFS: auto (default) replaces each LFS pointer of the checkout by its file; off keeps the pointers (as GIT_LFS_SKIP_SMUDGE=1).
    #[arg(long, env = "GITINIT_LFS", value_enum, value_name = "MODE")]
    pub lfs: Option<LfsMode>,

    /// Only these LFS paths: comma-separated, gitignore-like (as git-lfs's lfs.fetchinclude).
    #[arg(long, env = "GITINIT_LFS_INCLUDE", value_name = "PATTERNS")]
    pub lfs_include: Option<String>,

    /// Not these LFS paths: comma-separated, gitignore-like (as git-lfs's lfs.fetchexclude).
    #[arg(long, env = "GITINIT_LFS_EXCLUDE", value_name = "PATTERNS")]
    pub lfs_exclude: Option<String>,

    /// A directory shared by runs (a ReadWriteMany volume, a node's hostPath): the objects are fetched once into it and taken from it by every run.
    #[arg(long, env = "GITINIT_CACHE", value_name = "DIR")]
    pub cache: Option<PathBuf>,

    /// Keep the cache under this size (e.g. 20G, 500M): the least recently used entries go first, never one in use.
    #[arg(
        long,
        env = "GITINIT_CACHE_MAX_SIZE",
        value_name = "SIZE",
        requires = "cache"
    )]
    pub cache_max_size: Option<String>,

    /// The commit (or the signed tag) must be signed by a key of FILE: SSH allowed_signers lines and/or armored OpenPGP public keys.
    #[arg(long, env = "GITINIT_VERIFY_SIGNATURES", value_name = "FILE")]
    pub verify_signatures: Option<PathBuf>,

    /// Sparse checkout (cone mode) of these directories, comma-separated: top-level files, everything under each, the files of their parents (as git sparse-checkout set).
    #[arg(long, env = "GITINIT_SPARSE", value_name = "DIRS")]
    pub sparse: Option<String>,

    /// Partial clone: blob:none, blob:limit=N or tree:0 (the flag --filter); only the blobs the checkout needs are fetched.
    #[arg(long, env = "GITINIT_FILTER", value_name = "SPEC")]
    pub filter: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SubmodulesMode {
    /// Every submodule, nested ones too, at its recorded commit.
    Recursive,
    /// The same, each fetched at depth 1.
    Shallow,
    /// No submodules.
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LfsMode {
    /// Replace the pointers by their objects.
    Auto,
    /// Keep the pointers.
    Off,
}

#[derive(Debug, Args)]
pub struct ConnArgs {
    /// Repository: https://, http://, ssh://, git@host:org/repo.git, git://, file:// or a local path.
    #[arg(long, visible_alias = "repo", env = "GITINIT_URL")]
    pub url: Option<String>,

    /// Branch, tag, commit SHA (full, or 7+ hex digits) or full ref (refs/pull/1/head); default: the remote's default branch.
    #[arg(
        long,
        visible_aliases = ["branch", "ref"],
        env = "GITINIT_REVISION",
        value_name = "REV"
    )]
    pub revision: Option<String>,

    /// Git-style flags: a JSON list ('["--depth 1","--recurse-submodules"]') or a string ("--depth 1"). Repeatable.
    #[arg(
        long,
        env = "GITINIT_FLAGS",
        value_name = "FLAGS",
        allow_hyphen_values = true
    )]
    pub flags: Vec<String>,

    /// YAML connections catalog (Polyaxon `connections:` format).
    #[arg(long, env = "GITINIT_CONNECTIONS", value_name = "FILE")]
    pub connections: Option<PathBuf>,

    /// Connection to pick from the catalog (with --url and no catalog: a label for logs and the report).
    #[arg(long, env = "GITINIT_CONNECTION", value_name = "NAME")]
    pub connection: Option<String>,

    /// Write the JSON result there ('-' = stdout).
    #[arg(long, env = "GITINIT_REPORT", value_name = "FILE")]
    pub report: Option<String>,

    /// SSH private key file (OpenSSH or PEM format).
    #[arg(long, env = "GITINIT_SSH_KEY_FILE", value_name = "FILE")]
    pub ssh_key: Option<PathBuf>,

    /// OpenSSH known_hosts file used to verify SSH host keys.
    #[arg(long, env = "GITINIT_KNOWN_HOSTS", value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,

    /// Do not verify SSH host keys (logged as an insecure warning).
    #[arg(long, env = "GITINIT_INSECURE_SKIP_HOST_KEY_CHECK", value_parser = EnvBool)]
    pub insecure_skip_host_key_check: bool,

    /// Extra trusted CA bundle (PEM) for HTTPS, e.g. a self-hosted GitLab or Bitbucket.
    #[arg(long, env = "GITINIT_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,

    /// Read the credentials from this env var instead of POLYAXON_GIT_CREDENTIALS.
    #[arg(long, env = "GITINIT_CREDENTIALS_ENV", value_name = "VAR")]
    pub credentials_env: Option<String>,

    /// Authenticate as this GitHub App (its id or client id): its installation token is used for the repository and same-host submodules.
    #[arg(long, env = "GITINIT_GITHUB_APP_ID", value_name = "ID")]
    pub github_app_id: Option<String>,

    /// The GitHub App's installation; default: looked up from the repository's owner.
    #[arg(long, env = "GITINIT_GITHUB_APP_INSTALLATION_ID", value_name = "ID")]
    pub github_app_installation_id: Option<String>,

    /// The GitHub App's private key (PEM); or its contents in GITINIT_GITHUB_APP_PRIVATE_KEY.
    #[arg(long, env = "GITINIT_GITHUB_APP_PRIVATE_KEY_FILE", value_name = "FILE")]
    pub github_app_private_key_file: Option<PathBuf>,

    /// GitHub's REST API for the GitHub App (default https://api.github.com; GitHub Enterprise: https://HOST/api/v3).
    #[arg(long, env = "GITINIT_GITHUB_API_URL", value_name = "URL")]
    pub github_api_url: Option<String>,

    /// Limit for the whole run, retries included (e.g. 90s, 10m).
    #[arg(long, env = "GITINIT_TIMEOUT", value_name = "DURATION")]
    pub timeout: Option<String>,

    /// Retries after the first attempt, for transient network failures.
    #[arg(long, env = "GITINIT_RETRIES", value_name = "N", default_value_t = 2)]
    pub retries: u32,

    /// Log format on stderr.
    #[arg(long, env = "GITINIT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// More output (-v: debug and the JSON result on stderr; -vv: trace).
    #[arg(short, long, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Errors and warnings only.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The value of a boolean option's env var, as people write it: `1/0`, `yes/no`, `true/false`, in
/// any case. A switch on the command line takes no value, so a value that is none of these came
/// from the env var, which the error names (clap's own error named the switch).
#[derive(Debug, Clone, Copy)]
pub struct EnvBool;

impl clap::builder::TypedValueParser for EnvBool {
    type Value = bool;

    fn parse_ref(
        &self,
        _cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<bool, clap::Error> {
        let text = value.to_string_lossy();
        match text.trim().to_ascii_lowercase().as_str() {
            "1" | "yes" | "true" => Ok(true),
            "0" | "no" | "false" => Ok(false),
            _ => {
                let var = arg
                    .and_then(|a| a.get_env())
                    .map(|v| v.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "the env var".into());
                Err(clap::Error::raw(
                    clap::error::ErrorKind::InvalidValue,
                    format!("{var}=`{text}` is not a boolean: write 1 or 0, yes or no, true or false (any case)\n"),
                ))
            }
        }
    }
}

/// The clap command, with env values hidden from `--help` at every depth (a URL in GITINIT_URL
/// may hold a token): `initializer git` as much as `clone`, and any subcommand added later.
pub fn command(version: String) -> clap::Command {
    use clap::CommandFactory;
    hide_env_values(Cli::command().version(version))
}

fn hide_env_values(cmd: clap::Command) -> clap::Command {
    let cmd = cmd.mut_args(|a| a.hide_env_values(true));
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    names
        .into_iter()
        .fold(cmd, |cmd, name| cmd.mut_subcommand(name, hide_env_values))
}

impl Command {
    pub fn conn(&self) -> &ConnArgs {
        match self {
            Command::Check(c) => c,
            Command::Clone(CloneCmd { args: c, .. })
            | Command::Initializer(InitializerArgs {
                kind: InitializerKind::Git(c),
            }) => &c.conn,
        }
    }

    /// `gitinit clone URL [DIR]`: the positional repository and destination, if given.
    pub fn positional(&self) -> (Option<&str>, Option<&std::path::Path>) {
        match self {
            Command::Clone(c) => (c.repository.as_deref(), c.directory.as_deref()),
            _ => (None, None),
        }
    }

    /// The clone arguments, for `clone` and its Polyaxon spelling.
    pub fn clone_args(&self) -> Option<&CloneArgs> {
        match self {
            Command::Check(_) => None,
            Command::Clone(CloneCmd { args: c, .. })
            | Command::Initializer(InitializerArgs {
                kind: InitializerKind::Git(c),
            }) => Some(c),
        }
    }
}

#[cfg(test)]
mod tests {
    /// Every argument of every command, at every depth, hides its env value.
    #[test]
    fn no_env_value_is_shown_at_any_depth() {
        fn walk(cmd: &clap::Command, path: &str, seen: &mut usize) {
            for a in cmd.get_arguments().filter(|a| a.get_env().is_some()) {
                assert!(
                    a.is_hide_env_values_set(),
                    "`{path}` --{} shows its env value",
                    a.get_id()
                );
                *seen += 1;
            }
            for sc in cmd.get_subcommands() {
                walk(sc, &format!("{path} {}", sc.get_name()), seen);
            }
        }
        let mut seen = 0;
        walk(&super::command("0".into()), "gitinit", &mut seen);
        assert!(
            seen > 30,
            "the walk reached the nested subcommands ({seen})"
        );
    }
}
