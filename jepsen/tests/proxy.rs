//! The user-space TCP proxy of the harness (no lookoutd needed): pass, delay, loss,
//! blackhole of new AND established connections, heal.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use lookout_jepsen::harness::proxy::{LinkFault, ProxyNet};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An echo server; returns its address.
async fn echo() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else { return };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

async fn free_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

/// Sends `msg` and waits up to `t` for the echo. `Ok(None)` = nothing came back in time.
async fn roundtrip(s: &mut TcpStream, msg: &[u8], t: Duration) -> std::io::Result<Option<Vec<u8>>> {
    s.write_all(msg).await?;
    let mut got = vec![];
    let mut buf = [0u8; 256];
    let deadline = tokio::time::Instant::now() + t;
    while got.len() < msg.len() {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return Ok(None),
            Ok(Ok(0)) => return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed")),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Ok(Err(e)) => return Err(e),
        }
    }
    Ok(Some(got))
}

async fn setup() -> (ProxyNet, SocketAddr) {
    let up = echo().await;
    let listen = free_addr().await;
    let net = ProxyNet::start(vec![(1, 2, listen, up)]).await.unwrap();
    (net, listen)
}

#[tokio::test]
async fn pass_and_delay() {
    let (net, listen) = setup().await;
    let mut s = TcpStream::connect(listen).await.unwrap();
    assert_eq!(roundtrip(&mut s, b"hello", Duration::from_secs(2)).await.unwrap().as_deref(), Some(&b"hello"[..]));
    net.set(1, 2, LinkFault::Delay { ms: 150, jitter_ms: 0 });
    let t = Instant::now();
    assert_eq!(roundtrip(&mut s, b"slow", Duration::from_secs(3)).await.unwrap().as_deref(), Some(&b"slow"[..]));
    // Both directions pass through the delayed link.
    assert!(t.elapsed() >= Duration::from_millis(290), "round trip took {:?}", t.elapsed());
    // Order is kept under jitter.
    net.set(1, 2, LinkFault::Delay { ms: 20, jitter_ms: 20 });
    let msg: Vec<u8> = (0..200u8).collect();
    for chunk in msg.chunks(10) {
        s.write_all(chunk).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut got = vec![0u8; msg.len()];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut got)).await.unwrap().unwrap();
    assert_eq!(got, msg);
    net.heal();
    let t = Instant::now();
    roundtrip(&mut s, b"fast", Duration::from_secs(2)).await.unwrap().unwrap();
    assert!(t.elapsed() < Duration::from_millis(100));
    assert!(net.stats_json()["bytes_forwarded"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn blackhole_freezes_established_connections_and_stalls_new_ones() {
    let (net, listen) = setup().await;
    let mut s = TcpStream::connect(listen).await.unwrap();
    roundtrip(&mut s, b"before", Duration::from_secs(2)).await.unwrap().unwrap();

    net.partition(&BTreeSet::from([(1, 2)]));
    // The established connection forwards nothing any more (it is not closed either).
    assert_eq!(roundtrip(&mut s, b"during", Duration::from_millis(500)).await.unwrap(), None);
    // A new connection is accepted but nothing passes.
    let mut s2 = TcpStream::connect(listen).await.unwrap();
    assert_eq!(roundtrip(&mut s2, b"new", Duration::from_millis(500)).await.unwrap(), None);

    // Healing closes the frozen connections (the peer reconnects cleanly) ...
    net.heal();
    let mut buf = [0u8; 64];
    let r = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => {} // late bytes are fine; the connection must end
            }
        }
    })
    .await;
    assert_eq!(r, Ok(true), "frozen connection closed on heal");
    // ... and new connections work.
    let mut s3 = TcpStream::connect(listen).await.unwrap();
    assert_eq!(roundtrip(&mut s3, b"after", Duration::from_secs(2)).await.unwrap().as_deref(), Some(&b"after"[..]));
    let st = net.stats_json();
    assert!(st["connections_frozen"].as_u64().unwrap() >= 1, "{st}");
    assert!(st["connections_stalled"].as_u64().unwrap() >= 1, "{st}");
}

#[tokio::test]
async fn loss_cuts_connections() {
    let (net, listen) = setup().await;
    let mut s = TcpStream::connect(listen).await.unwrap();
    roundtrip(&mut s, b"x", Duration::from_secs(2)).await.unwrap().unwrap();
    net.set_all(LinkFault::Loss { p: 1.0 });
    // Each chunk cuts an established connection with probability p/4 ...
    let mut cut = false;
    for _ in 0..60 {
        match roundtrip(&mut s, b"y", Duration::from_secs(2)).await {
            Ok(Some(_)) => {}
            _ => {
                cut = true;
                break;
            }
        }
    }
    assert!(cut, "60 chunks at p = 1 never cut the connection");
    // ... and new connections are stalled.
    let mut s2 = TcpStream::connect(listen).await.unwrap();
    assert_eq!(roundtrip(&mut s2, b"z", Duration::from_millis(400)).await.unwrap(), None);
    net.heal();
    let mut s3 = TcpStream::connect(listen).await.unwrap();
    roundtrip(&mut s3, b"ok", Duration::from_secs(2)).await.unwrap().unwrap();
    assert!(net.stats_json()["connections_cut"].as_u64().unwrap() >= 1);
}

#[test]
fn routes_name_every_peer() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let a = free_addr().await;
        let b = free_addr().await;
        let up: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let net = ProxyNet::start(vec![(1, 2, a, up), (1, 3, b, up)]).await.unwrap();
        assert_eq!(net.routes_for(1), format!("2={a},3={b}"));
        assert_eq!(net.routes_for(2), "");
    });
}
