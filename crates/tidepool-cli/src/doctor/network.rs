//! The network checks of a server URL: the name resolves (`dns`) and the
//! first address accepts a TCP connection (`tcp`). Neither sends a byte of
//! the database protocol.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::findings::{Finding, Status};
use super::{human, ms};

/// Resolves `host`; the first address when it resolves.
pub async fn dns(host: &str, port: u16, timeout: Duration) -> (Finding, Option<SocketAddr>) {
    let lookup = tokio::time::timeout(timeout, tokio::net::lookup_host((host, port))).await;
    let addrs: Vec<SocketAddr> = match lookup {
        Ok(Ok(addrs)) => addrs.collect(),
        Ok(Err(e)) => {
            let f = Finding::new(Status::Fail, "dns", format!("{host} does not resolve: {e}"))
                .advise("check the host name in the URL and the resolver (/etc/hosts, DNS)");
            return (f, None);
        }
        Err(_) => {
            let f = Finding::new(
                Status::Fail,
                "dns",
                format!("resolving {host} took longer than {}", human(timeout)),
            )
            .advise("check the resolver");
            return (f, None);
        }
    };
    let Some(first) = addrs.first().copied() else {
        let f = Finding::new(
            Status::Fail,
            "dns",
            format!("{host} resolves to no address"),
        );
        return (f, None);
    };
    let list: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
    let f = Finding::new(Status::Ok, "dns", format!("{host} -> {}", list.join(", ")));
    (f, Some(first))
}

/// Opens (and at once closes) a TCP connection to `addr`.
pub async fn tcp(addr: SocketAddr, timeout: Duration) -> Finding {
    let started = Instant::now();
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(_stream)) => Finding::new(
            Status::Ok,
            "tcp",
            format!("{addr} accepted a connection in {}", ms(started.elapsed())),
        ),
        Ok(Err(e)) => Finding::new(Status::Fail, "tcp", format!("{addr}: {e}")).advise(
            "is the server running and listening on this address and port? check firewalls and security groups",
        ),
        Err(_) => Finding::new(
            Status::Fail,
            "tcp",
            format!("{addr}: no answer within {}", human(timeout)),
        )
        .advise("packets are being dropped: check firewalls, routes and security groups"),
    }
}
