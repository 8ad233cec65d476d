//! A TCP listener that, when told to stop, takes the connections already queued in the kernel and then closes.
use std::{future::Future, io, net::SocketAddr, time::Duration};

use axum::{extract::connect_info::Connected, serve::IncomingStream};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{oneshot, watch},
};

/// The peer address of a connection, for `ConnectInfo`.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

impl Connected<IncomingStream<'_, DrainingListener>> for PeerAddr {
    fn connect_info(stream: IncomingStream<'_, DrainingListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

/// Accepts until the stop signal, then drains the kernel's accept queue and drops the socket.
pub struct DrainingListener {
    inner: Option<TcpListener>,
    addr: SocketAddr,
    stop: watch::Receiver<bool>,
    closed: Option<oneshot::Sender<()>>,
}

impl DrainingListener {
    /// Wraps `listener`; the returned receiver resolves once the socket is closed after `stop`.
    pub fn new(
        listener: TcpListener,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> io::Result<(Self, oneshot::Receiver<()>)> {
        let addr = listener.local_addr()?;
        let (stop_tx, stop_rx) = watch::channel(false);
        tokio::spawn(async move {
            stop.await;
            let _ = stop_tx.send(true);
            // Keep the sender alive so the receiver does not see a closed channel.
            std::future::pending::<()>().await;
        });
        let (closed_tx, closed_rx) = oneshot::channel();
        Ok((
            Self {
                inner: Some(listener),
                addr,
                stop: stop_rx,
                closed: Some(closed_tx),
            },
            closed_rx,
        ))
    }
}

impl axum::serve::Listener for DrainingListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            let Some(listener) = &self.inner else {
                return std::future::pending().await;
            };
            if *self.stop.borrow() {
                // Zero timeout: take a connection only when one is already waiting.
                match tokio::time::timeout(Duration::ZERO, listener.accept()).await {
                    Ok(Ok(accepted)) => return accepted,
                    Ok(Err(_)) => continue,
                    Err(_) => {
                        self.inner = None;
                        if let Some(closed) = self.closed.take() {
                            let _ = closed.send(());
                        }
                        continue;
                    }
                }
            }
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => return accepted,
                    Err(error) => {
                        // Out of file descriptors and the like: wait instead of spinning.
                        tracing::error!(error = %error, "accept_failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                _ = self.stop.changed() => {}
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }
}
