//! The result of a run (SPEC §4), as JSON.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Submodule {
    pub path: String,
    pub url: String,
    pub commit: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The repository URL without credentials.
    pub url: String,
    /// The revision as asked for (`null`: the default branch).
    pub revision: Option<String>,
    pub commit: String,
    /// The ref the revision resolved to (`refs/heads/main`), `null` for a commit SHA.
    #[serde(rename = "ref")]
    pub reference: Option<String>,
    pub shallow: bool,
    pub depth: Option<u32>,
    pub submodules: Vec<Submodule>,
    pub duration_ms: u64,
    pub received_bytes: u64,
    /// Git LFS files of the top-level tree (absent with `--lfs off` and for `check`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lfs: Option<crate::lfs::Summary>,
    /// The `--connection` name, when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection: Option<String>,
}

impl Report {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a report always serialises")
    }
}
