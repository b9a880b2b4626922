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
    /// What the shared cache did: `hit`, `filled` or `off` (absent for `check`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<&'static str>,
    /// The `--connection` name, when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection: Option<String>,
    /// The commit's committer date in ISO 8601 with its offset, as `git log -1 --pretty=%cI`
    /// (absent for `check`, which may not have the commit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub committer_date: Option<String>,
    /// The verified signature (`--verify-signatures`): format, key fingerprint, signer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<crate::signature::Verified>,
    /// `--sparse`: its directories in the order given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sparse: Option<Vec<String>>,
    /// `--filter`, as given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
}

impl Report {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a report always serialises")
    }
}

/// What `--report FILE` holds after a failure: the failure line and its exit code, and what
/// was asked for when the options got that far.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub error: String,
    pub exit_code: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
}

impl Failure {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a failure always serialises")
    }
}

/// A git time (seconds since the epoch, offset in minutes) as `%cI` prints it:
/// `2005-04-07T22:13:13+02:00`, and `Z` for UTC (git ≥ 2.45).
pub fn iso8601(secs: i64, offset_minutes: i32) -> String {
    let local = secs + i64::from(offset_minutes) * 60;
    let (days, rem) = (local.div_euclid(86_400), local.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let sign = if offset_minutes < 0 { '-' } else { '+' };
    let off = offset_minutes.unsigned_abs();
    let zone = match off {
        0 => "Z".to_string(),
        _ => format!("{sign}{:02}:{:02}", off / 60, off % 60),
    };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}{zone}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn iso8601_is_what_git_prints_for_percent_c_capital_i() {
        // `git log --pretty=%cI` of commits with these dates.
        assert_eq!(super::iso8601(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(
            super::iso8601(1_112_904_793, 120),
            "2005-04-07T22:13:13+02:00"
        );
        assert_eq!(
            super::iso8601(1_709_251_199, -330),
            "2024-02-29T18:29:59-05:30"
        );
    }
}
