//! The crate through its C ABI, as Go uses it (spec iroh.md §10.1): two loopback endpoints
//! echo and see each other's key; a wrong key and an unregistered ALPN give §5.3's statuses;
//! forged, stale and wrong-type handles and bad arguments give error codes; every token gets
//! exactly one completion, also when cancels race the operations.
//!
//! One test function: the completion queue is process-wide, and parallel tests would take
//! each other's completions.

use std::collections::HashMap;
use std::ptr;

use alknet_iroh::abi::*;
use alknet_iroh::status::*;
use alknet_iroh::{BindOpts, Completion};

const ALPN: &[u8] = b"alknet/test";

struct Driver {
    next: u64,
    done: HashMap<u64, Completion>,
}

fn empty() -> Completion {
    Completion {
        token: 0,
        status: 0,
        flags: 0,
        value: 0,
        data: ptr::null(),
        len: 0,
        detail: 0,
    }
}

impl Driver {
    fn token(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    /// The completion of `t`: `out` when the call finished at once, else from the queue.
    fn finish(&mut self, st: i32, t: u64, out: Completion) -> Completion {
        if st != ALK_PENDING {
            let mut c = out;
            c.status = st;
            return c;
        }
        for _ in 0..2000 {
            if let Some(c) = self.done.remove(&t) {
                return c;
            }
            self.pump(10);
        }
        panic!("token {t}: no completion in 20 s");
    }

    fn pump(&mut self, ms: i64) {
        let mut buf = [empty(); 16];
        let mut n = 0u32;
        // SAFETY: 16 writable completions and a writable count.
        assert_eq!(
            unsafe { alk_wait(buf.as_mut_ptr(), 16, ms, &mut n) },
            ALK_OK
        );
        for c in &buf[..n as usize] {
            if c.token == ALK_TOKEN_LOG {
                continue;
            }
            assert!(
                self.done.insert(c.token, *c).is_none(),
                "token {} completed twice",
                c.token
            );
        }
    }

    fn bind(&mut self, seed: u8, serve: bool) -> u64 {
        let opts = BindOpts {
            flags: if serve { 0 } else { ALK_BIND_DIAL_ONLY },
            ..Default::default()
        };
        let key = [seed; 32];
        let alpns: &[u8] = if serve { ALPN } else { b"" };
        let binds = b"127.0.0.1:0";
        let t = self.token();
        let mut out = empty();
        // SAFETY: every pointer is valid for its length; out is writable.
        let st = unsafe {
            alk_endpoint_bind(
                &opts,
                key.as_ptr(),
                alpns.as_ptr(),
                alpns.len() as u64,
                binds.as_ptr(),
                binds.len() as u64,
                ptr::null(),
                0,
                ptr::null(),
                0,
                t,
                &mut out,
            )
        };
        let c = self.finish(st, t, out);
        assert_eq!(c.status, ALK_OK, "bind: {}", self.message(c.detail));
        c.value
    }

    fn connect(&mut self, ep: u64, id: &[u8; 32], alpn: &[u8], addr: &str) -> Completion {
        let t = self.token();
        let mut out = empty();
        // SAFETY: as above.
        let st = unsafe {
            alk_endpoint_connect(
                ep,
                id.as_ptr(),
                alpn.as_ptr(),
                alpn.len() as u64,
                ptr::null(),
                0,
                addr.as_ptr(),
                addr.len() as u64,
                5000,
                t,
                &mut out,
            )
        };
        self.finish(st, t, out)
    }

    fn message(&mut self, h: u64) -> String {
        if h == 0 {
            return String::new();
        }
        let mut buf = [0u8; 600];
        let mut n = 0u64;
        // SAFETY: buf is writable for its length.
        let st = unsafe { alk_msg_take(h, buf.as_mut_ptr(), buf.len() as u64, &mut n) };
        assert_eq!(st, ALK_OK);
        String::from_utf8_lossy(&buf[..n as usize]).into_owned()
    }

    fn addr(&mut self, ep: u64) -> String {
        let mut buf = [0u8; 1024];
        let (mut n, mut generation) = (0u64, 0u64);
        // SAFETY: writable buffers.
        let st = unsafe {
            alk_endpoint_addrs(
                ep,
                ALK_ADDRS_BOUND,
                buf.as_mut_ptr(),
                1024,
                &mut n,
                &mut generation,
            )
        };
        assert_eq!(st, ALK_OK);
        let text = String::from_utf8_lossy(&buf[..n as usize]).into_owned();
        text.lines()
            .find_map(|l| l.strip_prefix("ip 127.0.0.1:"))
            .map(|p| format!("127.0.0.1:{p}"))
            .expect("a loopback address")
    }

    fn close(&mut self, ep: u64) {
        let t = self.token();
        let mut out = empty();
        // SAFETY: out is writable.
        let st = unsafe { alk_endpoint_close(ep, t, &mut out) };
        let c = self.finish(st, t, out);
        assert_eq!(c.status, ALK_OK);
        assert_eq!(alk_release(ep), ALK_OK);
    }

    fn stats(&self) -> alknet_iroh::abi::Stats {
        // SAFETY: Stats is plain data; the call fills it.
        let mut s: alknet_iroh::abi::Stats = unsafe { std::mem::zeroed() };
        // SAFETY: writable.
        assert_eq!(unsafe { alk_stats(&mut s) }, ALK_OK);
        s
    }
}

#[test]
fn smoke() {
    assert_eq!(alk_abi_version(), 1);
    assert_eq!(alk_init(2, 0), ALK_OK);
    let mut d = Driver {
        next: 1000,
        done: HashMap::new(),
    };
    let srv = d.bind(7, true);
    let cli = d.bind(9, false);
    let mut id = [0u8; 32];
    // SAFETY: 32 writable bytes.
    assert_eq!(unsafe { alk_endpoint_id(srv, id.as_mut_ptr()) }, ALK_OK);
    let addr = d.addr(srv);

    // Accept and dial; each side sees the other's key.
    let at = d.token();
    let mut out = empty();
    // SAFETY: out is writable.
    let st = unsafe { alk_endpoint_accept(srv, at, &mut out) };
    let dialed = d.connect(cli, &id, ALPN, &addr);
    assert_eq!(dialed.status, ALK_OK, "{}", d.message(dialed.detail));
    let accepted = d.finish(st, at, out);
    assert_eq!(accepted.status, ALK_OK);
    // SAFETY: ConnInfo is plain data.
    let mut info: ConnInfo = unsafe { std::mem::zeroed() };
    // SAFETY: writable.
    assert_eq!(unsafe { alk_conn_info(dialed.value, &mut info) }, ALK_OK);
    assert_eq!(info.remote_id, id, "the dialer sees the server's key");
    let mut cid = [0u8; 32];
    // SAFETY: 32 writable bytes.
    assert_eq!(unsafe { alk_endpoint_id(cli, cid.as_mut_ptr()) }, ALK_OK);
    // SAFETY: writable.
    assert_eq!(unsafe { alk_conn_info(accepted.value, &mut info) }, ALK_OK);
    assert_eq!(info.remote_id, cid, "the server sees the dialer's key");
    assert_eq!(&info.alpn[..info.alpn_len as usize], ALPN);

    // Echo one message: open, write with FIN, the server reads it and writes it back.
    let t = d.token();
    // SAFETY: out is writable.
    let st = unsafe { alk_conn_open(dialed.value, t, &mut out) };
    let cs = d.finish(st, t, out);
    assert_eq!(cs.status, ALK_OK);
    let msg = b"hello over iroh";
    let t = d.token();
    // SAFETY: msg is readable for its length.
    let st = unsafe {
        alk_stream_write(
            cs.value,
            msg.as_ptr(),
            msg.len() as u64,
            ALK_F_FIN,
            t,
            &mut out,
        )
    };
    assert_eq!(d.finish(st, t, out).status, ALK_OK);
    let t = d.token();
    // SAFETY: out is writable.
    let st = unsafe { alk_conn_accept(accepted.value, t, &mut out) };
    let ss = d.finish(st, t, out);
    assert_eq!(ss.status, ALK_OK);
    let mut got = Vec::new();
    let mut held = 0;
    loop {
        let t = d.token();
        // SAFETY: out is writable; `held` is the previous chunk, released by this call.
        let st = unsafe { alk_stream_read(ss.value, 4096, held, t, &mut out) };
        let c = d.finish(st, t, out);
        assert_eq!(c.status, ALK_OK);
        held = 0;
        if c.len > 0 {
            // SAFETY: the chunk is held until released.
            got.extend_from_slice(unsafe { std::slice::from_raw_parts(c.data, c.len as usize) });
            held = c.value;
        }
        if c.flags & ALK_F_FIN != 0 {
            break;
        }
    }
    if held != 0 {
        assert_eq!(alk_release(held), ALK_OK);
    }
    assert_eq!(got, msg);

    // §5.3: a random key at a known address → PIN; an unregistered ALPN → ALPN.
    // RFC 8032 TEST 1's public key: a valid key, not the server's.
    let other: [u8; 32] = [
        0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07,
        0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07,
        0x51, 0x1a,
    ];
    let wrong = d.connect(cli, &other, ALPN, &addr);
    let text = d.message(wrong.detail); // taking a message releases its handle
    assert_eq!(wrong.status, ALK_E_PIN, "wrong key: {text}");
    let none = d.connect(cli, &id, b"alknet/none", &addr);
    let text = d.message(none.detail);
    assert_eq!(none.status, ALK_E_ALPN, "unregistered ALPN: {text}");

    // Handles: forged, stale and wrong-type ones answer HANDLE; bad arguments ARG.
    assert_eq!(alk_release(0xdead_beef_0000_0001), ALK_E_HANDLE);
    assert_eq!(
        alk_stream_finish(dialed.value),
        ALK_E_HANDLE,
        "a connection is not a stream"
    );
    // SAFETY: writable.
    assert_eq!(
        unsafe { alk_conn_info(cs.value, &mut info) },
        ALK_E_HANDLE,
        "a stream is not a connection"
    );
    // SAFETY: a null pointer is the point.
    assert_eq!(unsafe { alk_endpoint_id(srv, ptr::null_mut()) }, ALK_E_ARG);
    assert_eq!(alk_log_level(9), ALK_E_ARG);
    let t = d.token();
    // SAFETY: a length beyond the bound with a valid pointer: refused before reading.
    let st = unsafe { alk_stream_write(cs.value, msg.as_ptr(), 1 << 40, 0, t, &mut out) };
    let big = d.finish(st, t, out);
    assert_eq!(big.status, ALK_E_ARG);
    assert!(
        d.message(big.detail).starts_with("p"),
        "the message names the argument"
    );

    // Racing cancels: 200 accepts, each cancelled from another thread at once; every token
    // completes exactly once (pump asserts no token completes twice).
    let tokens: Vec<u64> = (0..200).map(|_| d.token()).collect();
    let mut pending = Vec::new();
    for &t in &tokens {
        // SAFETY: out is writable.
        let st = unsafe { alk_conn_accept(dialed.value, t, &mut out) };
        if st == ALK_PENDING {
            pending.push(t);
        }
    }
    let racer = {
        let p = pending.clone();
        std::thread::spawn(move || {
            for t in p {
                let _ = alk_cancel(t);
            }
        })
    };
    for &t in &pending {
        let _ = alk_cancel(t);
    }
    racer.join().expect("cancel thread");
    for &t in &pending {
        let c = d.finish(ALK_PENDING, t, empty());
        assert_eq!(c.status, ALK_E_CANCELED);
    }
    d.pump(50);
    assert!(
        d.done.is_empty(),
        "completions for no pending token: {:?}",
        d.done.keys()
    );

    for h in [cs.value, ss.value, dialed.value, accepted.value] {
        assert_eq!(alk_release(h), ALK_OK);
        assert_eq!(alk_release(h), ALK_E_HANDLE, "a released handle is stale");
    }
    d.close(cli);
    d.close(srv);
    let s = d.stats();
    assert_eq!(
        (s.handles, s.tokens, s.chunk_bytes),
        (0, 0, 0),
        "native state left"
    );
}
