//! `--lfs-include` / `--lfs-exclude`: which LFS paths are fetched, with git-lfs's
//! `lfs.fetchinclude` / `lfs.fetchexclude` meaning. Patterns are comma-separated and
//! gitignore-like: one without a `/` matches a file or directory of that name at any depth
//! (`*.bin`, `data`); one with a `/` is anchored at the top (`models/v2`, `/weights/*.pt`); a
//! directory matches everything under it.

use globset::{GlobSet, GlobSetBuilder};

use crate::error::{Error, Result};

/// The paths to fetch: included (or no include list) and not excluded.
#[derive(Debug, Clone)]
pub struct Filter {
    include: Option<GlobSet>,
    exclude: Option<GlobSet>,
}

impl Filter {
    /// `include` and `exclude` as given (comma-separated, may be empty).
    pub fn new(include: Option<&str>, exclude: Option<&str>) -> Result<Filter> {
        Ok(Filter {
            include: set(include, "--lfs-include")?,
            exclude: set(exclude, "--lfs-exclude")?,
        })
    }

    /// Everything.
    pub fn all() -> Filter {
        Filter {
            include: None,
            exclude: None,
        }
    }

    /// Whether `path` (relative to the repository's top, `/`-separated) is fetched.
    pub fn wants(&self, path: &str) -> bool {
        self.include.as_ref().is_none_or(|s| s.is_match(path))
            && !self.exclude.as_ref().is_some_and(|s| s.is_match(path))
    }
}

fn set(patterns: Option<&str>, option: &str) -> Result<Option<GlobSet>> {
    let patterns: Vec<&str> = patterns
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut builder = GlobSetBuilder::new();
    for p in patterns {
        let anchored = p.trim_start_matches('/').trim_end_matches('/');
        let forms = if p.trim_end_matches('/').contains('/') {
            vec![anchored.to_string(), format!("{anchored}/**")]
        } else {
            vec![
                anchored.to_string(),
                format!("{anchored}/**"),
                format!("**/{anchored}"),
                format!("**/{anchored}/**"),
            ]
        };
        for f in forms {
            let glob = globset::GlobBuilder::new(&f)
                .literal_separator(true)
                .build()
                .map_err(|e| Error::invalid(format!("{option} `{p}`: {e}")))?;
            builder.add(glob);
        }
    }
    builder
        .build()
        .map(Some)
        .map_err(|e| Error::invalid(format!("{option}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_mean_what_git_lfs_makes_them_mean() {
        let f = Filter::new(Some("*.bin, models/v2,/data/"), Some("*.tmp.bin")).unwrap();
        for yes in ["a.bin", "deep/x/a.bin", "models/v2/w.pt", "data/x/y.csv"] {
            assert!(f.wants(yes), "{yes}");
        }
        for no in [
            "a.txt",
            "x/models/v2/w.pt",
            "sub/data/x",
            "a.tmp.bin",
            "deep/b.tmp.bin",
        ] {
            assert!(!f.wants(no), "{no}");
        }
        assert!(Filter::all().wants("anything"));
        let only_exclude = Filter::new(None, Some("big")).unwrap();
        assert!(!only_exclude.wants("big/w.pt") && !only_exclude.wants("x/big"));
        assert!(only_exclude.wants("small/w.pt"));
        assert!(Filter::new(Some("a[b"), None).is_err());
    }
}
