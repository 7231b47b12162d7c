//! Connections and streams (spec iroh.md §5.4): zero-copy reads, bounded writes, and the
//! mapping of noq's errors to ABI statuses.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use futures_util::FutureExt;
use iroh::endpoint::{
    Connection, ConnectionError, ReadError, RecvStream, SendStream, VarInt, WriteError,
};
use tokio::sync::{Notify, oneshot};

use crate::queue::{self, KIND_CHUNK, KIND_STREAM, MAX_REASON, Obj, Outcome, Token};
use crate::status::*;

pub struct Conn {
    pub conn: Connection,
    pub ep: u64,
    /// Our own close's code and reason, so a LocallyClosed error reports them (§5.4).
    local_close: Mutex<Option<(u64, Vec<u8>)>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Conn {
    pub fn new(conn: Connection, ep: u64) -> Self {
        Conn {
            conn,
            ep,
            local_close: Mutex::new(None),
        }
    }

    pub fn close(&self, code: u64, reason: &[u8]) {
        lock(&self.local_close).get_or_insert_with(|| (code, reason.to_vec()));
        self.conn.close(
            VarInt::from_u64(code).unwrap_or(VarInt::from_u32(5)),
            reason,
        );
    }

    /// The outcome of an operation that failed because the connection ended.
    pub fn conn_error(&self, e: &ConnectionError) -> Outcome {
        match e {
            ConnectionError::ApplicationClosed(ac) => Outcome {
                flags: ALK_F_REMOTE,
                value: u64::from(ac.error_code),
                detail: message(&ac.reason),
                ..Outcome::status(ALK_E_CLOSED, 0)
            },
            ConnectionError::LocallyClosed => match lock(&self.local_close).as_ref() {
                Some((code, reason)) => Outcome {
                    value: *code,
                    detail: message(reason),
                    ..Outcome::status(ALK_E_CLOSED, 0)
                },
                None => Outcome::err(ALK_E_TRANSPORT, "connection closed by iroh"),
            },
            ConnectionError::TimedOut => Outcome::err(ALK_E_TIMEOUT, "connection timed out"),
            other => Outcome::err(ALK_E_TRANSPORT, format!("connection lost: {other}")),
        }
    }

    fn new_stream(self: &Arc<Self>, (send, recv): (SendStream, RecvStream)) -> Outcome {
        let st = Stream {
            conn: self.clone(),
            send: Mutex::new(SendSlot {
                s: Some(send),
                reset: None,
                finish: false,
            }),
            recv: Mutex::new(RecvSlot {
                s: Some(recv),
                stop: None,
            }),
            send_wake: Notify::new(),
            recv_wake: Notify::new(),
        };
        Outcome::ok(queue::insert(KIND_STREAM, Obj::Stream(Arc::new(st))))
    }

    /// Whether the selected path is direct (1), relayed (2) or not known (0).
    pub fn path(&self) -> u32 {
        for p in &self.conn.paths() {
            if p.is_selected() {
                return if p.is_relay() {
                    ALK_PATH_RELAY
                } else {
                    ALK_PATH_DIRECT
                };
            }
        }
        ALK_PATH_UNKNOWN
    }
}

fn message(reason: &[u8]) -> u64 {
    let n = reason.len().min(MAX_REASON);
    queue::insert(queue::KIND_MESSAGE, Obj::Message(reason[..n].to_vec()))
}

type StreamPair = Result<(SendStream, RecvStream), ConnectionError>;

/// Opens or accepts a bidirectional stream: at once when it is ready, else in a task.
fn stream_op<F, Fut>(
    c: Arc<Conn>,
    token: Token,
    mut cancel: oneshot::Receiver<()>,
    op: F,
) -> Option<Outcome>
where
    F: Fn(Connection) -> Fut,
    Fut: Future<Output = StreamPair> + Send + 'static,
{
    let done = |c: &Arc<Conn>, r: StreamPair| match r {
        Ok(s) => c.new_stream(s),
        Err(e) => c.conn_error(&e),
    };
    if let Some(r) = op(c.conn.clone()).now_or_never() {
        token.forget();
        return Some(done(&c, r));
    }
    let fut = op(c.conn.clone());
    crate::ep::spawn(token, async move {
        tokio::select! {
            biased;
            _ = &mut cancel => Outcome::status(ALK_E_CANCELED, 0),
            r = fut => done(&c, r),
        }
    });
    None
}

pub fn open(c: Arc<Conn>, token: Token, cancel: oneshot::Receiver<()>) -> Option<Outcome> {
    stream_op(c, token, cancel, |conn| async move { conn.open_bi().await })
}

pub fn accept(c: Arc<Conn>, token: Token, cancel: oneshot::Receiver<()>) -> Option<Outcome> {
    stream_op(
        c,
        token,
        cancel,
        |conn| async move { conn.accept_bi().await },
    )
}

pub fn closed(c: Arc<Conn>, token: Token, mut cancel: oneshot::Receiver<()>) -> Option<Outcome> {
    if let Some(e) = c.conn.close_reason() {
        token.forget();
        return Some(c.conn_error(&e));
    }
    crate::ep::spawn(token, async move {
        tokio::select! {
            biased;
            _ = &mut cancel => Outcome::status(ALK_E_CANCELED, 0),
            e = c.conn.closed() => c.conn_error(&e),
        }
    });
    None
}

struct SendSlot {
    s: Option<SendStream>, // None while a write task holds it
    reset: Option<u64>,    // asked while a write was pending
    finish: bool,
}

struct RecvSlot {
    s: Option<RecvStream>, // None while a read task holds it
    stop: Option<u64>,
}

pub struct Stream {
    conn: Arc<Conn>,
    send: Mutex<SendSlot>,
    recv: Mutex<RecvSlot>,
    send_wake: Notify,
    recv_wake: Notify,
}

impl Stream {
    pub fn endpoint(&self) -> u64 {
        self.conn.ep
    }
}

fn code(c: u64) -> VarInt {
    VarInt::from_u64(c).unwrap_or(VarInt::from_u32(0))
}

fn read_outcome(
    st: &Stream,
    conn_err: impl Fn(&ConnectionError) -> Outcome,
    r: Result<Option<Bytes>, ReadError>,
) -> Outcome {
    match r {
        Ok(Some(b)) => {
            let (data, len) = (b.as_ptr(), b.len() as u64);
            let h = queue::insert(KIND_CHUNK, Obj::Chunk(b));
            Outcome {
                data,
                len,
                ..Outcome::ok(h)
            }
        }
        Ok(None) => Outcome {
            flags: ALK_F_FIN,
            ..Outcome::ok(0)
        },
        Err(ReadError::Reset(c)) => Outcome {
            flags: ALK_F_REMOTE,
            ..Outcome::status(ALK_E_RESET, u64::from(c))
        },
        Err(ReadError::ConnectionLost(e)) => conn_err(&e),
        Err(ReadError::ClosedStream) => {
            Outcome::status(ALK_E_RESET, lock(&st.recv).stop.unwrap_or(0))
        }
        Err(e) => Outcome::err(ALK_E_TRANSPORT, e.to_string()),
    }
}

fn write_error(
    conn_err: impl Fn(&ConnectionError) -> Outcome,
    e: WriteError,
    reset: u64,
) -> Outcome {
    match e {
        WriteError::Stopped(c) => Outcome {
            flags: ALK_F_REMOTE,
            ..Outcome::status(ALK_E_STOPPED, u64::from(c))
        },
        WriteError::ConnectionLost(e) => conn_err(&e),
        WriteError::ClosedStream => Outcome::status(ALK_E_RESET, reset),
        e => Outcome::err(ALK_E_TRANSPORT, e.to_string()),
    }
}

/// Reads one chunk of at most `max` bytes. The RecvStream moves into the task while it
/// waits, so a cancelled read leaves the stream usable.
pub fn read(
    st: Arc<Stream>,
    max: usize,
    token: Token,
    mut cancel: oneshot::Receiver<()>,
) -> Option<Outcome> {
    let c = st.conn.clone();
    let conn_err = move |e: &ConnectionError| c.conn_error(e);
    let mut recv = {
        let mut slot = lock(&st.recv);
        if let Some(code) = slot.stop {
            token.forget();
            return Some(Outcome::status(ALK_E_RESET, code));
        }
        match slot.s.take() {
            Some(r) => r,
            None => {
                token.forget();
                return Some(Outcome::err(
                    ALK_E_LIMIT,
                    "a read is already pending on this stream",
                ));
            }
        }
    };
    if let Some(r) = recv.read_chunk(max).now_or_never() {
        lock(&st.recv).s = Some(recv);
        token.forget();
        return Some(read_outcome(&st, conn_err, r));
    }
    crate::ep::spawn(token, async move {
        let out = loop {
            tokio::select! {
                biased;
                _ = &mut cancel => break Outcome::status(ALK_E_CANCELED, 0),
                _ = st.recv_wake.notified() => {
                    if let Some(code) = lock(&st.recv).stop {
                        let _ = recv.stop(self::code(code));
                        break Outcome::status(ALK_E_RESET, code);
                    }
                }
                r = recv.read_chunk(max) => break read_outcome(&st, &conn_err, r),
            }
        };
        let mut slot = lock(&st.recv);
        if let Some(code) = slot.stop {
            let _ = recv.stop(self::code(code));
        }
        slot.s = Some(recv);
        out
    });
    None
}

/// Writes all of `p` (copied before returning), then finishes if `fin`.
pub fn write(
    st: Arc<Stream>,
    p: &[u8],
    fin: bool,
    token: Token,
    mut cancel: oneshot::Receiver<()>,
) -> Option<Outcome> {
    let c = st.conn.clone();
    let conn_err = move |e: &ConnectionError| c.conn_error(e);
    let mut send = {
        let mut slot = lock(&st.send);
        if let Some(code) = slot.reset {
            token.forget();
            return Some(Outcome::status(ALK_E_RESET, code));
        }
        match slot.s.take() {
            Some(s) => s,
            None => {
                token.forget();
                return Some(Outcome::err(
                    ALK_E_LIMIT,
                    "a write is already pending on this stream",
                ));
            }
        }
    };
    let mut off = 0;
    while off < p.len() {
        match send.write(&p[off..]).now_or_never() {
            Some(Ok(n)) => off += n,
            Some(Err(e)) => {
                lock(&st.send).s = Some(send);
                token.forget();
                return Some(write_error(conn_err, e, 0));
            }
            None => break,
        }
    }
    if off == p.len() {
        let r = if fin {
            send.finish().map_err(|_| ())
        } else {
            Ok(())
        };
        lock(&st.send).s = Some(send);
        token.forget();
        return Some(match r {
            Ok(()) => Outcome::ok(p.len() as u64),
            Err(()) => Outcome::status(ALK_E_RESET, 0),
        });
    }
    let rest = Bytes::copy_from_slice(&p[off..]);
    let total = p.len() as u64;
    let written = Arc::new(AtomicU64::new(off as u64));
    crate::ep::spawn(token, async move {
        let w = written.clone();
        let mut rest = rest;
        let out = loop {
            if rest.is_empty() {
                break if fin && send.finish().is_err() {
                    Outcome::status(ALK_E_RESET, 0)
                } else {
                    Outcome::ok(total)
                };
            }
            tokio::select! {
                biased;
                _ = &mut cancel => break Outcome::status(ALK_E_CANCELED, w.load(Ordering::Relaxed)),
                _ = st.send_wake.notified() => {
                    if let Some(code) = lock(&st.send).reset {
                        let _ = send.reset(self::code(code));
                        break Outcome::status(ALK_E_RESET, code);
                    }
                }
                r = send.write(&rest) => match r {
                    Ok(n) => {
                        w.fetch_add(n as u64, Ordering::Relaxed);
                        let _ = rest.split_to(n);
                    }
                    Err(e) => break write_error(&conn_err, e, 0),
                },
            }
        };
        let mut slot = lock(&st.send);
        if let Some(code) = slot.reset {
            let _ = send.reset(self::code(code));
        } else if slot.finish {
            let _ = send.finish();
        }
        slot.s = Some(send);
        out
    });
    None
}

pub fn finish(st: &Stream) -> i32 {
    let mut slot = lock(&st.send);
    match slot.s.as_mut() {
        Some(s) => {
            let _ = s.finish();
        }
        None => slot.finish = true,
    }
    ALK_OK
}

pub fn reset(st: &Stream, c: u64) -> i32 {
    {
        let mut slot = lock(&st.send);
        match slot.s.as_mut() {
            Some(s) => {
                let _ = s.reset(code(c));
                slot.reset = Some(c);
            }
            None => {
                slot.reset = Some(c);
                st.send_wake.notify_one();
            }
        }
    }
    stop(st, c)
}

pub fn stop(st: &Stream, c: u64) -> i32 {
    let mut slot = lock(&st.recv);
    if slot.stop.is_some() {
        return ALK_OK;
    }
    slot.stop = Some(c);
    match slot.s.as_mut() {
        Some(r) => {
            let _ = r.stop(code(c));
        }
        None => st.recv_wake.notify_one(),
    }
    ALK_OK
}
