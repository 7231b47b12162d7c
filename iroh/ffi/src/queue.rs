//! The process-wide pieces every call shares (spec iroh.md §3): the tokio runtime, the
//! completion queue `alk_wait` drains, the pending-token table and the handle table.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::status::*;

/// One finished operation, exactly as `alk_completion` in the header.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Completion {
    pub token: u64,
    pub status: i32,
    pub flags: u32,
    pub value: u64,
    pub data: *const u8,
    pub len: u64,
    pub detail: u64,
}

// SAFETY: `data` points into a chunk owned by the handle table; the completion only carries
// the address to Go, which reads it while the chunk is held (header §4.2 item 3).
unsafe impl Send for Completion {}

/// What an operation ended with; the token is added when it is queued.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    pub status: i32,
    pub flags: u32,
    pub value: u64,
    pub data: *const u8,
    pub len: u64,
    pub detail: u64,
}

// SAFETY: as for Completion.
unsafe impl Send for Outcome {}

impl Outcome {
    pub fn ok(value: u64) -> Self {
        Outcome {
            status: ALK_OK,
            flags: 0,
            value,
            data: std::ptr::null(),
            len: 0,
            detail: 0,
        }
    }
    pub fn status(status: i32, value: u64) -> Self {
        Outcome {
            status,
            ..Outcome::ok(value)
        }
    }
    /// An error with a message (≤ 512 bytes) Go can take with `alk_msg_take`.
    pub fn err(status: i32, msg: impl AsRef<str>) -> Self {
        Outcome {
            status,
            detail: new_message(msg.as_ref(), MAX_MESSAGE),
            ..Outcome::ok(0)
        }
    }
    pub fn complete(self, token: u64) -> Completion {
        Completion {
            token,
            status: self.status,
            flags: self.flags,
            value: self.value,
            data: self.data,
            len: self.len,
            detail: self.detail,
        }
    }
}

pub const MAX_MESSAGE: usize = 512;
pub const MAX_REASON: usize = 256;
pub const MAX_PENDING: usize = 1 << 20;

// ---------------------------------------------------------------------------------------------
// Runtime

static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
pub static FAULTS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Blocks SIGPIPE on the calling thread: rustls' vectored writes (relay, pkarr, portmapper)
/// send without MSG_NOSIGNAL, and a SIGPIPE on a thread Go does not own ends the process.
fn block_sigpipe() {
    // SAFETY: sigemptyset/sigaddset initialise a local set; pthread_sigmask changes only this
    // thread's mask. Threads this one starts inherit it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Makes the runtime once; later calls keep the first one (§3.1).
pub fn init(workers: u32) -> Result<(), String> {
    if RUNTIME.get().is_some() {
        return Ok(());
    }
    let workers = workers.clamp(1, 8) as usize;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .max_blocking_threads(4)
        .thread_name("alknet-iroh")
        .on_thread_start(block_sigpipe)
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let _ = RUNTIME.set(rt); // a racing init keeps the first; the loser's runtime is dropped here
    crate::log::install();
    Ok(())
}

pub fn rt() -> Option<&'static tokio::runtime::Runtime> {
    RUNTIME.get()
}

// ---------------------------------------------------------------------------------------------
// Completion queue

struct Queue {
    items: VecDeque<Completion>,
    interrupt: bool,
}

static QUEUE: Mutex<Queue> = Mutex::new(Queue {
    items: VecDeque::new(),
    interrupt: false,
});
static QUEUE_CV: Condvar = Condvar::new();

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned table is still consistent: every critical section is a single insert or
    // remove, so a panic elsewhere cannot leave it half-changed.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn push(c: Completion) {
    let mut q = lock(&QUEUE);
    q.items.push_back(c);
    drop(q);
    QUEUE_CV.notify_one();
}

/// Waits for completions; copies at most `out.len()`; returns how many. `timeout < 0` waits
/// until something arrives or `interrupt` is called.
pub fn wait(out: &mut [Completion], timeout_ms: i64) -> usize {
    let mut q = lock(&QUEUE);
    let deadline = (timeout_ms >= 0)
        .then(|| std::time::Instant::now() + Duration::from_millis(timeout_ms as u64));
    while q.items.is_empty() && !q.interrupt {
        match deadline {
            None => q = QUEUE_CV.wait(q).unwrap_or_else(|p| p.into_inner()),
            Some(d) => {
                let now = std::time::Instant::now();
                if now >= d {
                    break;
                }
                q = QUEUE_CV
                    .wait_timeout(q, d - now)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        }
    }
    q.interrupt = false;
    let n = out.len().min(q.items.len());
    for slot in out.iter_mut().take(n) {
        *slot = q.items.pop_front().expect("counted above");
    }
    n
}

pub fn interrupt() {
    lock(&QUEUE).interrupt = true;
    QUEUE_CV.notify_all();
}

// ---------------------------------------------------------------------------------------------
// Pending tokens

struct PendingOp {
    cancel: Option<oneshot::Sender<()>>,
    endpoint: u64,
}

static PENDING: Mutex<Option<HashMap<u64, PendingOp>>> = Mutex::new(None);

/// A registered token: its task ends it exactly once with `finish`; a panic or an early drop
/// ends it with INTERNAL (the Drop below), so Go always gets its one completion.
pub struct Token {
    token: u64,
    done: bool,
}

impl Token {
    /// Registers `token` under endpoint `ep` (0 = none). Errors: ARG for 0 or the log token,
    /// ARG for a token already pending, LIMIT past 2^20.
    pub fn register(token: u64, ep: u64) -> Result<(Token, oneshot::Receiver<()>), i32> {
        if token == 0 || token == ALK_TOKEN_LOG {
            return Err(ALK_E_ARG);
        }
        let (tx, rx) = oneshot::channel();
        let mut p = lock(&PENDING);
        let map = p.get_or_insert_with(HashMap::new);
        if map.len() >= MAX_PENDING {
            return Err(ALK_E_LIMIT);
        }
        if map.contains_key(&token) {
            return Err(ALK_E_ARG);
        }
        map.insert(
            token,
            PendingOp {
                cancel: Some(tx),
                endpoint: ep,
            },
        );
        Ok((Token { token, done: false }, rx))
    }

    /// Ends the operation with `o`. Removing the entry and queueing happen under the table lock,
    /// so `alk_cancel` either reaches a pending operation or finds the result queued.
    pub fn finish(mut self, o: Outcome) {
        self.done = true;
        let mut p = lock(&PENDING);
        if let Some(map) = p.as_mut() {
            map.remove(&self.token);
        }
        push(o.complete(self.token));
    }

    /// Forgets the registration of an operation that completed synchronously (no completion).
    pub fn forget(mut self) {
        self.done = true;
        let mut p = lock(&PENDING);
        if let Some(map) = p.as_mut() {
            map.remove(&self.token);
        }
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        if !self.done {
            let mut p = lock(&PENDING);
            if let Some(map) = p.as_mut() {
                map.remove(&self.token);
            }
            push(
                Outcome::err(
                    ALK_E_INTERNAL,
                    "internal error: operation ended without a result",
                )
                .complete(self.token),
            );
        }
    }
}

/// Asks a pending operation to end with CANCELED; a no-op once its result is queued.
pub fn cancel(token: u64) -> i32 {
    let tx = {
        let mut p = lock(&PENDING);
        p.as_mut()
            .and_then(|m| m.get_mut(&token))
            .and_then(|op| op.cancel.take())
    };
    if let Some(tx) = tx {
        let _ = tx.send(());
    }
    ALK_OK
}

/// Cancels every pending operation registered under endpoint `ep` (its close).
pub fn cancel_endpoint(ep: u64) {
    let txs: Vec<_> = {
        let mut p = lock(&PENDING);
        p.as_mut()
            .map(|m| {
                m.values_mut()
                    .filter(|op| op.endpoint == ep)
                    .filter_map(|op| op.cancel.take())
                    .collect()
            })
            .unwrap_or_default()
    };
    for tx in txs {
        let _ = tx.send(());
    }
}

pub fn pending_count() -> u64 {
    lock(&PENDING).as_ref().map_or(0, |m| m.len() as u64)
}

pub fn pending_under(ep: u64) -> usize {
    lock(&PENDING)
        .as_ref()
        .map_or(0, |m| m.values().filter(|op| op.endpoint == ep).count())
}

// ---------------------------------------------------------------------------------------------
// Handles

pub const KIND_ENDPOINT: u8 = 1;
pub const KIND_CONN: u8 = 2;
pub const KIND_STREAM: u8 = 3;
pub const KIND_CHUNK: u8 = 4;
pub const KIND_MESSAGE: u8 = 5;

pub enum Obj {
    Endpoint(Arc<crate::ep::Ep>),
    Conn(Arc<crate::io::Conn>),
    Stream(Arc<crate::io::Stream>),
    Chunk(Bytes),
    Message(Vec<u8>),
}

static HANDLES: Mutex<Option<HashMap<u64, Obj>>> = Mutex::new(None);
static NEXT_HANDLE: AtomicU64 = AtomicU64::new(1);
pub static CHUNK_BYTES: AtomicU64 = AtomicU64::new(0);

pub fn insert(kind: u8, obj: Obj) -> u64 {
    let id =
        ((kind as u64) << 56) | (NEXT_HANDLE.fetch_add(1, Ordering::Relaxed) & ((1 << 56) - 1));
    if let Obj::Chunk(b) = &obj {
        CHUNK_BYTES.fetch_add(b.len() as u64, Ordering::Relaxed);
    }
    lock(&HANDLES)
        .get_or_insert_with(HashMap::new)
        .insert(id, obj);
    id
}

pub fn new_message(text: &str, max: usize) -> u64 {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    insert(KIND_MESSAGE, Obj::Message(text.as_bytes()[..end].to_vec()))
}

pub fn kind_of(h: u64) -> u8 {
    (h >> 56) as u8
}

pub fn endpoint(h: u64) -> Result<Arc<crate::ep::Ep>, i32> {
    match lock(&HANDLES).as_ref().and_then(|m| m.get(&h)) {
        Some(Obj::Endpoint(e)) => Ok(e.clone()),
        _ => Err(ALK_E_HANDLE),
    }
}

pub fn conn(h: u64) -> Result<Arc<crate::io::Conn>, i32> {
    match lock(&HANDLES).as_ref().and_then(|m| m.get(&h)) {
        Some(Obj::Conn(c)) => Ok(c.clone()),
        _ => Err(ALK_E_HANDLE),
    }
}

pub fn stream(h: u64) -> Result<Arc<crate::io::Stream>, i32> {
    match lock(&HANDLES).as_ref().and_then(|m| m.get(&h)) {
        Some(Obj::Stream(s)) => Ok(s.clone()),
        _ => Err(ALK_E_HANDLE),
    }
}

/// Removes a handle; the object itself lives on while tasks hold it (reference-counted).
pub fn release(h: u64) -> Result<Obj, i32> {
    let obj = lock(&HANDLES)
        .as_mut()
        .and_then(|m| m.remove(&h))
        .ok_or(ALK_E_HANDLE)?;
    if let Obj::Chunk(b) = &obj {
        CHUNK_BYTES.fetch_sub(b.len() as u64, Ordering::Relaxed);
    }
    Ok(obj)
}

/// Takes a message handle's bytes (consuming it).
pub fn take_message(h: u64) -> Result<Vec<u8>, i32> {
    if kind_of(h) != KIND_MESSAGE {
        return Err(ALK_E_HANDLE);
    }
    match release(h)? {
        Obj::Message(m) => Ok(m),
        _ => Err(ALK_E_HANDLE),
    }
}

pub fn handle_count() -> u64 {
    lock(&HANDLES).as_ref().map_or(0, |m| m.len() as u64)
}
