//! Property tests: arbitrary input to every parser of user input returns a value or a typed
//! error, and never panics.

use std::path::Path;

use gitinit::catalog::Catalog;
use gitinit::credentials::Credentials;
use gitinit::remote_url::RepoUrl;
use gitinit::revision::Revision;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn urls(s in ".*", prefix in prop::sample::select(vec!["", "https://", "http://", "ssh://", "git@", "git://", "file://", "htp://", "::"])) {
        let input = format!("{prefix}{s}");
        if let Ok(url) = RepoUrl::parse(&input, Path::new("/work")) {
            // What prints must parse back to the same location.
            let again = RepoUrl::parse(&url.to_string(), Path::new("/work"));
            prop_assert!(again.is_ok(), "{} -> {}", input, url);
        }
    }

    #[test]
    fn flags(words in prop::collection::vec("[-a-z=0-9 '\"\\[\\],.]{0,20}", 0..6)) {
        let _ = gitinit::flags::parse(&words);
    }

    #[test]
    fn credentials(s in ".*", host in "[a-z.]{0,20}") {
        if let Some(c) = Credentials::parse(&s, &host) {
            let redacted = format!("Credentials {{ username: {:?}, password: *** }}", c.username);
            prop_assert_eq!(format!("{:?}", c), redacted);
        }
        let _ = Credentials::from_store(&s, "https", &host, None, "/x");
    }

    #[test]
    fn revisions(s in ".*") {
        let _ = Revision::parse(Some(&s));
    }

    #[test]
    fn catalogs(s in "(connections:|  - name:|    schema:|      url:|      flags:|kind: git|&a|\\*a|\\[|\\]|\\{|\\}|-|:| |\n|[a-z0-9]){0,60}") {
        let _ = Catalog::parse(&s, Path::new("c.yaml"));
    }

    #[test]
    fn ssh_keys_and_known_hosts(s in ".*") {
        let _ = gitinit::ssh::normalize_private_key(&s);
        let _ = gitinit::ssh::is_encrypted(&s);
        let kh = gitinit::ssh::KnownHosts::parse(&s);
        let _ = kh.check("example.com", 22, s.as_bytes());
        let _ = gitinit::ssh::key_type_name(s.as_bytes());
    }
}
