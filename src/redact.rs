//! The one redactor for every URL gitinit prints: error lines, the termination log, logs, the
//! report. A URL's user-info is everything between `://` and the LAST `@`, whatever it holds:
//! a password may carry `/`, `?`, `#`, `:` or `@` unencoded, and then no parser agrees on where
//! the host starts. Hiding up to the last `@` may hide a piece of the host or path too; showing
//! a piece of a secret is the worse mistake.

/// What stands in for hidden user-info.
pub const HIDDEN: &str = "***";

/// `scheme://user:pass@host/path` → `scheme://***@host/path`. Without `://`, an scp-like
/// `user:pass@host:path` (a password where none can go) → `***@host:path`; `git@host:path`
/// and other text are left as they are.
pub fn url(input: &str) -> String {
    match userinfo_span(input) {
        Some((start, end)) => format!("{}{HIDDEN}{}", &input[..start], &input[end..]),
        None => input.to_string(),
    }
}

/// Where the user-info of `input` is, as byte offsets `start..end` (the `@` at `end`), by the
/// rule of [`url`]; `None` when it has none to hide.
pub fn userinfo_span(input: &str) -> Option<(usize, usize)> {
    match input.find("://") {
        Some(i) => {
            let start = i + 3;
            let at = input[start..].rfind('@')? + start;
            Some((start, at))
        }
        None => {
            let at = input.rfind('@')?;
            input[..at].contains(':').then_some((0, at))
        }
    }
}

/// Free text that may quote URLs (a YAML line, a libgit2 message): the user-info of each
/// `scheme://…` in it hidden. A URL runs to white space or a quote.
pub fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | ',' | ']' | '}'))
            .unwrap_or(tail.len());
        let (url, after) = tail.split_at(end);
        match url.rfind('@') {
            Some(at) => {
                out.push_str(HIDDEN);
                out.push_str(&url[at..]);
            }
            None => out.push_str(url),
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn userinfo_is_hidden_up_to_the_last_at() {
        for (input, shown) in [
            ("https://u:p@h/r.git", "https://***@h/r.git"),
            ("https://user:tok/en@host/repo", "https://***@host/repo"),
            ("https://user:tok#en@host/repo", "https://***@host/repo"),
            ("https://user:tok?en@host/repo", "https://***@host/repo"),
            ("https://u:p@ss@h:8443/r", "https://***@h:8443/r"),
            ("https://tok/en@host/repo", "https://***@host/repo"),
            // Hiding more than the user-info is the price of never showing a piece of it.
            ("https://h/org/r@v2.git", "https://***@v2.git"),
            ("https://h/r.git", "https://h/r.git"),
            ("ssh://git@h:22/r", "ssh://***@h:22/r"),
            ("alice:hunter2@h:org/r.git", "***@h:org/r.git"),
            ("git@github.com:org/r.git", "git@github.com:org/r.git"),
            ("/srv/a@b/r.git", "/srv/a@b/r.git"),
            ("", ""),
        ] {
            assert_eq!(url(input), shown, "{input}");
        }
    }

    #[test]
    fn text_hides_every_url_in_it() {
        assert_eq!(
            text("see `https://u:p@h/x` and ssh://git@h:22/r, http://h/a@b"),
            "see `https://***@h/x` and ssh://***@h:22/r, http://***@b"
        );
        assert_eq!(text("https://u:pa/ss@h/r"), "https://***@h/r");
        assert_eq!(text("no url here"), "no url here");
    }

    proptest! {
        /// Whatever the secret holds (`/`, `?`, `#`, `@`, `:`, `%`, spaces, non-ASCII), no
        /// piece of it of 3 bytes or more survives, in a URL or in text quoting one (where a
        /// URL ends at white space, so there the secret holds none).
        #[test]
        fn no_secret_survives(
            scheme in "(https|http|ssh|git|file|ftp)",
            user in "[a-zA-Z0-9._~-]{0,12}",
            secret in "[a-zA-Z0-9/?#@:%+&=!$ é-]{1,24}",
            host in "[a-z0-9.-]{1,16}(:[0-9]{1,5})?",
            path in "(/[a-zA-Z0-9._-]{0,10}){0,3}",
        ) {
            let input = format!("{scheme}://{user}:{secret}@{host}{path}");
            let mut shown = vec![url(&input)];
            if !secret.contains(' ') {
                shown.push(text(&format!("cannot use \"{input}\": bad")));
            }
            let visible = format!("{scheme}://{HIDDEN}@{host}{path} cannot use \"\": bad");
            for s in &shown {
                prop_assert!(s.contains(&format!("{HIDDEN}@")), "{}", s);
                for piece in secret.as_bytes().windows(3) {
                    let piece = String::from_utf8_lossy(piece);
                    // A piece that is also in what stays visible (host, path) proves nothing.
                    if !visible.contains(piece.as_ref()) {
                        prop_assert!(!s.contains(piece.as_ref()), "{} in {}", piece, s);
                    }
                }
            }
            prop_assert_eq!(&shown[0][..scheme.len() + 3], &input[..scheme.len() + 3]);
        }
    }
}
