//! Unit tests of the sock_diag reply parser: valid replies, and truncated,
//! garbage and hostile buffers (errors, never panics).

use super::*;

const SEQ: u32 = 7;
const V4: u8 = 2;
const V6: u8 = 10;

fn nlmsg(kind: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(NLMSG_HDRLEN + payload.len()).expect("small");
    let mut m = Vec::new();
    m.extend_from_slice(&len.to_ne_bytes());
    m.extend_from_slice(&kind.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(payload);
    while m.len() % 4 != 0 {
        m.push(0);
    }
    m
}

fn diag(family: u8, state: u8, src: [u8; 16], sport: u16, dst: [u8; 16], dport: u16) -> Vec<u8> {
    let mut p = vec![family, state, 0, 0];
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(&3u32.to_ne_bytes()); // if
    p.extend_from_slice(&[0; 8]); // cookie
    p.extend_from_slice(&[0; 12]); // expires, rqueue, wqueue
    p.extend_from_slice(&1000u32.to_ne_bytes()); // uid
    p.extend_from_slice(&4242u32.to_ne_bytes()); // inode
    p.extend_from_slice(&[8, 0, 1, 0, 0, 0, 0, 0]); // an attribute, ignored
    p
}

fn v4(a: [u8; 4]) -> [u8; 16] {
    let mut b = [0; 16];
    b[..4].copy_from_slice(&a);
    b
}

fn valid_v4() -> Vec<u8> {
    let mut buf = nlmsg(
        SOCK_DIAG_BY_FAMILY,
        2,
        SEQ,
        &diag(V4, 1, v4([127, 0, 0, 1]), 22, v4([10, 0, 0, 9]), 50000),
    );
    buf.extend(nlmsg(NLMSG_DONE, 2, SEQ, &0i32.to_ne_bytes()));
    buf
}

#[test]
fn parses_a_valid_reply() {
    let mut out = Vec::new();
    let p = parse_datagram(&valid_v4(), V4, SEQ, &mut out);
    assert_eq!(p, Ok(Progress::Done));
    assert_eq!(
        out,
        vec![DiagMsg {
            state: 1,
            local: "127.0.0.1:22".parse().expect("addr"),
            remote: "10.0.0.9:50000".parse().expect("addr"),
            uid: 1000,
            inode: 4242,
        }]
    );
}

#[test]
fn a_datagram_without_done_asks_for_more() {
    let buf = nlmsg(
        SOCK_DIAG_BY_FAMILY,
        2,
        SEQ,
        &diag(V4, 1, v4([1, 2, 3, 4]), 1, v4([5, 6, 7, 8]), 2),
    );
    let mut out = Vec::new();
    assert_eq!(parse_datagram(&buf, V4, SEQ, &mut out), Ok(Progress::More));
    assert_eq!(out.len(), 1);
}

#[test]
fn ipv4_mapped_becomes_ipv4_and_link_local_gets_a_scope() {
    let mut mapped = [0u8; 16];
    mapped[10] = 0xff;
    mapped[11] = 0xff;
    mapped[12..].copy_from_slice(&[192, 0, 2, 1]);
    let mut ll = [0u8; 16];
    ll[0] = 0xfe;
    ll[1] = 0x80;
    ll[15] = 1;
    let buf = nlmsg(SOCK_DIAG_BY_FAMILY, 2, SEQ, &diag(V6, 1, mapped, 22, ll, 9));
    let mut out = Vec::new();
    parse_datagram(&buf, V6, SEQ, &mut out).expect("valid");
    assert_eq!(out[0].local, "192.0.2.1:22".parse().expect("addr"));
    assert_eq!(out[0].remote, "[fe80::1%3]:9".parse().expect("addr"));
}

#[test]
fn every_truncation_of_a_valid_reply_is_an_error() {
    let buf = valid_v4();
    // Cutting inside the first message (the DONE message starts at 96).
    for cut in 0..96 {
        let mut out = Vec::new();
        let r = parse_datagram(&buf[..cut], V4, SEQ, &mut out);
        assert!(
            matches!(r, Err(ParseError::Truncated { .. })),
            "cut at {cut}: {r:?}"
        );
    }
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    let mut out = Vec::new();
    assert!(parse_datagram(b"garbage!", V4, SEQ, &mut out).is_err());
    assert!(parse_datagram(&[0xff; 64], V4, SEQ, &mut out).is_err());
    // Pseudo-random buffers of every small length must not panic.
    let mut x: u32 = 0x1234_5678;
    for len in 0..400 {
        let buf: Vec<u8> = (0..len)
            .map(|_| {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                x.to_le_bytes()[3]
            })
            .collect();
        let _ = parse_datagram(&buf, V6, SEQ, &mut out);
    }
}

#[test]
fn inconsistent_headers_are_errors() {
    let mut out = Vec::new();
    // Length shorter than the header.
    let mut short = nlmsg(NLMSG_DONE, 0, SEQ, &[0; 4]);
    short[..4].copy_from_slice(&8u32.to_ne_bytes());
    assert!(matches!(
        parse_datagram(&short, V4, SEQ, &mut out),
        Err(ParseError::Malformed(_))
    ));
    // Length beyond the buffer.
    let mut long = nlmsg(NLMSG_DONE, 0, SEQ, &[0; 4]);
    long[..4].copy_from_slice(&4096u32.to_ne_bytes());
    assert!(matches!(
        parse_datagram(&long, V4, SEQ, &mut out),
        Err(ParseError::Truncated { .. })
    ));
    // Wrong sequence number, unknown type, wrong family, interrupted dump.
    let done = nlmsg(NLMSG_DONE, 0, SEQ + 1, &[0; 4]);
    assert!(parse_datagram(&done, V4, SEQ, &mut out).is_err());
    let odd = nlmsg(99, 0, SEQ, &[]);
    assert!(parse_datagram(&odd, V4, SEQ, &mut out).is_err());
    let fam = nlmsg(
        SOCK_DIAG_BY_FAMILY,
        2,
        SEQ,
        &diag(V6, 1, [0; 16], 1, [0; 16], 2),
    );
    assert!(parse_datagram(&fam, V4, SEQ, &mut out).is_err());
    let intr = nlmsg(NLMSG_DONE, 0x10, SEQ, &[0; 4]);
    assert_eq!(
        parse_datagram(&intr, V4, SEQ, &mut out),
        Err(ParseError::Interrupted)
    );
    assert!(out.is_empty());
}

#[test]
fn kernel_errors_are_reported() {
    let mut out = Vec::new();
    let err = nlmsg(NLMSG_ERROR, 0, SEQ, &(-libc::EPERM).to_ne_bytes());
    assert_eq!(
        parse_datagram(&err, V4, SEQ, &mut out),
        Err(ParseError::Kernel(Errno::EPERM))
    );
    let done = nlmsg(NLMSG_DONE, 0, SEQ, &(-libc::EINTR).to_ne_bytes());
    assert_eq!(
        parse_datagram(&done, V4, SEQ, &mut out),
        Err(ParseError::Kernel(Errno::EINTR))
    );
}
