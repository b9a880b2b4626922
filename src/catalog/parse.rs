//! YAML text → the catalog's typed shape, with serde-saphyr under budgets sized for a catalog,
//! and saphyr's errors turned into one-line `FILE:LINE:COLUMN: what` input errors.

use std::borrow::Cow;

use serde::de::DeserializeOwned;
use serde_saphyr::Location;

use super::{at, clean, MAX_BYTES};
use crate::error::{Error, Result};

/// `text` read as a `T` (JSON is YAML too); `shown` is the file's name for messages.
pub(super) fn yaml<T: DeserializeOwned>(text: &str, shown: &str) -> Result<T> {
    serde_saphyr::from_str_with_options(text, options()).map_err(|e| yaml_error(shown, &e))
}

/// serde-saphyr's defaults are sized for big configuration files (a million events, 50,000
/// aliases, 64 MiB of scalars). A catalog is a few KiB and nests at most ~8 levels (`env` with
/// `valueFrom.secretKeyRef`), so the budgets here are tight: an alias bomb or a `[[[[…` file
/// is refused within milliseconds, and a real catalog is far from every limit.
fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_reader_input_bytes: Some(MAX_BYTES as usize),
            max_depth: 32,
            flow_nesting_limit: 32,
            max_events: 200_000,
            max_nodes: 100_000,
            max_aliases: 1_000,
            max_anchors: 1_000,
            max_merge_keys: 1_000,
            max_recorded_anchor_events: 100_000,
            max_recorded_anchor_bytes: 4 * MAX_BYTES as usize,
            max_total_scalar_bytes: 4 * MAX_BYTES as usize,
            max_documents: 2,
            max_inclusion_depth: 0,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 10_000,
            max_replay_stack_depth: 16,
            max_alias_expansions_per_anchor: 1_000,
        },
        emit_comments: false,
        reject_unsupported_tags: true,
        // Snippets would quote source lines, which may hold a URL with user-info.
        with_snippet: false,
    }
}

/// saphyr's message without its " at line X, column Y" suffix: we put the place in front.
struct NoLocation;
impl serde_saphyr::Localizer for NoLocation {
    fn attach_location<'a>(&self, base: Cow<'a, str>, _loc: Location) -> Cow<'a, str> {
        base
    }
}

struct PlainMessages;
impl serde_saphyr::MessageFormatter for PlainMessages {
    fn localizer(&self) -> &dyn serde_saphyr::Localizer {
        &NoLocation
    }
    fn format_message<'a>(&self, err: &'a serde_saphyr::Error) -> Cow<'a, str> {
        serde_saphyr::MessageFormatter::format_message(&serde_saphyr::UserMessageFormatter, err)
    }
}

fn yaml_error(shown: &str, e: &serde_saphyr::Error) -> Error {
    let msg = e.render_with_options(serde_saphyr::render_options! {
        formatter: &PlainMessages,
        snippets: serde_saphyr::SnippetMode::Off,
    });
    let msg = msg.lines().next().unwrap_or("invalid YAML").trim();
    // A few of saphyr's messages speak of parser events; say what the file should hold.
    let msg = match msg {
        "expected mapping start" => "expected a mapping (`key: value`) here",
        "expected sequence start" => "expected a list (`- item` lines or `[a, b]`) here",
        m if m.contains("Depth {") || m == "recursion limit exceeded" => {
            "nested too deeply: a catalog nests a few levels at most"
        }
        m => m,
    };
    Error::invalid(format!("{}: {}", at(shown, e.location()), clean(msg)))
}

#[cfg(test)]
mod tests {
    use crate::catalog::testing::*;

    #[test]
    fn yaml_syntax_error() {
        let e = err_at(
            "connections:\n  - name: a\n    schema: {url: \"unclosed\n",
            3,
        );
        assert!(e.contains("unclosed quote"), "{e}");
        let e = err_at("connections:\n  - name: a\n   bad indent: x\n", 3);
        assert!(e.contains("'-' indicator"), "{e}");
        let e = err_at("connections: [\n", 1);
        assert!(e.contains("unclosed bracket"), "{e}");
        let e = err_at(
            "connections:\n  - name: a\n    name: b\n    schema: {url: https://h/r}\n",
            3,
        );
        assert!(e.contains("duplicate mapping key `name`"), "{e}");
        let e = err_at(
            "---\nname: a\nschema: {url: https://h/a}\n---\nname: b\n",
            5,
        );
        assert!(e.contains("single YAML document"), "{e}");
        // A type error inside a flow mapping is found before the missing bracket.
        let e = err_at("connections:\n  - name: a\n    schema: {url: [x\n", 3);
        assert!(e.contains("expected string"), "{e}");
    }

    /// 10 levels of 10 aliases each: 10^10 nodes if expanded.
    #[test]
    fn alias_bomb_is_refused() {
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..=10 {
            let p = i - 1;
            let refs = vec![format!("*a{p}"); 10].join(", ");
            bomb.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        let e = err(&bomb);
        assert!(e.starts_with(FILE), "{e}");
        // The same under a key we accept and ignore (so no unknown-key shortcut).
        let mut bomb = String::from(
            "name: a\nschema: {url: https://h/a}\ntags:\n  - &a0 [x, x, x, x, x, x, x, x, x, x]\n",
        );
        for i in 1..=10 {
            let p = i - 1;
            let refs = vec![format!("*a{p}"); 10].join(", ");
            bomb.push_str(&format!("  - &a{i} [{refs}]\n"));
        }
        err(&bomb);
        // A bomb of merge keys.
        let mut bomb =
            String::from("name: a\nschema: {url: https://h/a}\nannotations:\n  m0: &m0 {k: v}\n");
        for i in 1..=10 {
            let p = i - 1;
            let refs = (0..10)
                .map(|j| format!("k{j}: *m{p}"))
                .collect::<Vec<_>>()
                .join(", ");
            bomb.push_str(&format!("  m{i}: &m{i} {{{refs}}}\n"));
        }
        err(&bomb);
    }

    #[test]
    fn anchors_in_a_real_catalog_still_work() {
        let c = parse("connections:\n  - name: a\n    schema: &s\n      url: https://h/a\n      flags: &f [\"--depth 1\"]\n  - name: b\n    schema:\n      <<: *s\n      revision: dev\n  - name: c\n    schema: {url: https://h/c, flags: *f}\n").unwrap();
        assert_eq!(c.connections[1].url, "https://h/a");
        assert_eq!(c.connections[1].revision.as_deref(), Some("dev"));
        assert_eq!(c.connections[2].flags, vec!["--depth 1"]);
    }

    #[test]
    fn deep_nesting_is_refused_without_overflow() {
        // Where a catalog wants a mapping, the first `[` is already wrong.
        err_at(&format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)), 1);
        err_at(&format!("connections: {}", "[".repeat(10_000)), 1);
        // Under keys read and ignored, any shape is accepted, so only the depth limits act.
        let blocks: String = (1..1_000)
            .map(|i| format!("{}- \n", " ".repeat(i)))
            .collect();
        for text in [
            format!("name: a\ntags: {}", "[".repeat(10_000)),
            format!(
                "name: a\ntags: {}{}\n",
                "[".repeat(10_000),
                "]".repeat(10_000)
            ),
            format!(
                "name: a\ntags: {}{}\n",
                "{a: ".repeat(10_000),
                "}".repeat(10_000)
            ),
            // Block nesting, 1,000 levels (10,000 would be refused for its size first).
            format!("name: a\ntags:\n{blocks}"),
        ] {
            let e = err(&text);
            assert!(e.contains("nested too deeply"), "{e}");
        }
    }

    /// A few hundred random inputs, bytes and YAML-ish token soup: errors, never panics.
    #[test]
    fn random_input_never_panics() {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        const TOKENS: &[&str] = &[
            "connections:",
            "\n",
            "  ",
            "- ",
            "name: ",
            "kind: git",
            "schema:",
            "url: ",
            "https://u:p@h/r",
            "flags: ",
            "[",
            "]",
            "{",
            "}",
            ",",
            "&a ",
            "*a",
            "<<: ",
            "!!str ",
            "!x ",
            "'",
            "\"",
            "|",
            ">",
            "#",
            "---\n",
            "...",
            "? ",
            ": ",
            "~",
            "\t",
            "\u{feff}",
            "é",
            "\\",
            "%YAML 1.2\n",
            "secret:",
            "revision: ",
        ];
        for round in 0..600 {
            let len = (next() % 300) as usize;
            let text = if round % 2 == 0 {
                let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                String::from_utf8_lossy(&bytes).into_owned()
            } else {
                (0..len / 3)
                    .map(|_| TOKENS[(next() % TOKENS.len() as u64) as usize])
                    .collect()
            };
            if let Err(e) = parse(&text) {
                assert_eq!(e.exit_code(), crate::error::ExitCode::InvalidInput);
            }
        }
    }
}
