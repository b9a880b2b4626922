//! The shallow speculation: a fresh shallow fetch in one request instead of two, and the
//! pkt-line reading it needs.

use super::*;

/// A shallow fetch in one request instead of two. libgit2 (protocol v0, stateless) first
/// sends its wants and `deepen` alone and reads the shallow list up to its flush packet, then
/// sends the very same request with `done` appended and reads the rest: the server lists the
/// shallow commits again and then sends the pack. git's own client sends `done` at once when it
/// has nothing to negotiate. So the first request goes out with `done`; libgit2 gets its
/// answer up to that flush, and the second request, if it is exactly the first plus `done`, is
/// answered from the same response (replaying the shallow list) instead of a new round trip
/// and a second run of upload-pack on the server. Anything else is sent as it is.
pub(super) struct Speculation {
    /// The request libgit2 is expected to send next.
    pub(super) expected: Vec<u8>,
    /// What libgit2 has read of the response so far, to replay.
    pub(super) read: Vec<u8>,
    pub(super) scan: PktScan,
}

pub(super) struct Stash {
    pub(super) expected: Vec<u8>,
    pub(super) read: Vec<u8>,
    pub(super) body: Body,
}

pub(super) const DONE_PKT: &[u8] = b"0009done\n";

/// Whether a request is the first step of a shallow fetch with nothing to negotiate: wants and a
/// `deepen`, no `have`, no `done`, ending in a flush.
pub(super) fn first_shallow_step(body: &[u8]) -> bool {
    let mut rest = body;
    let mut deepen = false;
    while rest.len() >= 4 {
        let Some(len) = std::str::from_utf8(&rest[..4])
            .ok()
            .and_then(|h| usize::from_str_radix(h, 16).ok())
        else {
            return false;
        };
        if len == 0 {
            return deepen && rest.len() == 4;
        }
        if len < 4 || len > rest.len() {
            return false;
        }
        let line = &rest[4..len];
        if line.starts_with(b"have ") || line.starts_with(b"done") {
            return false;
        }
        deepen |= line.starts_with(b"deepen");
        rest = &rest[len..];
    }
    false
}

/// Checks the length headers of a stream of pkt-lines (a ref advertisement): four hex digits,
/// 0 (flush) or at least 4.
#[derive(Default)]
pub(super) struct PktFraming {
    pub(super) header: Vec<u8>,
    pub(super) left: usize,
    pub(super) broken: bool,
}

impl PktFraming {
    pub(super) fn check(&mut self, bytes: &[u8]) -> Result<(), String> {
        let mut i = 0;
        while i < bytes.len() && !self.broken {
            if self.left > 0 {
                let n = self.left.min(bytes.len() - i);
                self.left -= n;
                i += n;
                continue;
            }
            self.header.push(bytes[i]);
            i += 1;
            if self.header.len() < 4 {
                continue;
            }
            let header = std::mem::take(&mut self.header);
            let len = std::str::from_utf8(&header)
                .ok()
                .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
                .and_then(|h| usize::from_str_radix(h, 16).ok());
            match len {
                Some(0) => {}
                Some(n) if n >= 4 => self.left = n - 4,
                _ => {
                    self.broken = true;
                    return Err(format!(
                        "its list of refs holds a malformed pkt-line length `{}`",
                        String::from_utf8_lossy(&header).escape_debug()
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Finds the end of the first flush packet in a stream of pkt-lines.
#[derive(Default)]
pub(super) struct PktScan {
    pub(super) header: Vec<u8>,
    pub(super) left: usize,
}

impl PktScan {
    /// How many of `bytes` come up to and including the first flush packet, if it ends here.
    pub(super) fn feed(&mut self, bytes: &[u8]) -> Option<usize> {
        let mut i = 0;
        while i < bytes.len() {
            if self.left > 0 {
                let n = self.left.min(bytes.len() - i);
                self.left -= n;
                i += n;
                continue;
            }
            self.header.push(bytes[i]);
            i += 1;
            if self.header.len() < 4 {
                continue;
            }
            let len = std::str::from_utf8(&self.header)
                .ok()
                .and_then(|h| usize::from_str_radix(h, 16).ok());
            self.header.clear();
            match len {
                Some(0) => return Some(i),
                Some(n) if n >= 4 => self.left = n - 4,
                // Not pkt-lines (or a delimiter): let libgit2 see it all and decide.
                _ => return Some(bytes.len()),
            }
        }
        None
    }
}

#[cfg(test)]
mod pkt_tests {
    use super::*;

    #[test]
    fn the_first_step_of_a_shallow_fetch_is_recognised() {
        let want = b"0032want 5f08cc064b779ad1701ffe202ec4b235ad6b0946\n";
        let mut body = want.to_vec();
        body.extend_from_slice(b"000ddeepen 1\n0000");
        assert!(first_shallow_step(&body));
        let mut with_done = body.clone();
        with_done.extend_from_slice(DONE_PKT);
        assert!(!first_shallow_step(&with_done));
        let mut no_deepen = want.to_vec();
        no_deepen.extend_from_slice(b"0000");
        assert!(!first_shallow_step(&no_deepen));
        let mut haves = body[..body.len() - 4].to_vec();
        haves.extend_from_slice(b"0032have 5f08cc064b779ad1701ffe202ec4b235ad6b0946\n0000");
        assert!(!first_shallow_step(&haves));
        assert!(!first_shallow_step(b"zzzz"));
    }

    #[test]
    fn malformed_pkt_line_lengths_are_found_across_chunks() {
        let good = b"001e# service=git-upload-pack\n0000000bhello\n0000";
        for split in 0..good.len() {
            let mut f = PktFraming::default();
            let (a, b) = good.split_at(split);
            assert_eq!(
                f.check(a).and_then(|()| f.check(b)),
                Ok(()),
                "split at {split}"
            );
        }
        for bad in [&b"0000000200"[..], b"0001", b"zzzzabc", b"00+4"] {
            assert!(PktFraming::default().check(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_scan_stops_after_the_first_flush_across_chunks() {
        let stream = b"0035shallow 5f08cc064b779ad1701ffe202ec4b235ad6b0946\n00000008NAK\nPACK";
        for split in 0..stream.len() {
            let mut scan = PktScan::default();
            let (a, b) = stream.split_at(split);
            let end = match scan.feed(a) {
                Some(e) => e,
                None => a.len() + scan.feed(b).expect("a flush in the stream"),
            };
            assert_eq!(&stream[..end], &stream[..0x35 + 4], "split at {split}");
        }
    }
}
