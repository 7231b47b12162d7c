//! Endpoints (spec iroh.md §5.1–§5.3): bind per relay mode, the accept task with its limits
//! before the handshake, dials with typed errors, addresses and close.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use iroh::endpoint::{
    BindOpts as IrohBindOpts, ConnectError, ConnectWithOptsError, ConnectingError, Connection,
    ConnectionError, IdleTimeout, IncomingAddr, PortmapperConfig, QuicConnectError,
    QuicTransportConfig, VarInt, presets,
};
use iroh::{Endpoint, EndpointAddr, PublicKey, RelayMode, RelayUrl, SecretKey, Watcher};
use tokio::sync::{mpsc, oneshot, watch};
use zeroize::Zeroize;

use crate::io;
use crate::queue::{self, KIND_CONN, KIND_ENDPOINT, Obj, Outcome, Token};
use crate::status::*;

/// Refusals before the handshake and failed handshakes, process-wide (alk_stats).
pub static REFUSED_HANDSHAKES: AtomicU64 = AtomicU64::new(0);
pub static REFUSED_TOTAL: AtomicU64 = AtomicU64::new(0);
pub static REFUSED_IP: AtomicU64 = AtomicU64::new(0);
pub static REFUSED_BACKLOG: AtomicU64 = AtomicU64::new(0);
pub static HANDSHAKE_FAILED: AtomicU64 = AtomicU64::new(0);
pub static ENDPOINTS: AtomicU64 = AtomicU64::new(0);

/// `alk_bind_opts`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct BindOpts {
    pub relay_mode: u32,
    pub max_bidi_streams: u32,
    pub idle_timeout_ms: u32,
    pub handshake_timeout_ms: u32,
    pub max_handshakes: u32,
    pub backlog: u32,
    pub max_conns: u32,
    pub max_conns_per_ip: u32,
    pub stream_window: u32,
    pub conn_window: u32,
    pub online_timeout_ms: u32,
    pub flags: u32,
}

/// Everything `alk_endpoint_bind` was given, checked, with defaults for zero options.
pub struct BindConfig {
    pub opts: BindOpts,
    pub dial_only: bool,
    pub key: [u8; 32],
    pub alpns: Vec<Vec<u8>>,
    pub binds: Vec<SocketAddr>,
    pub relays: Vec<RelayUrl>,
    pub advertise: Vec<SocketAddr>,
}

impl Drop for BindConfig {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

pub struct Ep {
    pub ep: Endpoint,
    pub handle: OnceLock<u64>,
    accepting: AtomicBool,
    backlog: tokio::sync::Mutex<mpsc::Receiver<Connection>>,
    pub addr_gen: watch::Sender<u64>,
    /// Set when the endpoint ended without alk_endpoint_close (§6.8).
    pub lost: AtomicBool,
    /// Set by alk_endpoint_close before iroh's close, so the endpoint's end is expected.
    closing: AtomicBool,
    /// Becomes true when the endpoint ends without alk_endpoint_close: the pending address
    /// watch completes SHUTDOWN, which is how Go learns it must re-bind.
    lost_tx: watch::Sender<bool>,
}

impl Ep {
    pub fn id(&self) -> u64 {
        self.handle.get().copied().unwrap_or(0)
    }
}

impl Drop for Ep {
    fn drop(&mut self) {
        ENDPOINTS.fetch_sub(1, Ordering::Relaxed);
    }
}

fn transport_config(c: &BindConfig) -> Result<QuicTransportConfig, String> {
    let idle = IdleTimeout::try_from(Duration::from_millis(c.opts.idle_timeout_ms.max(1) as u64))
        .map_err(|e| format!("idle_timeout_ms: {e}"))?;
    Ok(QuicTransportConfig::builder()
        .max_concurrent_bidi_streams(VarInt::from_u32(c.opts.max_bidi_streams))
        .max_concurrent_uni_streams(VarInt::from_u32(0))
        .max_idle_timeout(Some(idle))
        .stream_receive_window(VarInt::from_u32(c.opts.stream_window))
        .receive_window(VarInt::from_u32(c.opts.conn_window))
        .datagram_receive_buffer_size(None)
        .build())
}

/// Binds an endpoint as §5's table says for its relay mode.
pub async fn bind(mut c: BindConfig) -> Outcome {
    let secret = SecretKey::from_bytes(&c.key);
    c.key.zeroize();
    let serving = !c.dial_only;
    let mut b = match c.opts.relay_mode {
        ALK_RELAY_CUSTOM => {
            Endpoint::builder(presets::Minimal).relay_mode(RelayMode::custom(c.relays.clone()))
        }
        ALK_RELAY_N0 if serving => Endpoint::builder(presets::N0),
        ALK_RELAY_N0 => Endpoint::builder(presets::Minimal)
            .relay_mode(iroh::endpoint::default_relay_mode())
            .address_lookup(iroh::address_lookup::PkarrResolver::n0_dns())
            .address_lookup(iroh::address_lookup::DnsAddressLookup::n0_dns()),
        _ => Endpoint::builder(presets::Minimal).portmapper_config(PortmapperConfig::Disabled),
    };
    if !serving {
        b = b
            .portmapper_config(PortmapperConfig::Disabled)
            .max_tls_tickets(0);
    }
    let tc = match transport_config(&c) {
        Ok(tc) => tc,
        Err(e) => return Outcome::err(ALK_E_ARG, e),
    };
    b = b
        .secret_key(secret)
        .alpns(c.alpns.clone())
        .clear_ip_transports()
        .transport_config(tc);
    let binds = if c.binds.is_empty() {
        vec![
            SocketAddr::from(([0, 0, 0, 0], 0)),
            SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0)),
        ]
    } else {
        c.binds.clone()
    };
    for a in binds {
        let opts = IrohBindOpts::default().set_is_required(a.is_ipv4());
        b = match b.bind_addr_with_opts(a, opts) {
            Ok(b) => b,
            Err(e) => return Outcome::err(ALK_E_ARG, format!("binds: {a}: {e}")),
        };
    }
    for a in &c.advertise {
        b = b.external_addr(*a);
    }
    let ep = match b.bind().await {
        Ok(ep) => ep,
        Err(e) => return Outcome::err(ALK_E_BIND, format!("bind: {e}")),
    };
    if serving && c.opts.relay_mode != ALK_RELAY_DISABLED {
        let wait = Duration::from_millis(if c.opts.online_timeout_ms == 0 {
            5000
        } else {
            c.opts.online_timeout_ms as u64
        });
        let _ = tokio::time::timeout(wait, ep.online()).await;
    }
    let (tx, rx) = mpsc::channel(c.opts.backlog.clamp(1, 64) as usize);
    let (gen_tx, _) = watch::channel(1u64);
    let st = Arc::new(Ep {
        ep: ep.clone(),
        handle: OnceLock::new(),
        accepting: AtomicBool::new(serving),
        backlog: tokio::sync::Mutex::new(rx),
        addr_gen: gen_tx,
        lost: AtomicBool::new(false),
        closing: AtomicBool::new(false),
        lost_tx: watch::channel(false).0,
    });
    ENDPOINTS.fetch_add(1, Ordering::Relaxed);
    let h = queue::insert(KIND_ENDPOINT, Obj::Endpoint(st.clone()));
    let _ = st.handle.set(h);
    tokio::spawn(watch_addrs(Arc::downgrade(&st), ep.watch_addr()));
    tokio::spawn(watch_lost(Arc::downgrade(&st), ep.closed()));
    if serving {
        let limits = Limits {
            max_handshakes: c.opts.max_handshakes.clamp(1, 64) as usize,
            max_conns: c.opts.max_conns as usize,
            max_per_ip: c.opts.max_conns_per_ip as usize,
            handshake: Duration::from_millis(c.opts.handshake_timeout_ms.max(1) as u64),
        };
        tokio::spawn(accept_loop(st.clone(), tx, limits));
    }
    Outcome::ok(h)
}

async fn watch_addrs(st: std::sync::Weak<Ep>, mut w: impl Watcher<Value = EndpointAddr>) {
    while w.updated().await.is_ok() {
        match st.upgrade() {
            Some(st) => st.addr_gen.send_modify(|g| *g += 1),
            None => return,
        }
    }
}

/// Marks the endpoint lost when iroh ends it without alk_endpoint_close (§6.8).
async fn watch_lost(st: std::sync::Weak<Ep>, closed: impl std::future::Future<Output = ()>) {
    closed.await;
    if let Some(st) = st.upgrade()
        && !st.closing.load(Ordering::Acquire)
    {
        st.lost.store(true, Ordering::Release);
        st.lost_tx.send_replace(true);
        tracing::warn!("iroh endpoint ended without close");
    }
}

struct Limits {
    max_handshakes: usize,
    max_conns: usize,
    max_per_ip: usize,
    handshake: Duration,
}

/// The per-IP key of internal/netkey: an IPv4 address, or an IPv6 /64.
fn ip_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

/// Counts a live or handshaking inbound connection until dropped.
struct Slot {
    total: Arc<AtomicUsize>,
    per_ip: Arc<Mutex<HashMap<IpAddr, usize>>>,
    key: Option<IpAddr>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.total.fetch_sub(1, Ordering::Relaxed);
        if let Some(k) = self.key {
            let mut m = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(n) = m.get_mut(&k) {
                *n -= 1;
                if *n == 0 {
                    m.remove(&k);
                }
            }
        }
    }
}

/// Takes every Incoming at once and refuses, before any handshake work, what exceeds the
/// limits (§5.2); finished connections wait in the backlog for alk_endpoint_accept.
async fn accept_loop(st: Arc<Ep>, tx: mpsc::Sender<Connection>, l: Limits) {
    let handshakes = Arc::new(AtomicUsize::new(0));
    let total = Arc::new(AtomicUsize::new(0));
    let per_ip: Arc<Mutex<HashMap<IpAddr, usize>>> = Arc::new(Mutex::new(HashMap::new()));
    while let Some(incoming) = st.ep.accept().await {
        if !st.accepting.load(Ordering::Acquire) {
            incoming.refuse();
            continue;
        }
        if handshakes.load(Ordering::Relaxed) >= l.max_handshakes {
            REFUSED_HANDSHAKES.fetch_add(1, Ordering::Relaxed);
            incoming.refuse();
            continue;
        }
        if total.load(Ordering::Relaxed) >= l.max_conns {
            REFUSED_TOTAL.fetch_add(1, Ordering::Relaxed);
            incoming.refuse();
            continue;
        }
        let key = match incoming.remote_addr() {
            IncomingAddr::Ip(sa) => Some(ip_key(sa.ip())),
            _ => None, // relayed: counted only in the total
        };
        if let Some(k) = key {
            let mut m = per_ip.lock().unwrap_or_else(|p| p.into_inner());
            let n = m.entry(k).or_insert(0);
            if *n >= l.max_per_ip {
                drop(m);
                REFUSED_IP.fetch_add(1, Ordering::Relaxed);
                incoming.refuse();
                continue;
            }
            *n += 1;
        }
        total.fetch_add(1, Ordering::Relaxed);
        let slot = Slot {
            total: total.clone(),
            per_ip: per_ip.clone(),
            key,
        };
        handshakes.fetch_add(1, Ordering::Relaxed);
        let (hs, tx, timeout) = (handshakes.clone(), tx.clone(), l.handshake);
        tokio::spawn(async move {
            let r = tokio::time::timeout(timeout, async move {
                match incoming.accept() {
                    Ok(accepting) => accepting.await.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                }
            })
            .await;
            hs.fetch_sub(1, Ordering::Relaxed);
            let conn = match r {
                Ok(Ok(conn)) => conn,
                _ => {
                    HANDSHAKE_FAILED.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            };
            let weak = conn.weak_handle();
            match tx.try_send(conn) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(conn)) => {
                    REFUSED_BACKLOG.fetch_add(1, Ordering::Relaxed);
                    conn.close(VarInt::from_u32(4), b"limit");
                }
                Err(mpsc::error::TrySendError::Closed(conn)) => {
                    conn.close(VarInt::from_u32(2), b"shutdown")
                }
            }
            weak.closed().await; // the slot counts the connection while it lives
            drop(slot);
        });
    }
}

/// Waits for the next accepted connection.
pub async fn accept(st: Arc<Ep>, cancel: oneshot::Receiver<()>) -> Outcome {
    let mut rx = st.backlog.lock().await;
    tokio::select! {
        biased;
        _ = cancel => Outcome::status(ALK_E_CANCELED, 0),
        c = rx.recv() => match c {
            Some(conn) => Outcome::ok(queue::insert(KIND_CONN, Obj::Conn(Arc::new(io::Conn::new(conn, st.id()))))),
            None => Outcome::err(ALK_E_SHUTDOWN, "endpoint closed"),
        },
    }
}

/// Stops taking new connections and closes those waiting in the backlog.
pub fn stop_accepting(st: &Ep) {
    st.accepting.store(false, Ordering::Release);
    if let Ok(mut rx) = st.backlog.try_lock() {
        rx.close();
        while let Ok(c) = rx.try_recv() {
            c.close(VarInt::from_u32(2), b"shutdown");
        }
    }
}

/// Dials `id` and checks the peer's key and ALPN (§5.3).
pub async fn connect(
    st: Arc<Ep>,
    id: PublicKey,
    alpn: Vec<u8>,
    relay: Option<RelayUrl>,
    addrs: Vec<SocketAddr>,
    timeout: Duration,
    cancel: oneshot::Receiver<()>,
) -> Outcome {
    let mut addr = EndpointAddr::new(id);
    if let Some(r) = relay {
        addr = addr.with_relay_url(r);
    }
    for a in addrs {
        addr = addr.with_ip_addr(a);
    }
    let r = tokio::select! {
        biased;
        _ = cancel => return Outcome::status(ALK_E_CANCELED, 0),
        r = tokio::time::timeout(timeout, st.ep.connect(addr, &alpn)) => r,
    };
    let conn = match r {
        Err(_) => return Outcome::err(ALK_E_CONNECT, "connect: timed out"),
        Ok(Err(e)) => return Outcome::err(classify_connect(&e), format!("connect: {e}")),
        Ok(Ok(c)) => c,
    };
    if conn.remote_id() != id {
        conn.close(VarInt::from_u32(0), b"");
        return Outcome::err(ALK_E_PIN, "connect: the peer presented another key");
    }
    if conn.alpn() != alpn.as_slice() {
        conn.close(VarInt::from_u32(0), b"");
        return Outcome::err(ALK_E_ALPN, "connect: the peer negotiated another ALPN");
    }
    Outcome::ok(queue::insert(
        KIND_CONN,
        Obj::Conn(Arc::new(io::Conn::new(conn, st.id()))),
    ))
}

/// §5.3's table.
pub fn classify_connect(e: &ConnectError) -> i32 {
    match e {
        ConnectError::Connect { source, .. } => classify_opts(source),
        ConnectError::Connecting { source, .. } => classify_connecting(source),
        ConnectError::Connection { source, .. } => classify_conn_err(source),
        _ => ALK_E_HANDSHAKE,
    }
}

fn classify_opts(e: &ConnectWithOptsError) -> i32 {
    match e {
        ConnectWithOptsError::SelfConnect { .. } | ConnectWithOptsError::InvalidAlpn { .. } => {
            ALK_E_ARG
        }
        ConnectWithOptsError::NoAddress { .. } => ALK_E_CONNECT,
        ConnectWithOptsError::Noq { source, .. } => match source {
            QuicConnectError::InvalidServerName(_) | QuicConnectError::InvalidRemoteAddress(_) => {
                ALK_E_ARG
            }
            QuicConnectError::EndpointStopping => ALK_E_SHUTDOWN,
            QuicConnectError::CidsExhausted => ALK_E_CONNECT,
            _ => ALK_E_HANDSHAKE,
        },
        ConnectWithOptsError::EndpointClosed { .. } => ALK_E_SHUTDOWN,
        ConnectWithOptsError::InternalConsistencyError { .. }
        | ConnectWithOptsError::LocallyRejected { .. } => ALK_E_INTERNAL,
        _ => ALK_E_HANDSHAKE,
    }
}

fn classify_connecting(e: &ConnectingError) -> i32 {
    match e {
        ConnectingError::ConnectionError { source, .. } => classify_conn_err(source),
        ConnectingError::HandshakeFailure { .. } => ALK_E_HANDSHAKE,
        ConnectingError::InternalConsistencyError { .. }
        | ConnectingError::LocallyRejected { .. } => ALK_E_INTERNAL,
        _ => ALK_E_HANDSHAKE,
    }
}

/// A dial's connection error: crypto alerts are 0x100 + the TLS alert.
pub fn classify_conn_err(e: &ConnectionError) -> i32 {
    const CONNECTION_REFUSED: u64 = 0x2;
    const NO_APPLICATION_PROTOCOL: u64 = 0x178;
    match e {
        ConnectionError::TimedOut
        | ConnectionError::Reset
        | ConnectionError::CidsExhausted
        | ConnectionError::ApplicationClosed(_) => ALK_E_CONNECT,
        ConnectionError::ConnectionClosed(cc) => match u64::from(cc.error_code) {
            CONNECTION_REFUSED => ALK_E_CONNECT,
            NO_APPLICATION_PROTOCOL => ALK_E_ALPN,
            _ => ALK_E_HANDSHAKE,
        },
        ConnectionError::TransportError(te) => match u64::from(te.code) {
            0x12a | 0x12e | 0x130 => ALK_E_PIN,
            NO_APPLICATION_PROTOCOL => ALK_E_ALPN,
            _ => ALK_E_HANDSHAKE,
        },
        _ => ALK_E_HANDSHAKE,
    }
}

/// The endpoint's addresses as `relay <url>` / `ip <addr>` lines.
pub fn addr_lines(st: &Ep, which: u32) -> String {
    let mut out = String::new();
    if which == ALK_ADDRS_BOUND {
        for a in st.ep.bound_sockets() {
            out.push_str(&format!("ip {a}\n"));
        }
        return out;
    }
    let a = st.ep.addr();
    for r in a.relay_urls() {
        out.push_str(&format!("relay {r}\n"));
    }
    for ip in a.ip_addrs() {
        out.push_str(&format!("ip {ip}\n"));
    }
    out
}

/// Completes once the address generation passes `gen`.
pub async fn watch(st: Arc<Ep>, after: u64, cancel: oneshot::Receiver<()>) -> Outcome {
    let mut rx = st.addr_gen.subscribe();
    let mut lost = st.lost_tx.subscribe();
    drop(st);
    let changed = async {
        loop {
            let g = *rx.borrow_and_update();
            if g > after {
                return Outcome::ok(g);
            }
            if rx.changed().await.is_err() {
                return Outcome::err(ALK_E_SHUTDOWN, "endpoint closed");
            }
        }
    };
    tokio::select! {
        biased;
        _ = cancel => Outcome::status(ALK_E_CANCELED, 0),
        _ = lost.wait_for(|l| *l) => Outcome::err(ALK_E_SHUTDOWN, "endpoint lost"),
        o = changed => o,
    }
}

/// Closes the endpoint (≤ 2 s) once every pending operation under it has completed.
pub async fn close(st: Arc<Ep>) -> Outcome {
    st.closing.store(true, Ordering::Release);
    stop_accepting(&st);
    let h = st.id();
    queue::cancel_endpoint(h);
    let _ = tokio::time::timeout(Duration::from_secs(2), st.ep.close()).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    // The closing token itself is registered under no endpoint, so this waits only for others.
    while queue::pending_under(h) > 0 && tokio::time::Instant::now() < deadline {
        queue::cancel_endpoint(h);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Outcome::ok(0)
}

/// The token wrapper every endpoint-level async call shares.
pub fn spawn(token: Token, fut: impl std::future::Future<Output = Outcome> + Send + 'static) {
    if let Some(rt) = queue::rt() {
        rt.spawn(async move { token.finish(fut.await) });
    }
}
