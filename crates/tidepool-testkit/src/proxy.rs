//! A fault-injecting TCP proxy for the resilience suites: it sits on
//! loopback between a pool and PostgreSQL or MariaDB and can be switched at
//! run time between pass-through and the ways networks and servers fail.
//!
//! It only ever listens on and connects to loopback addresses.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How the proxy treats traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward everything as is.
    PassThrough,
    /// Delay every chunk: `to_server` on the way up, `to_client` down.
    Latency {
        /// Added to every chunk sent to the server.
        to_server: Duration,
        /// Added to every chunk sent back to the client.
        to_client: Duration,
    },
    /// Limit throughput in each direction to this many bytes per second.
    Bandwidth(u64),
    /// Keep every socket open and forward nothing (data waits, as TCP
    /// retransmission would, until the fault is lifted). New connections
    /// are accepted and hang.
    BlackHole,
    /// Reset every connection (RST), existing and new.
    Reset,
    /// Accept new connections but never forward them; existing ones pass.
    AcceptThenStall,
    /// Cut each connection (RST) after it has carried this many bytes.
    CutAfter(u64),
    /// Stop listening: new connections are refused; existing ones pass.
    NotListening,
}

/// A running proxy. Dropping it stops it and closes every connection.
pub struct FaultProxy {
    addr: SocketAddr,
    fault: watch::Sender<Fault>,
    accepted: Arc<AtomicU64>,
    open: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy on an ephemeral loopback port forwarding to
    /// `upstream`, which must be a loopback address.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<FaultProxy> {
        if !upstream.ip().is_loopback() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the fault proxy only forwards to loopback addresses",
            ));
        }
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (fault, watcher) = watch::channel(Fault::PassThrough);
        let accepted = Arc::new(AtomicU64::new(0));
        let open = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(accept_loop(
            listener,
            addr,
            upstream,
            watcher,
            accepted.clone(),
            open.clone(),
        ));
        Ok(FaultProxy {
            addr,
            fault,
            accepted,
            open,
            task,
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Switches the fault; takes effect at once on every connection.
    pub fn set(&self, fault: Fault) {
        self.fault.send_replace(fault);
    }

    /// The fault in force.
    pub fn fault(&self) -> Fault {
        *self.fault.borrow()
    }

    /// Connections accepted so far (attempts the pool made through us).
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Connections open through the proxy now.
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
        // Connection tasks watch the channel; a Reset ends them all.
        self.fault.send_replace(Fault::Reset);
    }
}

async fn accept_loop(
    mut listener: TcpListener,
    addr: SocketAddr,
    upstream: SocketAddr,
    mut watcher: watch::Receiver<Fault>,
    accepted: Arc<AtomicU64>,
    open: Arc<AtomicUsize>,
) {
    loop {
        if *watcher.borrow() == Fault::NotListening {
            drop(listener);
            while *watcher.borrow_and_update() == Fault::NotListening {
                if watcher.changed().await.is_err() {
                    return;
                }
            }
            listener = loop {
                match TcpListener::bind(addr).await {
                    Ok(l) => break l,
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            };
        }
        let accept = tokio::select! {
            accept = listener.accept() => accept,
            changed = watcher.changed() => {
                if changed.is_err() { return; }
                continue;
            }
        };
        let Ok((client, _)) = accept else { continue };
        accepted.fetch_add(1, Ordering::SeqCst);
        let watcher = watcher.clone();
        let open = open.clone();
        tokio::spawn(async move {
            open.fetch_add(1, Ordering::SeqCst);
            serve(client, upstream, watcher).await;
            open.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

fn reset(stream: TcpStream) {
    // Linger 0 makes the close an RST instead of a FIN.
    let _ = stream.set_zero_linger();
    drop(stream);
}

async fn serve(client: TcpStream, upstream: SocketAddr, mut watcher: watch::Receiver<Fault>) {
    // A black hole holds a new connection until the fault is lifted, then
    // serves it normally, first delivering what the client sent meanwhile.
    // A client that gives up while held is dropped, not forwarded later.
    let mut client = client;
    let mut held = Vec::new();
    while *watcher.borrow_and_update() == Fault::BlackHole {
        let mut buf = [0u8; 4096];
        tokio::select! {
            n = client.read(&mut buf) => match n {
                Ok(0) | Err(_) => return,
                Ok(n) => held.extend_from_slice(&buf[..n]),
            },
            changed = watcher.changed() => if changed.is_err() { return },
        }
    }
    let fault = *watcher.borrow_and_update();
    match fault {
        Fault::Reset => return reset(client),
        Fault::AcceptThenStall => {
            // Hold the socket, forward nothing, until the client gives up
            // or a Reset is ordered.
            let mut client = client;
            let mut sink = [0u8; 1024];
            loop {
                tokio::select! {
                    n = client.read(&mut sink) => if matches!(n, Ok(0) | Err(_)) { return },
                    changed = watcher.changed() => {
                        if changed.is_err() || *watcher.borrow() == Fault::Reset { return reset(client) }
                    }
                }
            }
        }
        _ => {}
    }
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return reset(client);
    };
    if !held.is_empty() && server.write_all(&held).await.is_err() {
        return reset(client);
    }
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let carried = Arc::new(AtomicU64::new(0));
    let up = pump(
        client_read,
        server_write,
        watcher.clone(),
        true,
        carried.clone(),
    );
    let down = pump(server_read, client_write, watcher, false, carried);
    tokio::pin!(up, down);
    // A direction that ends with a clean end of stream has passed the FIN
    // on (a half-close, as a real network does): the other direction runs
    // on until it ends too — a cancel request, say, is answered by the
    // server closing only after it has acted. Otherwise the whole
    // connection ends.
    let (reader_up, writer_up, reader_down, writer_down) = tokio::select! {
        ended = &mut up => match ended {
            Ended::Eof => { let _ = down.await; return }
            Ended::Broken => return,
            Ended::Reset(halves) => (halves.0, halves.1, None, None),
        },
        ended = &mut down => match ended {
            Ended::Eof => { let _ = up.await; return }
            Ended::Broken => return,
            Ended::Reset(halves) => (None, None, halves.0, halves.1),
        },
    };
    let abort = reader_up.is_none() && reader_down.is_none();
    for (r, w) in [(reader_up, writer_down), (reader_down, writer_up)] {
        if let (Some(r), Some(w)) = (r, w) {
            if let Ok(stream) = r.reunite(w) {
                if abort {
                    reset(stream);
                }
            }
        }
    }
}

type Halves = (Option<OwnedReadHalf>, Option<OwnedWriteHalf>);

/// How one direction ended.
enum Ended {
    /// The sender closed its side; the FIN was passed on.
    Eof,
    /// A socket failed.
    Broken,
    /// A reset was ordered: the halves, so the caller can RST them.
    Reset(Halves),
}

/// Copies one direction under the fault in force.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut watcher: watch::Receiver<Fault>,
    to_server: bool,
    carried: Arc<AtomicU64>,
) -> Ended {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = tokio::select! {
            n = from.read(&mut buf) => match n {
                Ok(0) => {
                    let _ = to.shutdown().await;
                    return Ended::Eof;
                }
                Err(_) => return Ended::Broken,
                Ok(n) => n,
            },
            changed = watcher.changed() => {
                if changed.is_err() || *watcher.borrow() == Fault::Reset {
                    return Ended::Reset((Some(from), Some(to)));
                }
                continue;
            }
        };
        // Wait out a black hole: the data is held, as TCP would retransmit.
        loop {
            let fault = *watcher.borrow_and_update();
            match fault {
                Fault::BlackHole => {
                    if watcher.changed().await.is_err() {
                        return Ended::Broken;
                    }
                }
                Fault::Reset => return Ended::Reset((Some(from), Some(to))),
                _ => break,
            }
        }
        let fault = *watcher.borrow();
        match fault {
            Fault::Latency {
                to_server: up,
                to_client: down,
            } => {
                tokio::time::sleep(if to_server { up } else { down }).await;
            }
            Fault::Bandwidth(rate) if rate > 0 => {
                tokio::time::sleep(Duration::from_secs_f64(n as f64 / rate as f64)).await;
            }
            Fault::CutAfter(limit) => {
                let total = carried.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
                if total > limit {
                    return Ended::Reset((Some(from), Some(to)));
                }
            }
            _ => {}
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return Ended::Broken;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn roundtrip(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
        s.write_all(b"ping").await?;
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).await?;
        Ok(buf.to_vec())
    }

    #[tokio::test]
    async fn passes_traffic_through_and_refuses_non_loopback_upstreams() {
        let proxy = FaultProxy::start(echo_server().await).await.unwrap();
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(roundtrip(&mut s).await.unwrap(), b"ping");
        assert!(FaultProxy::start("10.0.0.1:5432".parse().unwrap())
            .await
            .is_err());
    }

    /// A client that half-closes (as a PostgreSQL cancel request does) still
    /// hears the server's answer, which the server sends only after it has
    /// read to the end: the proxy passes the FIN on instead of ending the
    /// connection.
    #[tokio::test]
    async fn a_half_close_is_passed_on_and_the_answer_still_comes_back() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            s.read_to_end(&mut request).await.unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
            s.write_all(b"acted on ").await.unwrap();
            s.write_all(&request).await.unwrap();
        });
        let proxy = FaultProxy::start(upstream).await.unwrap();
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        s.write_all(b"cancel").await.unwrap();
        s.shutdown().await.unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut answer))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(answer, b"acted on cancel");
    }

    #[tokio::test]
    async fn a_black_hole_holds_data_until_it_is_lifted() {
        let proxy = FaultProxy::start(echo_server().await).await.unwrap();
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        proxy.set(Fault::BlackHole);
        let stalled = tokio::time::timeout(Duration::from_millis(200), roundtrip(&mut s)).await;
        assert!(stalled.is_err(), "data crossed a black hole");
        proxy.set(Fault::PassThrough);
        let mut buf = [0u8; 4];
        tokio::time::timeout(Duration::from_secs(2), s.read_exact(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf, b"ping");
    }

    #[tokio::test]
    async fn a_new_connection_held_by_a_black_hole_is_served_when_it_lifts_unless_its_client_left()
    {
        let proxy = FaultProxy::start(echo_server().await).await.unwrap();
        proxy.set(Fault::BlackHole);
        let gone = TcpStream::connect(proxy.addr()).await.unwrap();
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        s.write_all(b"ping").await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(gone);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            proxy.open_connections(),
            1,
            "the abandoned connection is dropped while held"
        );
        proxy.set(Fault::PassThrough);
        let mut buf = [0u8; 4];
        tokio::time::timeout(Duration::from_secs(2), s.read_exact(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf, b"ping");
    }

    #[tokio::test]
    async fn reset_kills_existing_connections_at_once() {
        let proxy = FaultProxy::start(echo_server().await).await.unwrap();
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        roundtrip(&mut s).await.unwrap();
        proxy.set(Fault::Reset);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let r = tokio::time::timeout(Duration::from_secs(2), roundtrip(&mut s))
            .await
            .unwrap();
        assert!(r.is_err(), "a reset connection still answered");
    }

    #[tokio::test]
    async fn not_listening_refuses_and_listening_again_accepts() {
        let proxy = FaultProxy::start(echo_server().await).await.unwrap();
        proxy.set(Fault::NotListening);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(TcpStream::connect(proxy.addr()).await.is_err());
        proxy.set(Fault::PassThrough);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(roundtrip(&mut s).await.unwrap(), b"ping");
    }

    #[tokio::test]
    async fn latency_is_added_per_direction() {
        let proxy = FaultProxy::start(echo_server().await).await.unwrap();
        proxy.set(Fault::Latency {
            to_server: Duration::from_millis(100),
            to_client: Duration::from_millis(100),
        });
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        let started = std::time::Instant::now();
        roundtrip(&mut s).await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(200));
    }

    #[tokio::test]
    async fn accept_then_stall_connects_but_never_answers() {
        let proxy = FaultProxy::start(echo_server().await).await.unwrap();
        proxy.set(Fault::AcceptThenStall);
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        assert!(
            tokio::time::timeout(Duration::from_millis(200), roundtrip(&mut s))
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn cut_after_ends_a_connection_past_its_byte_budget() {
        let proxy = FaultProxy::start(echo_server().await).await.unwrap();
        proxy.set(Fault::CutAfter(6));
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        let mut failed = false;
        for _ in 0..5 {
            if tokio::time::timeout(Duration::from_secs(1), roundtrip(&mut s))
                .await
                .map_or(true, |r| r.is_err())
            {
                failed = true;
                break;
            }
        }
        assert!(failed, "the connection outlived its byte budget");
    }
}
