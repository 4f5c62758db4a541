//! A TCP proxy in front of a real server that a test can make hang: every connection through
//! it stops moving bytes both ways (new ones are accepted and held too) until the test lets them
//! go again, as when an API server or the network to it stops answering without closing
//! anything, or cuts them (what was held is dropped, as packets of a partition are). TLS passes
//! through untouched.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    Moving,
    Hung,
    Cut,
}

/// A running proxy; it stops when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    /// Where clients connect.
    pub address: SocketAddr,
    state: watch::Sender<Flow>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy on a free loopback port, forwarding to `upstream`.
    pub async fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let address = listener.local_addr().expect("an address");
        let (state, watching) = watch::channel(Flow::Moving);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, upstream, watching.clone()));
            }
        });
        FaultProxy {
            address,
            state,
            task,
        }
    }

    /// Makes every connection hang (`true`) or move again (`false`).
    pub fn hang(&self, hung: bool) {
        self.state
            .send_replace(if hung { Flow::Hung } else { Flow::Moving });
    }

    /// Closes every connection, dropping what was held, and every new one at once.
    pub fn cut(&self) {
        self.state.send_replace(Flow::Cut);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(client: TcpStream, upstream: SocketAddr, hung: watch::Receiver<Flow>) {
    if moving(&mut hung.clone()).await.is_err() {
        return;
    }
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    // Either direction ending ends the connection.
    tokio::select! {
        () = pump(client_read, server_write, hung.clone()) => {}
        () = pump(server_read, client_write, hung) => {}
    }
}

/// Copies bytes while the proxy is not hung; a chunk read just before a hang is held until it
/// ends.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut hung: watch::Receiver<Flow>,
) {
    let mut buffer = vec![0u8; 64 * 1024];
    let mut cut = hung.clone();
    loop {
        if moving(&mut hung).await.is_err() {
            return;
        }
        let read = tokio::select! {
            read = from.read(&mut buffer) => match read {
                Ok(0) | Err(_) => return,
                Ok(read) => read,
            },
            // An idle connection is closed by a cut too (or when the proxy is gone).
            _ = cut.wait_for(|flow| *flow == Flow::Cut) => return,
        };
        if moving(&mut hung).await.is_err() {
            return;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}

/// Returns once the proxy is not hung; `Err` when the proxy is gone or cut.
async fn moving(hung: &mut watch::Receiver<Flow>) -> Result<(), ()> {
    loop {
        match *hung.borrow_and_update() {
            Flow::Moving => return Ok(()),
            Flow::Cut => return Err(()),
            Flow::Hung => {}
        }
        // Checked again now and then too, in case a change was missed.
        if let Ok(Err(_)) = tokio::time::timeout(Duration::from_secs(1), hung.changed()).await {
            return Err(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bytes_pass_hold_while_hung_and_pass_again() {
        let echo = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let upstream = echo.local_addr().expect("address");
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = echo.accept().await {
                tokio::spawn(async move {
                    let mut buffer = [0u8; 16];
                    while let Ok(read) = stream.read(&mut buffer).await {
                        if read == 0 || stream.write_all(&buffer[..read]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        let proxy = FaultProxy::start(upstream).await;
        let mut stream = TcpStream::connect(proxy.address).await.expect("connect");
        let mut answer = [0u8; 2];
        stream.write_all(b"hi").await.expect("write");
        stream.read_exact(&mut answer).await.expect("echo");
        assert_eq!(&answer, b"hi");

        proxy.hang(true);
        stream.write_all(b"yo").await.expect("write");
        let held =
            tokio::time::timeout(Duration::from_millis(500), stream.read_exact(&mut answer)).await;
        assert!(held.is_err(), "nothing passes while hung");

        proxy.hang(false);
        stream
            .read_exact(&mut answer)
            .await
            .expect("echo after the hang");
        assert_eq!(&answer, b"yo");

        proxy.hang(true);
        stream.write_all(b"no").await.expect("write");
        proxy.cut();
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer))
            .await
            .expect("the cut connection ends");
        assert!(
            matches!(read, Ok(0) | Err(_)),
            "what was held is dropped: {read:?}"
        );
    }
}
