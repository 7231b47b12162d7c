//! A relay on loopback for tests (spec iroh.md §10.7): serves iroh's relay protocol over plain
//! HTTP on 127.0.0.1 (port 0, or the first argument), prints `http://127.0.0.1:<port>`, and on
//! stdin EOF prints `relayed <packets sent to clients>` and exits.

use std::net::SocketAddr;
use std::process::ExitCode;

use iroh_relay::server::{RelayConfig, Server, ServerConfig};
use tokio::io::AsyncReadExt;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let port: u16 = match std::env::args().nth(1).map(|p| p.parse()) {
        None => 0,
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            eprintln!("testrelay: port: {e}");
            return ExitCode::from(2);
        }
    };
    let mut cfg = ServerConfig::default();
    cfg.relay = Some(RelayConfig::new(SocketAddr::from(([127, 0, 0, 1], port))));
    let server = match Server::spawn(cfg).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("testrelay: {e}");
            return ExitCode::FAILURE;
        }
    };
    let Some(addr) = server.http_addr() else {
        eprintln!("testrelay: no HTTP address");
        return ExitCode::FAILURE;
    };
    println!("http://{addr}");
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    println!(
        "relayed {}",
        server.metrics().server.send_packets_sent.get()
    );
    let _ = server.shutdown().await;
    ExitCode::SUCCESS
}
