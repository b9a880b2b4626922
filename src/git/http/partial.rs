//! Partial clone over smart HTTP (`--filter`): the filter added to libgit2's fetch request
//! (libgit2 has no `filter` capability of its own), and gitinit's own request for objects by
//! id, as git's lazy fetch makes it: every wanted id in one request, no `have` (git's noop
//! negotiator), `done` at once. Over HTTP git's server serves any object its refs reach this
//! way (stateless upload-pack checks reachability), others with `uploadpack.allowAnySHA1InWant`.

use super::*;

/// One pkt-line.
fn pkt(out: &mut Vec<u8>, line: &str) {
    out.extend_from_slice(format!("{:04x}", line.len() + 4).as_bytes());
    out.extend_from_slice(line.as_bytes());
}

/// `body` (a fetch request of libgit2's) with the filter, or `None` when it has no `want`.
pub fn with_filter(body: &[u8], spec: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(body.len() + 64);
    let mut rest = body;
    let (mut first_want, mut added) = (true, false);
    while rest.len() >= 4 {
        let len = std::str::from_utf8(&rest[..4])
            .ok()
            .and_then(|h| usize::from_str_radix(h, 16).ok())?;
        if len == 0 {
            if !added {
                if first_want {
                    return None; // no want: not a fetch request
                }
                pkt(&mut out, &format!("filter {spec}\n"));
                added = true;
            }
            out.extend_from_slice(b"0000");
            rest = &rest[4..];
            continue;
        }
        if len < 4 || len > rest.len() {
            return None;
        }
        let line = &rest[4..len];
        if first_want && line.starts_with(b"want ") {
            first_want = false;
            let text = String::from_utf8_lossy(line);
            let text = text.trim_end_matches('\n');
            // Capabilities follow the id on the first want only.
            pkt(&mut out, &format!("{text} filter\n"));
        } else {
            out.extend_from_slice(&rest[..len]);
        }
        rest = &rest[len..];
    }
    out.extend_from_slice(rest);
    added.then_some(out)
}

/// Fetches the objects `wants` (with `filter`, the objects under them the filter keeps) into
/// `repo`'s object database, in one request; returns the bytes received.
pub fn fetch_objects(
    settings: &Arc<Settings>,
    url: &str,
    wants: &[git2::Oid],
    filter: Option<&str>,
    repo: &git2::Repository,
) -> Result<u64, Error> {
    let s = settings;
    let mut body = Vec::with_capacity(wants.len() * 50 + 100);
    for (i, oid) in wants.iter().enumerate() {
        if i == 0 {
            let filter_cap = if filter.is_some() { " filter" } else { "" };
            pkt(
                &mut body,
                &format!(
                    "want {oid} side-band-64k ofs-delta no-progress{filter_cap} agent=gitinit/{}\n",
                    env!("CARGO_PKG_VERSION")
                ),
            );
        } else {
            pkt(&mut body, &format!("want {oid}\n"));
        }
    }
    if let Some(spec) = filter {
        pkt(&mut body, &format!("filter {spec}\n"));
    }
    body.extend_from_slice(b"0000");
    body.extend_from_slice(shallow::DONE_PKT);
    let shared = s
        .last
        .lock()
        .ok()
        .and_then(|l| l.clone())
        .unwrap_or_else(|| Arc::new(Mutex::new(Shared::default())));
    let request = Request::new(s.clone(), shared, url, false, body, true);
    let io_failure = |e: io::Error| {
        s.take_failure()
            .unwrap_or_else(|| s.network(format!("reading the objects: {e}")))
    };
    let odb = repo
        .odb()
        .map_err(|e| Error::Internal(format!("opening the object database: {}", e.message())))?;
    let mut writer = odb
        .packwriter()
        .map_err(|e| Error::Internal(format!("writing a pack: {}", e.message())))?;
    let mut reader = io::BufReader::with_capacity(1 << 16, request);
    let mut received = 0u64;
    let mut saw_pack = false;
    loop {
        let mut header = [0u8; 4];
        if let Err(e) = reader.read_exact(&mut header) {
            if e.kind() == io::ErrorKind::UnexpectedEof && saw_pack {
                break;
            }
            return Err(io_failure(e));
        }
        let len = std::str::from_utf8(&header)
            .ok()
            .and_then(|h| usize::from_str_radix(h, 16).ok())
            .filter(|&n| n == 0 || n >= 4)
            .ok_or_else(|| {
                s.bad_server(format!(
                    "its answer to a request for objects holds a malformed pkt-line length `{}`",
                    String::from_utf8_lossy(&header).escape_debug()
                ))
            })?;
        received += 4;
        if len == 0 {
            if saw_pack {
                break;
            }
            continue;
        }
        let mut data = vec![0u8; len - 4];
        reader.read_exact(&mut data).map_err(io_failure)?;
        received += data.len() as u64;
        match data.first() {
            Some(1) => {
                saw_pack = true;
                writer.write_all(&data[1..]).map_err(|e| {
                    s.bad_server(format!("the pack of objects it sent is broken: {e}"))
                })?;
            }
            Some(2) => {}
            Some(3) => {
                return Err(s.bad_server(format!(
                    "it failed to send the objects: {}",
                    String::from_utf8_lossy(&data[1..]).trim_end()
                )))
            }
            _ if data.starts_with(b"ERR ") => {
                let said = String::from_utf8_lossy(&data[4..]).trim_end().to_string();
                return Err(Error::RepoNotFound {
                    url: s.shown_url.clone(),
                    detail: format!(
                        "the server refused to send the objects this checkout needs ({said}); a partial clone needs a server that serves objects by id (git: uploadpack.allowAnySHA1InWant or allowReachableSHA1InWant): fetch without --filter"
                    ),
                });
            }
            // NAK, ACK: the (empty) negotiation.
            _ => {}
        }
    }
    writer.commit().map_err(|e| {
        s.bad_server(format!(
            "the pack of objects it sent is broken: {}",
            e.message()
        ))
    })?;
    Ok(received)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_goes_on_the_first_want_and_before_the_flush() {
        let want =
            "want 5f08cc064b779ad1701ffe202ec4b235ad6b0946 multi_ack_detailed side-band-64k\n";
        let want2 = "want 1111111111111111111111111111111111111111\n";
        let mut body = vec![];
        pkt(&mut body, want);
        pkt(&mut body, want2);
        pkt(&mut body, "deepen 1\n");
        body.extend_from_slice(b"0000");
        body.extend_from_slice(shallow::DONE_PKT);
        let out = with_filter(&body, "blob:none").unwrap();
        let mut expected = vec![];
        pkt(
            &mut expected,
            "want 5f08cc064b779ad1701ffe202ec4b235ad6b0946 multi_ack_detailed side-band-64k filter\n",
        );
        pkt(&mut expected, want2);
        pkt(&mut expected, "deepen 1\n");
        pkt(&mut expected, "filter blob:none\n");
        expected.extend_from_slice(b"0000");
        expected.extend_from_slice(shallow::DONE_PKT);
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&expected)
        );
        // No want (not a fetch), or garbage: unchanged.
        assert_eq!(with_filter(b"0000", "blob:none"), None);
        assert_eq!(with_filter(b"zzzz", "blob:none"), None);
    }
}
