//! Real traffic between namespaces: TCP connects, UDP round trips, pings.

use std::{
    io::{Read, Write},
    net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket},
    time::Duration,
};

use super::Netns;

/// Listens on `port` (all addresses, v4 and v6) in `ns` and echoes one line
/// per connection, until the returned guard is dropped (the namespace going
/// away ends it).
pub fn tcp_server(ns: &Netns, port: u16) {
    let path = format!("/run/netns/{}", ns.name);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        super::enter(&path);
        let l = TcpListener::bind(("::", port)).unwrap_or_else(|e| panic!("bind {port}: {e}"));
        let _ = tx.send(());
        for mut s in l.incoming().flatten() {
            let mut buf = [0u8; 64];
            if let Ok(n) = s.read(&mut buf) {
                let _ = s.write_all(&buf[..n]);
            }
        }
    });
    let _ = rx.recv_timeout(Duration::from_secs(5));
}

/// Connects from `ns` to `addr:port`, sends a line and reads it back.
pub fn tcp_ok(ns: &Netns, addr: IpAddr, port: u16, timeout: Duration) -> bool {
    ns.run(move || {
        let Ok(mut s) = TcpStream::connect_timeout(&SocketAddr::new(addr, port), timeout) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(timeout));
        if s.write_all(b"ping\n").is_err() {
            return false;
        }
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).is_ok() && &buf == b"ping\n"
    })
}

/// Echoes UDP datagrams on `port` in `ns`.
pub fn udp_echo_server(ns: &Netns, port: u16) {
    let path = format!("/run/netns/{}", ns.name);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        super::enter(&path);
        let s = UdpSocket::bind(("::", port)).unwrap_or_else(|e| panic!("bind udp {port}: {e}"));
        let _ = tx.send(());
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = s.recv_from(&mut buf) {
            let _ = s.send_to(&buf[..n], from);
        }
    });
    let _ = rx.recv_timeout(Duration::from_secs(5));
}

/// Sends a datagram from `ns` to `addr:port` and waits for the echo.
pub fn udp_ok(ns: &Netns, addr: IpAddr, port: u16, timeout: Duration) -> bool {
    ns.run(move || {
        let bind: SocketAddr = if addr.is_ipv4() {
            "0.0.0.0:0".parse().expect("literal")
        } else {
            "[::]:0".parse().expect("literal")
        };
        let Ok(s) = UdpSocket::bind(bind) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(timeout));
        if s.send_to(b"hello", (addr, port)).is_err() {
            return false;
        }
        let mut buf = [0u8; 16];
        matches!(s.recv_from(&mut buf), Ok((5, _)))
    })
}

/// One ping from `ns` to `addr`.
pub fn ping_ok(ns: &Netns, addr: IpAddr) -> bool {
    let a = addr.to_string();
    ns.exec(&["ping", "-c", "1", "-W", "1", &a])
        .status
        .success()
}

/// Listens on `port` in `ns` and echoes everything each connection sends,
/// until it closes.
pub fn tcp_echo_server(ns: &Netns, port: u16) {
    let path = format!("/run/netns/{}", ns.name);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        super::enter(&path);
        let l = TcpListener::bind(("::", port)).unwrap_or_else(|e| panic!("bind {port}: {e}"));
        let _ = tx.send(());
        for mut s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut buf = [0u8; 1024];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    let _ = rx.recv_timeout(Duration::from_secs(5));
}
