//! The body pump: each transfer runs on its own thread and streams the response through a
//! bounded channel, so receiving overlaps with libgit2 inflating and hashing on the caller's
//! thread; a finished handle goes back for the next request's connection.

use super::*;

pub(super) struct Body {
    pub(super) rx: Receiver<Msg>,
    pub(super) chunk: Vec<u8>,
    pub(super) pos: usize,
    pub(super) done: bool,
}

pub(super) enum Msg {
    Head(Head),
    Data(Vec<u8>),
    End(Result<(), curl::Error>, Option<Easy>),
}

/// A handle whose transfer ended cleanly keeps its connection open for the next request.
pub(super) fn put_back(shared: &Mutex<Shared>, easy: Option<Easy>) {
    if let (Some(e), Ok(mut sh)) = (easy, shared.lock()) {
        sh.idle = Some(e);
    }
}

/// Runs on the request's thread: the head before the first byte of body, then the body, then
/// the end, with the handle when its connection can be reused.
pub(super) fn transfer(mut easy: Easy, tx: SyncSender<Msg>, io_timeout: Duration) {
    let head = RefCell::new(Head::default());
    let head_sent = std::cell::Cell::new(false);
    // The last moment anything moved: bytes in or out, or libgit2 taking a chunk.
    let moved = std::cell::Cell::new(std::time::Instant::now());
    let seen = std::cell::Cell::new(0u64);
    let result = {
        let mut t = easy.transfer();
        let r = t
            .header_function(|line| {
                moved.set(std::time::Instant::now());
                head.borrow_mut().header(line);
                true
            })
            .and_then(|()| {
                // curl calls this about once a second, idle or not: a connection silent for
                // the I/O timeout is cut (curl's own low-speed check averages over seconds
                // of earlier traffic and so cuts a mid-transfer stall several seconds late).
                t.progress_function(|_, down, _, up| {
                    let total = (down + up) as u64;
                    if total != seen.replace(total) {
                        moved.set(std::time::Instant::now());
                    }
                    moved.get().elapsed() < io_timeout
                })
            })
            .and_then(|()| {
                t.write_function(|data| {
                    if !head_sent.replace(true)
                        && tx.send(Msg::Head(head.borrow().clone())).is_err()
                    {
                        return Ok(0);
                    }
                    // A closed channel (libgit2 stopped reading) aborts the transfer.
                    let sent = tx.send(Msg::Data(data.to_vec()));
                    moved.set(std::time::Instant::now());
                    match sent {
                        Ok(()) => Ok(data.len()),
                        Err(_) => Ok(0),
                    }
                })
            });
        r.and_then(|()| t.perform())
    };
    let head = head.into_inner();
    if !head_sent.get() && head.status != 0 && (result.is_ok() || head.status != 200) {
        let _ = tx.send(Msg::Head(head));
    }
    let reusable = result.is_ok();
    let _ = tx.send(Msg::End(result, reusable.then_some(easy)));
}

impl Body {
    /// Waits a moment for the end of an answer nobody reads further (an error page, or the
    /// rest after the protocol's last packet), so the handle, and with it the open connection
    /// and its TLS session, serves the next request instead of a new connect and handshake. A
    /// long or slow remainder is left to abort with the channel.
    pub(super) fn finish(&mut self, shared: &Mutex<Shared>) {
        if self.done {
            return;
        }
        self.done = true;
        let deadline = std::time::Instant::now() + Duration::from_millis(200);
        let mut extra = 0usize;
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match self.rx.recv_timeout(left) {
                Ok(Msg::Data(d)) => {
                    extra += d.len();
                    if extra > 64 * 1024 {
                        return;
                    }
                }
                Ok(Msg::End(_, easy)) => {
                    put_back(shared, easy);
                    return;
                }
                Ok(Msg::Head(_)) => {}
                Err(_) => return,
            }
        }
    }
}

impl Body {
    pub(super) fn read(
        &mut self,
        buf: &mut [u8],
        shared: &Mutex<Shared>,
        s: &Settings,
    ) -> io::Result<usize> {
        loop {
            if self.pos < self.chunk.len() {
                let n = buf.len().min(self.chunk.len() - self.pos);
                buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if self.done {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Msg::Data(d)) => {
                    self.chunk = d;
                    self.pos = 0;
                }
                Ok(Msg::End(Ok(()), easy)) => {
                    self.done = true;
                    put_back(shared, easy);
                }
                Ok(Msg::End(Err(e), _)) => {
                    self.done = true;
                    return Err(s.fail(classify::curl(
                        &s.shown_url,
                        &e,
                        Some(200),
                        s.proxy.is_some(),
                        s.io_timeout,
                    )));
                }
                Ok(Msg::Head(_)) => {}
                Err(_) => {
                    self.done = true;
                    return Err(s.fail(s.network("the HTTP transfer stopped unexpectedly".into())));
                }
            }
        }
    }
}
