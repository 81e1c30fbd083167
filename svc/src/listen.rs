//! TCP listeners with a deep accept queue.

use std::io;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket};

/// Accept-queue length asked for (the kernel caps it at `net.core.somaxconn`). The usual
/// default of 128 overflows under a burst of connections (a flood, or every peer coming
/// back after a restart), and each dropped SYN costs its client a one-second retransmit.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Binds a TCP listener on `addr` (with `SO_REUSEADDR`, so a restart can take the same
/// port at once) with an accept queue of [`LISTEN_BACKLOG`].
pub fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}
