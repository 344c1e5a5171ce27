//! Cancel requests that are known to have arrived. tokio-postgres's
//! `cancel_query` writes the request and returns without waiting, so the
//! server may signal the backend only later — possibly while the *next*
//! borrower's query runs. Here the request goes over a socket we keep, and
//! we wait until the server closes it, which it does only after signalling
//! the backend. Only the reset path uses this.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{CancelToken, NoTls};

use crate::error::PgError;
use crate::target::CancelTarget;
use crate::tls::PgTls;

/// Sends a cancel request for `token`'s backend to `target` and returns once
/// the server has acted on it (closed the cancel connection).
pub(crate) async fn cancel_and_wait(
    token: &CancelToken,
    target: &CancelTarget,
    tls: Option<&PgTls>,
) -> Result<(), PgError> {
    match target {
        CancelTarget::Tcp {
            addr,
            tls_name,
            port,
        } => {
            let socket = tokio::net::TcpStream::connect((addr.as_str(), *port))
                .await
                .map_err(io_error)?;
            let _ = socket.set_nodelay(true);
            let shared = Shared::new(socket);
            match tls {
                Some(tls) => {
                    let connect =
                        MakeTlsConnect::<Shared<tokio::net::TcpStream>>::make_tls_connect(
                            &mut tls.clone(),
                            tls_name,
                        )
                        .map_err(|e| PgError::Tls {
                            host: tls_name.clone(),
                            reason: e.to_string(),
                        })?;
                    token.cancel_query_raw(shared.clone(), connect).await?;
                }
                None => token.cancel_query_raw(shared.clone(), NoTls).await?,
            }
            shared.drain().await;
        }
        CancelTarget::Unix { socket } => {
            let stream = tokio::net::UnixStream::connect(socket)
                .await
                .map_err(io_error)?;
            let shared = Shared::new(stream);
            token.cancel_query_raw(shared.clone(), NoTls).await?;
            shared.drain().await;
        }
    }
    Ok(())
}

fn io_error(e: io::Error) -> PgError {
    PgError::Cancel {
        reason: e.to_string(),
    }
}

/// A stream shared between tokio-postgres (which takes it by value and
/// shuts down its write side) and us (reading until the server closes).
struct Shared<S>(Arc<Mutex<S>>);

impl<S> Clone for Shared<S> {
    fn clone(&self) -> Self {
        Shared(self.0.clone())
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Shared<S> {
    fn new(stream: S) -> Self {
        Shared(Arc::new(Mutex::new(stream)))
    }

    /// Reads until end of stream (or an error: either way the server is
    /// done with the request).
    async fn drain(mut self) {
        let mut sink = [0u8; 64];
        while let Ok(n) = self.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    }

    fn with<R>(&self, f: impl FnOnce(Pin<&mut S>) -> R) -> R {
        // Poisoning cannot leave the stream inconsistent for our use (we only
        // drain it), so a poisoned lock is used as is.
        let mut guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(Pin::new(&mut *guard))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Shared<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.with(|s| s.poll_read(cx, buf))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Shared<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.with(|s| s.poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.with(|s| s.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.with(|s| s.poll_shutdown(cx))
    }
}
