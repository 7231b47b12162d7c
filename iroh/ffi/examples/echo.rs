//! iroh-raw, the benchmark's ceiling for alknet over iroh (spec iroh.md §11): a bare iroh
//! endpoint (relay disabled, loopback) serving the benchmark's raw frames on ALPN `bench/raw`.
//! A frame is a 4-byte big-endian length and the body; a request is one frame per stream:
//! `E` + payload is echoed; `S` + n + size (two big-endian u32) is answered with n frames of
//! size bytes and an empty frame.
//!
//!   echo            prints `ready <127.0.0.1:port> ed25519:<key hex> <pid>`, serves until
//!                   stdin ends

use std::io::Read;

use iroh::endpoint::{PortmapperConfig, presets};
use iroh::{Endpoint, RelayMode, SecretKey};

const ALPN: &[u8] = b"bench/raw";
const MAX_FRAME: usize = 64 << 20;

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let mut seed = [0u8; 32];
    // A throwaway key: the seed comes from the clock and pid (a benchmark, not a secret).
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    seed[..16].copy_from_slice(&t.to_le_bytes());
    seed[16..20].copy_from_slice(&std::process::id().to_le_bytes());
    let ep = Endpoint::builder(presets::Minimal)
        .portmapper_config(PortmapperConfig::Disabled)
        .relay_mode(RelayMode::Disabled)
        .secret_key(SecretKey::from_bytes(&seed))
        .alpns(vec![ALPN.to_vec()])
        .clear_ip_transports()
        .bind_addr("127.0.0.1:0")
        .expect("a loopback bind address")
        .bind()
        .await
        .expect("bind");
    let addr = ep
        .bound_sockets()
        .into_iter()
        .find(|a| a.is_ipv4())
        .expect("an IPv4 socket");
    let key: String = ep
        .id()
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    println!("ready {addr} ed25519:{key} {}", std::process::id());
    let stop = tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    });
    let serve = {
        let ep = ep.clone();
        tokio::spawn(async move {
            while let Some(incoming) = ep.accept().await {
                tokio::spawn(async move {
                    let Ok(conn) = incoming.await else { return };
                    while let Ok((send, recv)) = conn.accept_bi().await {
                        tokio::spawn(serve_stream(send, recv));
                    }
                });
            }
        })
    };
    let _ = stop.await;
    serve.abort();
    ep.close().await;
}

async fn read_frame(recv: &mut iroh::endpoint::RecvStream) -> Option<Vec<u8>> {
    let mut hdr = [0u8; 4];
    recv.read_exact(&mut hdr).await.ok()?;
    let n = u32::from_be_bytes(hdr) as usize;
    if n > MAX_FRAME {
        return None;
    }
    let mut body = vec![0u8; n];
    recv.read_exact(&mut body).await.ok()?;
    Some(body)
}

fn frame(body: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
}

async fn serve_stream(mut send: iroh::endpoint::SendStream, mut recv: iroh::endpoint::RecvStream) {
    let Some(req) = read_frame(&mut recv).await else {
        return;
    };
    let mut out = Vec::new();
    match req.first() {
        Some(b'E') => {
            frame(&req[1..], &mut out);
            let _ = send.write_all(&out).await;
        }
        Some(b'S') if req.len() >= 9 => {
            let n = u32::from_be_bytes([req[1], req[2], req[3], req[4]]);
            let size = u32::from_be_bytes([req[5], req[6], req[7], req[8]]) as usize;
            let item = vec![0u8; size.min(MAX_FRAME)];
            for _ in 0..n {
                frame(&item, &mut out);
                if out.len() >= 64 << 10 {
                    if send.write_all(&out).await.is_err() {
                        return;
                    }
                    out.clear();
                }
            }
            frame(&[], &mut out);
            let _ = send.write_all(&out).await;
        }
        _ => return,
    }
    let _ = send.finish();
    let _ = send.stopped().await;
}
