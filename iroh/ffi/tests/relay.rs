//! Through the loopback test relay (spec iroh.md §10.7): two endpoints with their IP transports
//! cleared reach each other only through the relay; the relay reports the packets it relayed.
//! The relay binary's path comes from `ALKNET_TEST_RELAY` (`make test` builds it and sets it).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use iroh::endpoint::presets;
use iroh::{Endpoint, EndpointAddr, RelayMode, RelayUrl, SecretKey};

const ALPN: &[u8] = b"alknet/test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_through_the_relay() {
    let Ok(bin) = std::env::var("ALKNET_TEST_RELAY") else {
        if std::env::var("ALKNET_IROH_TESTS").as_deref() == Ok("require") {
            panic!("ALKNET_TEST_RELAY is unset under ALKNET_IROH_TESTS=require");
        }
        eprintln!("*** ALKNET_TEST_RELAY unset: relay test SKIPPED (make test sets it) ***");
        return;
    };
    let mut relay = Command::new(&bin)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{bin}: {e}"));
    let mut out = BufReader::new(relay.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("the relay's URL");
    let url: RelayUrl = line.trim().parse().expect("a relay URL");

    let bind = |seed: u8, alpns: Vec<Vec<u8>>| {
        Endpoint::builder(presets::Minimal)
            .secret_key(SecretKey::from_bytes(&[seed; 32]))
            .relay_mode(RelayMode::custom([url.clone()]))
            .clear_ip_transports()
            .alpns(alpns)
            .bind()
    };
    let server = bind(21, vec![ALPN.to_vec()]).await.expect("server bind");
    let client = bind(22, vec![]).await.expect("client bind");
    tokio::time::timeout(Duration::from_secs(10), server.online())
        .await
        .expect("the server reached the relay");
    let id = server.id();
    let accept = tokio::spawn(async move {
        let conn = server
            .accept()
            .await
            .expect("incoming")
            .await
            .expect("handshake");
        let (mut send, mut recv) = conn.accept_bi().await.expect("a stream");
        let msg = recv.read_to_end(1 << 16).await.expect("read");
        send.write_all(&msg).await.expect("write");
        send.finish().expect("finish");
        conn.closed().await;
        server.close().await;
    });
    let conn = tokio::time::timeout(
        Duration::from_secs(15),
        client.connect(EndpointAddr::new(id).with_relay_url(url.clone()), ALPN),
    )
    .await
    .expect("dial in time")
    .expect("dial through the relay");
    assert_eq!(conn.remote_id(), id);
    let (mut send, mut recv) = conn.open_bi().await.expect("open");
    send.write_all(b"relayed hello").await.expect("write");
    send.finish().expect("finish");
    let got = recv.read_to_end(1 << 16).await.expect("read");
    assert_eq!(got, b"relayed hello");
    conn.close(0u32.into(), b"done");
    accept.await.expect("server task");
    client.close().await;

    drop(relay.stdin.take()); // EOF: the relay reports and exits
    line.clear();
    out.read_line(&mut line).expect("the relay's report");
    let relayed: u64 = line
        .trim()
        .strip_prefix("relayed ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("report {line:?}"));
    assert!(
        relayed > 0,
        "the relay relayed nothing: the echo took another path"
    );
    let _ = std::io::stderr().flush();
    assert!(relay.wait().expect("relay exit").success());
}
