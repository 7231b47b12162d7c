//! Every exported function (include/alknet_iroh.h, spec iroh.md §4). Each body runs under
//! `catch_unwind` (a panic is INTERNAL for that call), validates every pointer and length
//! before use, and keeps no pointer it was given past its return (§4.2).

use std::ffi::c_char;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering;
use std::time::Duration;

use iroh::{PublicKey, RelayUrl};

use crate::ep::{self, BindConfig, BindOpts};
use crate::io;
use crate::queue::{self, Completion, Outcome, Token};
use crate::status::*;

/// `alk_conn_info_t`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ConnInfo {
    pub remote_id: [u8; 32],
    pub alpn: [u8; 255],
    pub alpn_len: u8,
    pub path: u32,
}

/// `alk_stats_t`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    pub handles: u64,
    pub tokens: u64,
    pub chunk_bytes: u64,
    pub endpoints: u64,
    pub refused_handshakes: u64,
    pub refused_limit_total: u64,
    pub refused_limit_ip: u64,
    pub refused_backlog: u64,
    pub handshake_failed: u64,
    pub log_dropped: u64,
}

/// Every export's body: a panic is INTERNAL for that call, and the body runs inside the runtime
/// once it exists (drops of iroh objects need it; every handle implies `alk_init` ran).
fn guard(f: impl FnOnce() -> i32) -> i32 {
    let _enter = queue::rt().map(|rt| rt.enter());
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(ALK_E_INTERNAL)
}

/// Borrows `(p, n)` for the duration of the call: NULL only with `n == 0`, at most `max`.
///
/// # Safety
/// `p` must point to `n` readable bytes when non-null.
unsafe fn slice<'a>(p: *const u8, n: u64, max: usize, what: &str) -> Result<&'a [u8], String> {
    if n == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(format!("{what}: NULL with a length"));
    }
    if n > max as u64 {
        return Err(format!("{what}: longer than {max} bytes"));
    }
    // SAFETY: non-null, and the caller promises n readable bytes; the slice does not outlive
    // this call (every caller copies what it keeps).
    Ok(unsafe { std::slice::from_raw_parts(p, n as usize) })
}

/// A `\n`-separated UTF-8 list of at most `max_items` non-empty entries of at most `max_len`.
fn list(b: &[u8], max_items: usize, max_len: usize, what: &str) -> Result<Vec<String>, String> {
    let s = std::str::from_utf8(b).map_err(|_| format!("{what}: not UTF-8"))?;
    let items: Vec<String> = s
        .split('\n')
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    if items.len() > max_items {
        return Err(format!("{what}: more than {max_items} entries"));
    }
    if let Some(l) = items.iter().find(|l| l.len() > max_len) {
        return Err(format!(
            "{what}: an entry longer than {max_len} bytes ({} bytes)",
            l.len()
        ));
    }
    Ok(items)
}

fn socket_addrs(items: &[String], what: &str) -> Result<Vec<SocketAddr>, String> {
    items
        .iter()
        .map(|a| {
            a.parse::<SocketAddr>()
                .map_err(|_| format!("{what}: {a:?} is not an IP-literal host:port"))
        })
        .collect()
}

/// Writes `o` to `*out` (when non-null) and returns its status.
///
/// # Safety
/// `out` is null or points to a writable `alk_completion`.
unsafe fn put(out: *mut Completion, token: u64, o: Outcome) -> i32 {
    if !out.is_null() {
        // SAFETY: checked non-null; the caller provides a writable completion.
        unsafe { *out = o.complete(token) };
    }
    o.status
}

/// Runs an operation that may complete now (`Some`) or later (`None` → PENDING).
///
/// # Safety
/// As `put`.
unsafe fn run(
    t: u64,
    ep: u64,
    out: *mut Completion,
    f: impl FnOnce(Token, tokio::sync::oneshot::Receiver<()>) -> Option<Outcome>,
) -> i32 {
    let Some(rt) = queue::rt() else {
        // SAFETY: forwarded contract.
        return unsafe { put(out, t, Outcome::err(ALK_E_ARG, "alk_init was not called")) };
    };
    let _ = rt; // guard() already entered it
    let (token, cancel) = match Token::register(t, ep) {
        Ok(x) => x,
        // SAFETY: forwarded contract.
        Err(s) => {
            return unsafe {
                put(
                    out,
                    t,
                    Outcome::err(
                        s,
                        "token: zero, reserved, already pending or too many pending",
                    ),
                )
            };
        }
    };
    match f(token, cancel) {
        // SAFETY: forwarded contract.
        Some(o) => unsafe { put(out, t, o) },
        None => ALK_PENDING,
    }
}

macro_rules! fail {
    ($out:expr, $t:expr, $status:expr, $msg:expr) => {
        // SAFETY: `out` is the caller's completion pointer (null or writable).
        return guard(|| unsafe { put($out, $t, Outcome::err($status, $msg)) })
    };
}

/// Runs an operation on endpoint `h` that may complete later; `under_ep` registers its token
/// under the endpoint, so the endpoint's close cancels it.
///
/// # Safety
/// As `put`.
unsafe fn endpoint_op(
    h: u64,
    t: u64,
    out: *mut Completion,
    under_ep: bool,
    f: impl FnOnce(std::sync::Arc<ep::Ep>, Token, tokio::sync::oneshot::Receiver<()>) -> Option<Outcome>,
) -> i32 {
    let st = match queue::endpoint(h) {
        Ok(st) => st,
        Err(s) => fail!(out, t, s, "endpoint: not an endpoint handle"),
    };
    let ep = if under_ep { h } else { 0 };
    // SAFETY: forwarded contract.
    guard(move || unsafe { run(t, ep, out, move |token, cancel| f(st, token, cancel)) })
}

#[unsafe(no_mangle)]
pub extern "C" fn alk_abi_version() -> u32 {
    ALK_ABI_VERSION
}

#[unsafe(no_mangle)]
pub extern "C" fn alk_iroh_version() -> *const c_char {
    c"1.0.3".as_ptr()
}

#[unsafe(no_mangle)]
pub extern "C" fn alk_init(workers: u32, flags: u32) -> i32 {
    guard(|| {
        if flags & !ALK_INIT_FAULTS != 0 {
            return ALK_E_ARG;
        }
        if flags & ALK_INIT_FAULTS != 0 {
            queue::FAULTS.store(true, Ordering::Relaxed);
        }
        match queue::init(if workers == 0 { 2 } else { workers }) {
            Ok(()) => ALK_OK,
            Err(_) => ALK_E_INTERNAL,
        }
    })
}

/// # Safety
/// `out` points to `cap` writable completions; `n` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn alk_wait(
    out: *mut Completion,
    cap: u32,
    timeout_ms: i64,
    n: *mut u32,
) -> i32 {
    guard(|| {
        if out.is_null() || cap == 0 || n.is_null() {
            return ALK_E_ARG;
        }
        // SAFETY: non-null, `cap` entries promised by the caller; used only during the call.
        let buf = unsafe { std::slice::from_raw_parts_mut(out, cap as usize) };
        let got = queue::wait(buf, timeout_ms);
        // SAFETY: non-null, writable.
        unsafe { *n = got as u32 };
        ALK_OK
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn alk_wait_interrupt() -> i32 {
    guard(|| {
        queue::interrupt();
        ALK_OK
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn alk_cancel(t: u64) -> i32 {
    guard(|| queue::cancel(t))
}

#[unsafe(no_mangle)]
pub extern "C" fn alk_release(h: u64) -> i32 {
    guard(|| match queue::release(h) {
        Ok(_) => ALK_OK,
        Err(s) => s,
    })
}

/// # Safety
/// `buf` points to `cap` writable bytes (or is null with `cap == 0`); `len` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn alk_msg_take(h: u64, buf: *mut u8, cap: u64, len: *mut u64) -> i32 {
    guard(|| {
        if (buf.is_null() && cap > 0) || len.is_null() {
            return ALK_E_ARG;
        }
        match queue::take_message(h) {
            Ok(m) => {
                let k = m.len().min(cap as usize);
                if k > 0 {
                    // SAFETY: buf has cap ≥ k writable bytes; m is our own vector.
                    unsafe { std::ptr::copy_nonoverlapping(m.as_ptr(), buf, k) };
                }
                // SAFETY: non-null, writable.
                unsafe { *len = k as u64 };
                ALK_OK
            }
            Err(s) => s,
        }
    })
}

/// # Safety
/// `out` points to a writable `alk_stats`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn alk_stats(out: *mut Stats) -> i32 {
    guard(|| {
        if out.is_null() {
            return ALK_E_ARG;
        }
        let s = Stats {
            handles: queue::handle_count(),
            tokens: queue::pending_count(),
            chunk_bytes: queue::CHUNK_BYTES.load(Ordering::Relaxed),
            endpoints: ep::ENDPOINTS.load(Ordering::Relaxed),
            refused_handshakes: ep::REFUSED_HANDSHAKES.load(Ordering::Relaxed),
            refused_limit_total: ep::REFUSED_TOTAL.load(Ordering::Relaxed),
            refused_limit_ip: ep::REFUSED_IP.load(Ordering::Relaxed),
            refused_backlog: ep::REFUSED_BACKLOG.load(Ordering::Relaxed),
            handshake_failed: ep::HANDSHAKE_FAILED.load(Ordering::Relaxed),
            log_dropped: crate::log::DROPPED.load(Ordering::Relaxed),
        };
        // SAFETY: non-null, writable.
        unsafe { *out = s };
        ALK_OK
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn alk_log_level(level: i32) -> i32 {
    guard(|| crate::log::set_level(level))
}

/// # Safety
/// `buf` points to `cap` writable bytes; `len` and `level` are writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn alk_log_take(
    buf: *mut u8,
    cap: u64,
    len: *mut u64,
    level: *mut i32,
) -> i32 {
    guard(|| {
        if buf.is_null() || cap == 0 || len.is_null() || level.is_null() {
            return ALK_E_ARG;
        }
        // SAFETY: non-null with cap writable bytes, used only during the call.
        let b = unsafe { std::slice::from_raw_parts_mut(buf, cap.min(1 << 20) as usize) };
        let (n, l) = crate::log::take(b).unwrap_or((0, 0));
        // SAFETY: non-null, writable.
        unsafe {
            *len = n as u64;
            *level = l;
        }
        ALK_OK
    })
}

/// Test-only faults (with ALK_INIT_FAULTS): 1 panics in this call, 2 panics in a runtime task,
/// 3 ends endpoint `h` as if iroh had lost it, 4 has a runtime worker write (vectored, without
/// MSG_NOSIGNAL) to a TCP socket its peer reset, as rustls does: the SIGPIPE that raises must
/// stay blocked on runtime threads. Kind 4 completes token `h` with the write's status (`TRANSPORT`
/// with the error text: EPIPE or ECONNRESET), or `INTERNAL` when the worker does not block SIGPIPE.
#[unsafe(no_mangle)]
pub extern "C" fn alk_test_fault(h: u64, kind: u32) -> i32 {
    guard(|| {
        if !queue::FAULTS.load(Ordering::Relaxed) {
            return ALK_E_UNSUPPORTED;
        }
        match kind {
            1 => panic!("alk_test_fault: synchronous panic"),
            2 => {
                let Some(rt) = queue::rt() else {
                    return ALK_E_ARG;
                };
                rt.spawn(async { panic!("alk_test_fault: panic in a task") });
                ALK_OK
            }
            4 => {
                let Some(rt) = queue::rt() else {
                    return ALK_E_ARG;
                };
                let token = h;
                // On a worker thread itself (a brief block is fine for a test fault).
                rt.spawn(async move {
                    let o = match sigpipe_blocked().then(write_to_reset_socket) {
                        None => Outcome::err(
                            ALK_E_INTERNAL,
                            "SIGPIPE is not blocked on this runtime worker",
                        ),
                        Some(Ok(())) => Outcome::ok(0),
                        Some(Err(e)) => Outcome::err(ALK_E_TRANSPORT, e),
                    };
                    queue::push(o.complete(token));
                });
                ALK_PENDING
            }
            3 => {
                let Ok(st) = queue::endpoint(h) else {
                    return ALK_E_HANDLE;
                };
                let Some(rt) = queue::rt() else {
                    return ALK_E_ARG;
                };
                rt.spawn(async move { st.ep.close().await });
                ALK_OK
            }
            _ => ALK_E_ARG,
        }
    })
}

/// Whether SIGPIPE is in the calling thread's blocked set.
fn sigpipe_blocked() -> bool {
    // SAFETY: sigemptyset initialises a local set; pthread_sigmask with a null new set only
    // reads this thread's mask into it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut set) == 0
            && libc::sigismember(&set, libc::SIGPIPE) == 1
    }
}

/// Writes to a loopback TCP connection whose peer closed with a reset until the kernel refuses;
/// runs on a runtime worker thread.
fn write_to_reset_socket() -> Result<(), String> {
    use std::io::{IoSlice, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let mut c = std::net::TcpStream::connect(l.local_addr().map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let (peer, _) = l.accept().map_err(|e| e.to_string())?;
    // SO_LINGER 0: close sends a reset.
    let lg = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket and a linger value of the size passed.
    unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&peer),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&lg as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(peer);
    let buf = [0u8; 4096];
    for _ in 0..1000 {
        if let Err(e) = c.write_vectored(&[IoSlice::new(&buf), IoSlice::new(&buf)]) {
            return Err(e.to_string());
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    Err("the reset socket accepted every write".into())
}

/// # Safety
/// Every pointer is null with a zero length, or points to that many readable bytes; `key`
/// to 32; `out` is writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn alk_endpoint_bind(
    opts: *const BindOpts,
    key: *const u8,
    alpns: *const u8,
    alpns_len: u64,
    binds: *const u8,
    binds_len: u64,
    relays: *const u8,
    relays_len: u64,
    advertise: *const u8,
    advertise_len: u64,
    t: u64,
    out: *mut Completion,
) -> i32 {
    if opts.is_null() {
        fail!(out, t, ALK_E_ARG, "opts: NULL");
    }
    if key.is_null() {
        fail!(out, t, ALK_E_ARG, "key: NULL");
    }
    // SAFETY: non-null; the caller passes a valid alk_bind_opts.
    let o = unsafe { *opts };
    let parsed = (|| -> Result<BindConfig, String> {
        // SAFETY: each (ptr, len) pair per this function's contract.
        let (a, b, r, adv) = unsafe {
            (
                slice(alpns, alpns_len, 16 * 256, "alpns")?,
                slice(binds, binds_len, 2 * 64, "binds")?,
                slice(relays, relays_len, 8 * 513, "relays")?,
                slice(advertise, advertise_len, 8 * 64, "advertise")?,
            )
        };
        let alpns = list(a, 16, 255, "alpns")?;
        let binds = socket_addrs(&list(b, 2, 64, "binds")?, "binds")?;
        if binds.iter().filter(|a| a.is_ipv4()).count() > 1
            || binds.iter().filter(|a| a.is_ipv6()).count() > 1
        {
            return Err("binds: at most one address per family".into());
        }
        let relays = list(r, 8, 512, "relays")?
            .iter()
            .map(|u| {
                u.parse::<RelayUrl>()
                    .map_err(|_| format!("relays: {u:?} is not a URL"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let advertise = socket_addrs(&list(adv, 8, 64, "advertise")?, "advertise")?;
        if o.relay_mode > ALK_RELAY_N0 {
            return Err("opts.relay_mode: not 0, 1 or 2".into());
        }
        if o.relay_mode == ALK_RELAY_CUSTOM && relays.is_empty() {
            return Err("relays: relay mode custom needs at least one URL".into());
        }
        if o.flags & !ALK_BIND_DIAL_ONLY != 0 {
            return Err("opts.flags: unknown bits".into());
        }
        let dial_only = alpns.is_empty() || o.flags & ALK_BIND_DIAL_ONLY != 0;
        let nz = |v: u32, d: u32| if v == 0 { d } else { v };
        let mut cfg = BindConfig {
            opts: BindOpts {
                relay_mode: o.relay_mode,
                max_bidi_streams: nz(o.max_bidi_streams, 100),
                idle_timeout_ms: nz(o.idle_timeout_ms, 30_000),
                handshake_timeout_ms: nz(o.handshake_timeout_ms, 10_000),
                max_handshakes: nz(o.max_handshakes, 64),
                backlog: nz(o.backlog, 64),
                max_conns: nz(o.max_conns, u32::MAX),
                max_conns_per_ip: nz(o.max_conns_per_ip, u32::MAX),
                stream_window: nz(o.stream_window, 1 << 20),
                conn_window: nz(o.conn_window, 8 << 20),
                online_timeout_ms: o.online_timeout_ms,
                flags: o.flags,
            },
            dial_only,
            key: [0; 32],
            alpns: alpns.into_iter().map(String::into_bytes).collect(),
            binds,
            relays,
            advertise,
        };
        // SAFETY: key points to 32 readable bytes; copied once, straight into the config, which
        // zeroizes it when dropped (no other copy of the seed is made).
        unsafe { std::ptr::copy_nonoverlapping(key, cfg.key.as_mut_ptr(), 32) };
        Ok(cfg)
    })();
    let cfg = match parsed {
        Ok(c) => c,
        Err(e) => fail!(out, t, ALK_E_ARG, e),
    };
    guard(move || {
        // SAFETY: forwarded contract for `out`.
        unsafe {
            run(t, 0, out, move |token, _cancel| {
                ep::spawn(token, ep::bind(cfg));
                None
            })
        }
    })
}

/// # Safety
/// `out` points to 32 writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn alk_endpoint_id(h: u64, out: *mut u8) -> i32 {
    guard(|| {
        if out.is_null() {
            return ALK_E_ARG;
        }
        match queue::endpoint(h) {
            Ok(st) => {
                let id = st.ep.id();
                // SAFETY: out has 32 writable bytes.
                unsafe { std::ptr::copy_nonoverlapping(id.as_bytes().as_ptr(), out, 32) };
                ALK_OK
            }
            Err(s) => s,
        }
    })
}

/// # Safety
/// `buf` points to `cap` writable bytes (or null with 0); `len` and `gen` are writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn alk_endpoint_addrs(
    h: u64,
    which: u32,
    buf: *mut u8,
    cap: u64,
    len: *mut u64,
    generation: *mut u64,
) -> i32 {
    guard(|| {
        if (buf.is_null() && cap > 0)
            || len.is_null()
            || generation.is_null()
            || which > ALK_ADDRS_BOUND
        {
            return ALK_E_ARG;
        }
        let st = match queue::endpoint(h) {
            Ok(st) => st,
            Err(s) => return s,
        };
        let g = *st.addr_gen.borrow();
        let text = ep::addr_lines(&st, which);
        // SAFETY: len and generation are writable.
        unsafe {
            *len = text.len() as u64;
            *generation = g;
        }
        if text.len() as u64 > cap {
            return ALK_E_LIMIT; // *len says how much room is needed
        }
        if !text.is_empty() {
            // SAFETY: buf has cap ≥ text.len() writable bytes.
            unsafe { std::ptr::copy_nonoverlapping(text.as_ptr(), buf, text.len()) };
        }
        ALK_OK
    })
}

/// # Safety
/// `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn alk_endpoint_watch(
    h: u64,
    generation: u64,
    t: u64,
    out: *mut Completion,
) -> i32 {
    // SAFETY: forwarded contract.
    unsafe {
        endpoint_op(h, t, out, true, move |st, token, cancel| {
            let now = *st.addr_gen.borrow();
            if now > generation {
                token.forget();
                return Some(Outcome::ok(now));
            }
            ep::spawn(token, ep::watch(st, generation, cancel));
            None
        })
    }
}

/// # Safety
/// `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn alk_endpoint_accept(h: u64, t: u64, out: *mut Completion) -> i32 {
    // SAFETY: forwarded contract.
    unsafe {
        endpoint_op(h, t, out, true, |st, token, cancel| {
            ep::spawn(token, ep::accept(st, cancel));
            None
        })
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn alk_endpoint_stop_accepting(h: u64) -> i32 {
    guard(|| match queue::endpoint(h) {
        Ok(st) => {
            ep::stop_accepting(&st);
            ALK_OK
        }
        Err(s) => s,
    })
}

/// # Safety
/// `id` points to 32 readable bytes; the (ptr, len) pairs as for bind; `out` is writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn alk_endpoint_connect(
    h: u64,
    id: *const u8,
    alpn: *const u8,
    alpn_len: u64,
    relay: *const u8,
    relay_len: u64,
    addrs: *const u8,
    addrs_len: u64,
    timeout_ms: u32,
    t: u64,
    out: *mut Completion,
) -> i32 {
    if id.is_null() {
        fail!(out, t, ALK_E_ARG, "id: NULL");
    }
    let parsed = (|| -> Result<_, String> {
        let mut k = [0u8; 32];
        // SAFETY: id has 32 readable bytes.
        unsafe { std::ptr::copy_nonoverlapping(id, k.as_mut_ptr(), 32) };
        let key =
            PublicKey::from_bytes(&k).map_err(|_| "id: not an Ed25519 public key".to_string())?;
        // SAFETY: per contract.
        let (a, r, ad) = unsafe {
            (
                slice(alpn, alpn_len, 255, "alpn")?,
                slice(relay, relay_len, 512, "relay")?,
                slice(addrs, addrs_len, 16 * 64, "addrs")?,
            )
        };
        if a.is_empty() {
            return Err("alpn: empty".into());
        }
        let relay = if r.is_empty() {
            None
        } else {
            let s = std::str::from_utf8(r).map_err(|_| "relay: not UTF-8".to_string())?;
            Some(
                s.parse::<RelayUrl>()
                    .map_err(|_| format!("relay: {s:?} is not a URL"))?,
            )
        };
        let addrs = socket_addrs(&list(ad, 16, 64, "addrs")?, "addrs")?;
        Ok((key, a.to_vec(), relay, addrs))
    })();
    let (key, alpn, relay, addrs) = match parsed {
        Ok(x) => x,
        Err(e) => fail!(out, t, ALK_E_ARG, e),
    };
    let timeout = Duration::from_millis(if timeout_ms == 0 {
        10_000
    } else {
        timeout_ms as u64
    });
    // SAFETY: forwarded contract.
    unsafe {
        endpoint_op(h, t, out, true, move |st, token, cancel| {
            ep::spawn(
                token,
                ep::connect(st, key, alpn, relay, addrs, timeout, cancel),
            );
            None
        })
    }
}

/// # Safety
/// `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn alk_endpoint_close(h: u64, t: u64, out: *mut Completion) -> i32 {
    // SAFETY: forwarded contract.
    unsafe {
        endpoint_op(h, t, out, false, |st, token, _cancel| {
            ep::spawn(token, ep::close(st));
            None
        })
    }
}

/// # Safety
/// `out` points to a writable `alk_conn_info`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn alk_conn_info(h: u64, out: *mut ConnInfo) -> i32 {
    guard(|| {
        if out.is_null() {
            return ALK_E_ARG;
        }
        let c = match queue::conn(h) {
            Ok(c) => c,
            Err(s) => return s,
        };
        let mut info = ConnInfo {
            remote_id: *c.conn.remote_id().as_bytes(),
            alpn: [0; 255],
            alpn_len: 0,
            path: c.path(),
        };
        let a = c.conn.alpn();
        let n = a.len().min(255);
        info.alpn[..n].copy_from_slice(&a[..n]);
        info.alpn_len = n as u8;
        // SAFETY: non-null, writable.
        unsafe { *out = info };
        ALK_OK
    })
}

macro_rules! conn_op {
    ($name:ident, $f:path) => {
        /// # Safety
        /// `out` is writable.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(h: u64, t: u64, out: *mut Completion) -> i32 {
            let c = match queue::conn(h) {
                Ok(c) => c,
                Err(s) => fail!(out, t, s, "conn: not a connection handle"),
            };
            let ep = c.ep;
            guard(move || {
                // SAFETY: forwarded contract.
                unsafe { run(t, ep, out, move |token, cancel| $f(c, token, cancel)) }
            })
        }
    };
}

conn_op!(alk_conn_open, io::open);
conn_op!(alk_conn_accept, io::accept);
conn_op!(alk_conn_closed, io::closed);

/// # Safety
/// `reason` is null with 0, or points to `reason_len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn alk_conn_close(
    h: u64,
    code: u64,
    reason: *const u8,
    reason_len: u64,
) -> i32 {
    guard(|| {
        if code > (1 << 62) - 1 {
            return ALK_E_ARG;
        }
        // SAFETY: per contract.
        let r = match unsafe { slice(reason, reason_len, 256, "reason") } {
            Ok(r) => r,
            Err(_) => return ALK_E_ARG,
        };
        let c = match queue::conn(h) {
            Ok(c) => c,
            Err(s) => return s,
        };
        c.close(code, r);
        ALK_OK
    })
}

/// # Safety
/// `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn alk_stream_read(
    h: u64,
    max: u64,
    release: u64,
    t: u64,
    out: *mut Completion,
) -> i32 {
    if release != 0 {
        if queue::kind_of(release) != queue::KIND_CHUNK {
            fail!(out, t, ALK_E_HANDLE, "release: not a chunk handle");
        }
        if let Err(s) = queue::release(release) {
            fail!(out, t, s, "release: not a chunk handle");
        }
    }
    if max == 0 || max > MAX_IO as u64 {
        fail!(out, t, ALK_E_ARG, "max: not 1..65536");
    }
    let st = match queue::stream(h) {
        Ok(s) => s,
        Err(s) => fail!(out, t, s, "stream: not a stream handle"),
    };
    let ep = st_ep(&st);
    guard(move || {
        // SAFETY: forwarded contract.
        unsafe {
            run(t, ep, out, move |token, cancel| {
                io::read(st, max as usize, token, cancel)
            })
        }
    })
}

fn st_ep(st: &io::Stream) -> u64 {
    st.endpoint()
}

/// # Safety
/// `p` is null with 0, or points to `n` readable bytes; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn alk_stream_write(
    h: u64,
    p: *const u8,
    n: u64,
    flags: u32,
    t: u64,
    out: *mut Completion,
) -> i32 {
    if flags & !ALK_F_FIN != 0 {
        fail!(out, t, ALK_E_ARG, "flags: unknown bits");
    }
    // SAFETY: per contract; io::write copies what it keeps before returning.
    let data = match unsafe { slice(p, n, MAX_IO, "p") } {
        Ok(d) => d,
        Err(e) => fail!(out, t, ALK_E_ARG, e),
    };
    let st = match queue::stream(h) {
        Ok(s) => s,
        Err(s) => fail!(out, t, s, "stream: not a stream handle"),
    };
    let ep = st_ep(&st);
    guard(move || {
        // SAFETY: forwarded contract.
        unsafe {
            run(t, ep, out, move |token, cancel| {
                io::write(st, data, flags & ALK_F_FIN != 0, token, cancel)
            })
        }
    })
}

fn stream_call(h: u64, f: impl FnOnce(&io::Stream) -> i32) -> i32 {
    guard(|| match queue::stream(h) {
        Ok(st) => f(&st),
        Err(s) => s,
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn alk_stream_finish(h: u64) -> i32 {
    stream_call(h, io::finish)
}

#[unsafe(no_mangle)]
pub extern "C" fn alk_stream_reset(h: u64, code: u64) -> i32 {
    if code > (1 << 62) - 1 {
        return ALK_E_ARG;
    }
    stream_call(h, |s| io::reset(s, code))
}

#[unsafe(no_mangle)]
pub extern "C" fn alk_stream_stop(h: u64, code: u64) -> i32 {
    if code > (1 << 62) - 1 {
        return ALK_E_ARG;
    }
    stream_call(h, |s| io::stop(s, code))
}
