//! Listening TCP ports from the kernel's sock_diag netlink interface, the
//! question `ss -ltn` asks. The kernel itself keeps only sockets in LISTEN
//! state, so the cost follows the number of listening sockets (a handful),
//! not every connection on the host as reading /proc/net/tcp does: that file
//! lists each established and TIME_WAIT socket, thousands on a busy web
//! server, and took ≈4 ms per scrape at 700 sockets here.
//!
//! The answer covers the exporter's own network namespace, as /proc/net/tcp
//! does (`/proc/net` is `/proc/self/net`). Where netlink is refused (seccomp,
//! `RestrictAddressFamilies=` without `AF_NETLINK`), the caller falls back to
//! the files.

use std::collections::BTreeSet;
use std::io;
use std::time::{Duration, Instant};

use netlink_packet_core::{NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_sys::protocols::NETLINK_SOCK_DIAG;
use netlink_sys::{Socket, SocketAddr};

/// Most sockets one answer may list before it is taken as runaway: far above
/// any real number of listening sockets (one per port and address).
const MAX_SOCKETS: usize = 65_536;

/// The local ports of every TCP socket in LISTEN state, IPv4 and IPv6, read
/// within `budget`.
pub fn listening_ports(budget: Duration) -> io::Result<BTreeSet<u16>> {
    let deadline = Instant::now() + budget;
    let socket = Socket::new(NETLINK_SOCK_DIAG)?;
    socket.connect(&SocketAddr::new(0, 0))?;
    let mut ports = BTreeSet::new();
    for (family, any) in [(AF_INET, SocketId::new_v4()), (AF_INET6, SocketId::new_v6())] {
        dump_listening(&socket, family, any, deadline, &mut ports)?;
    }
    Ok(ports)
}

fn dump_listening(
    socket: &Socket,
    family: u8,
    socket_id: SocketId,
    deadline: Instant,
    ports: &mut BTreeSet<u16>,
) -> io::Result<()> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    let mut request = NetlinkMessage::new(
        header,
        SockDiagMessage::InetRequest(InetRequest {
            family,
            protocol: IPPROTO_TCP,
            extensions: ExtensionFlags::empty(),
            states: StateFlags::LISTEN,
            socket_id,
        })
        .into(),
    );
    request.finalize();
    let mut bytes = vec![0; request.buffer_len()];
    request.serialize(&mut bytes);
    socket.send(&bytes, 0)?;

    // Netlink never splits a message across datagrams; a dump datagram holds
    // at most a page or two of messages.
    let mut buffer = Vec::with_capacity(64 * 1024);
    let mut seen = 0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "sock_diag answer missed the deadline"));
        }
        rustix::net::sockopt::set_socket_timeout(socket, rustix::net::sockopt::Timeout::Recv, Some(left))?;
        buffer.clear();
        let size = socket.recv(&mut buffer, 0)?;
        let mut offset = 0;
        while offset < size {
            let message = NetlinkMessage::<SockDiagMessage>::deserialize(&buffer[offset..size])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("sock_diag answer: {e}")))?;
            let length = message.header.length as usize;
            match message.payload {
                NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(response)) => {
                    ports.insert(response.header.socket_id.source_port);
                    seen += 1;
                    if seen > MAX_SOCKETS {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("sock_diag listed more than {MAX_SOCKETS} listening sockets"),
                        ));
                    }
                }
                NetlinkPayload::Done(_) => return Ok(()),
                NetlinkPayload::Error(error) => return Err(error.to_io()),
                _ => {}
            }
            if length == 0 {
                break;
            }
            offset += length;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_listener_of_each_family_and_not_a_connected_socket() {
        let v4 = std::net::TcpListener::bind("127.0.0.1:0").expect("bind v4");
        let v4_port = v4.local_addr().expect("local address").port();
        // A connected socket's local port is not a listening port.
        let client = std::net::TcpStream::connect(("127.0.0.1", v4_port)).expect("connect");
        let client_port = client.local_addr().expect("local address").port();
        let v6 = std::net::TcpListener::bind("[::1]:0").ok();
        let ports = listening_ports(Duration::from_secs(2)).expect("sock_diag");
        assert!(ports.contains(&v4_port), "{v4_port} missing from {ports:?}");
        assert!(!ports.contains(&client_port), "connected port {client_port} listed as listening");
        if let Some(v6) = v6 {
            let v6_port = v6.local_addr().expect("local address").port();
            assert!(ports.contains(&v6_port), "{v6_port} missing from {ports:?}");
        }
        drop(v4);
        let ports = listening_ports(Duration::from_secs(2)).expect("sock_diag");
        assert!(!ports.contains(&v4_port), "closed listener {v4_port} still listed");
    }

    #[test]
    fn agrees_with_proc_net_tcp() {
        let _listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        // Other tests open and close listeners meanwhile: a port listed by
        // both netlink reads was listening while the files were read.
        let before = listening_ports(Duration::from_secs(2)).expect("sock_diag");
        let mut from_files = BTreeSet::new();
        for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
            if let Ok(text) = std::fs::read_to_string(file) {
                super::super::procfs::parse_listening_ports(&text, &mut from_files);
            }
        }
        let after = listening_ports(Duration::from_secs(2)).expect("sock_diag");
        let stable: BTreeSet<u16> = before.intersection(&after).copied().collect();
        assert!(!stable.is_empty());
        let missing: Vec<_> = stable.difference(&from_files).collect();
        assert!(missing.is_empty(), "listed by netlink, not in /proc/net/tcp{{,6}}: {missing:?}");
    }
}
