//! NAT (masquerading, `ipvsadm -m`): the address and port rewrites of a NAT connection, as
//! spec §4.1 and §4.2 describe Linux IPVS.
//!
//! A NAT connection joins client `CIP:cport`, virtual service `VIP:vport` and real server
//! `RIP:rport` (`rport` may differ from `vport`: port mapping).
//!
//! ## DNAT and SNAT ([`dnat`], [`snat`])
//!
//! - [`dnat`], client → real server (`ip_vs_nat_xmit` with `tcp_dnat_handler` /
//!   `udp_dnat_handler`): destination `VIP:vport` → `RIP:rport`.
//! - [`snat`], real server → client (`handle_response` with the `*_snat_handler`s): source
//!   `RIP:rport` → `VIP:vport`.
//! - [`dnat_at`] and [`snat_at`]: the same rewrites on a packet whose headers the pipeline
//!   already validated (no check repeated), with the TTL decremented in the same pass and
//!   one update of the IPv4 header checksum for both changes: what the data path uses for
//!   every forwarded packet.
//!
//! What changes: that one address and that one port; the IPv4 header checksum and the TCP or
//! UDP checksum, both updated incrementally (RFC 1624 eqn. 3, [`checksum::update_u32`] and
//! [`checksum::update_u16`]), which gives exactly the full recomputation for a correct input
//! checksum and keeps an incorrect one incorrect. Linux recomputes the IPv4 header checksum
//! (`ip_send_check`); the result is the same for the validated headers rvs rewrites.
//!
//! What deliberately does not change: the client's address and port, the TTL (except with
//! the `_at` forms; see [`xmit`](super)), the ToS, identification and flags, IPv4 options (forwarded as they are,
//! as Linux's NAT handlers do; refusing source-routed packets, which Linux drops by default
//! with `accept_source_route = 0`, is the caller's policy), TCP sequence numbers and options,
//! the payload, the Ethernet header (the caller writes it with
//! [`rewrite_ether`](super::rewrite_ether) once it knows the next hop), and the frame length:
//! Ethernet padding stays as it was, outside every checksum.
//!
//! **UDP without a checksum.** A UDP checksum field of 0 means the sender computed none
//! (RFC 768). Reading `udp_dnat_handler` / `udp_snat_handler` (`ip_vs_proto_udp.c`): when the
//! field is non-zero Linux updates it incrementally (`udp_fast_csum_update`, a result of 0
//! sent as `CSUM_MANGLED_0` = `0xffff`); when it is 0 (and the skb is not
//! `CHECKSUM_PARTIAL`), it falls to the "full checksum calculation" branch and *computes* a
//! checksum over the datagram with the new pseudo-header, again 0 sent as `0xffff`. So Linux
//! does not keep "no checksum" through NAT; rvs does the same, in both directions. One
//! difference in an edge case: Linux sums `skb->len - udphoff` (the IPv4 payload) and puts
//! that length in the pseudo-header; rvs sums up to the UDP length field, which is what the
//! receiver verifies (`udp_rcv` trims to it), so a datagram whose UDP length is shorter than
//! its IPv4 payload gets a checksum that verifies with rvs and not with Linux. The first
//! fragment of a datagram (`pipeline::fragment`) keeps "no checksum": its UDP length runs past
//! the fragment, and [`udp::Packet::fill_checksum`] stores 0 for a datagram not all there
//! (Linux, which sees the reassembled datagram, computes one).
//!
//! ## ICMP errors ([`icmp_flow`], [`icmp_snat`], [`icmp_dnat`])
//!
//! Destination unreachable (3), source quench (4) and time exceeded (11) about a packet of a
//! NAT connection are rewritten like `ip_vs_nat_icmp` does. The caller first reads the
//! embedded packet's flow with [`icmp_flow`] (the embedded packet went the other way, so its
//! source and destination are the reverse of the error's), looks the connection up, then:
//!
//! - [`icmp_snat`] for an error coming from the real-server side towards the client
//!   (`inout = 1`, e.g. the real server's port unreachable about `CIP:cport → RIP:rport`):
//!   outer source → `VIP`; embedded destination address → `VIP` and destination port →
//!   `vport`;
//! - [`icmp_dnat`] for an error coming from the client side towards the real server
//!   (`inout = 0`, e.g. a router's time exceeded about a reply `VIP:vport → CIP:cport`):
//!   outer destination → `RIP`; embedded source address → `RIP` and source port → `rport`.
//!
//! Checksums: outer IPv4 header updated incrementally; embedded IPv4 header checksum
//! recomputed over the embedded header (Linux `ip_send_check(ciph)`); the embedded TCP/UDP
//! checksum is **not** updated (it covers data the error does not carry); the ICMP checksum is
//! fully recomputed over the ICMP message, up to the outer total length. Since the ICMP
//! checksum is recomputed, the received one is verified first
//! ([`DropReason::BadIcmpChecksum`]), as Linux does before rewriting.
//!
//! Refused as not related ([`DropReason::IcmpIgnored`]): other ICMP types, an embedded
//! packet that is not TCP or UDP (including IP-in-IP: errors about rvs's own TUN packets are
//! not handled here), an embedded non-first fragment (no ports in it). A short embedded
//! packet is [`DropReason::Truncated`], an embedded header that is not IPv4 or has IHL < 5 is
//! [`DropReason::BadIpv4Header`] (see [`icmp::Packet::embedded`]).

use std::net::SocketAddrV4;

use crate::verdict::DropReason;
use crate::wire::checksum;
use crate::wire::ether;
use crate::wire::icmp;
use crate::wire::ipv4::{self, Protocol};
use crate::wire::tcp;
use crate::wire::udp;

/// Which end of the flow a rewrite changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The source address and port (SNAT).
    Source,
    /// The destination address and port (DNAT).
    Destination,
}

/// DNAT and TTL − 1 of a client → real server packet whose headers the pipeline validated
/// (`at`): what [`decrement_ttl`](super::decrement_ttl) then a DNAT do, without checking the
/// frame again and with one update of the IPv4 header checksum for both changes.
///
/// # Errors
/// [`DropReason::TtlExceeded`] when the TTL is 0 or 1; the frame is unchanged.
#[inline]
pub fn dnat_at(
    frame: &mut [u8],
    at: &super::Headers,
    real: SocketAddrV4,
) -> Result<(), DropReason> {
    rewrite_at(frame, at, End::Destination, real, true)
}

/// SNAT and TTL − 1 of a real server → client packet whose headers the pipeline validated:
/// [`dnat_at`] for the source. Errors as for [`dnat_at`].
#[inline]
pub fn snat_at(
    frame: &mut [u8],
    at: &super::Headers,
    virt: SocketAddrV4,
) -> Result<(), DropReason> {
    rewrite_at(frame, at, End::Source, virt, true)
}

/// Rewrite one end of the TCP or UDP packet whose headers are `at` to `to`, and when
/// `forwarded` decrement its TTL too (its checksum change joins the address's). Inlined
/// with [`rewrite_ipv4`]: the fast path of every NAT packet, whose `end` and `forwarded` are
/// then constants and whose intermediate results stay in registers (`always`: left to
/// itself, the compiler keeps it out of line, a call and a `Result` through memory).
#[inline(always)]
fn rewrite_at(
    frame: &mut [u8],
    at: &super::Headers,
    end: End,
    to: SocketAddrV4,
    forwarded: bool,
) -> Result<(), DropReason> {
    let (header, l4) = frame
        .get_mut(..at.end)
        .and_then(|packet| packet.split_at_mut_checked(at.l4))
        .ok_or(DropReason::Truncated)?;
    let header = header.get_mut(ether::HEADER_LEN..).unwrap_or_default();
    let new_port = to.port();
    match at.protocol {
        Protocol::Tcp => {
            // The fixed header holds both ports and the checksum: a view of known size.
            let fixed = l4
                .first_chunk_mut::<{ tcp::HEADER_LEN }>()
                .ok_or(DropReason::BadL4Header)?;
            let addr = rewrite_ipv4(header, end, to, forwarded)?;
            let mut tcp = tcp::Packet::new_unchecked(fixed);
            let old_port = match end {
                End::Source => tcp.src_port(),
                End::Destination => tcp.dst_port(),
            };
            match end {
                End::Source => tcp.set_src_port(new_port),
                End::Destination => tcp.set_dst_port(new_port),
            }
            tcp.set_checksum(addr.delta.u16(old_port, new_port).apply(tcp.checksum()));
        }
        // UDP, the only other protocol `Headers` describes.
        _ => {
            let addr = rewrite_ipv4(header, end, to, forwarded)?;
            let mut udp = udp::Packet::new_unchecked(l4);
            let old_port = match end {
                End::Source => udp.src_port(),
                End::Destination => udp.dst_port(),
            };
            match end {
                End::Source => udp.set_src_port(new_port),
                End::Destination => udp.set_dst_port(new_port),
            }
            let l4_checksum = udp.checksum();
            if l4_checksum == 0 {
                // Sent without a checksum: Linux computes one (see the module documentation).
                udp.fill_checksum(addr.src, addr.dst);
            } else {
                let updated = addr.delta.u16(old_port, new_port).apply(l4_checksum);
                udp.set_checksum(checksum::udp_nonzero(updated));
            }
        }
    }
    Ok(())
}

/// What [`rewrite_ipv4`] did: the change of the address (for the TCP/UDP pseudo-header) and
/// the packet's addresses after it.
struct Rewritten {
    delta: checksum::Delta,
    src: std::net::Ipv4Addr,
    dst: std::net::Ipv4Addr,
}

/// The IPv4 part of [`rewrite_at`] on `header` (options included): TTL − 1 when `forwarded`,
/// the address of `end`, the header checksum. The usual 20-byte header is rewritten through a
/// view of known size, which checks no bounds.
///
/// # Errors
/// [`DropReason::TtlExceeded`] (`forwarded` only); the header is unchanged.
// Inlined as `rewrite_at` is (see there).
#[inline(always)]
fn rewrite_ipv4(
    header: &mut [u8],
    end: End,
    to: SocketAddrV4,
    forwarded: bool,
) -> Result<Rewritten, DropReason> {
    match <&mut [u8; ipv4::HEADER_LEN]>::try_from(&mut *header) {
        Ok(fixed) => rewrite_ipv4_in(&mut ipv4::Packet::new_unchecked(fixed), end, to, forwarded),
        Err(_) => rewrite_ipv4_in(&mut ipv4::Packet::new_unchecked(header), end, to, forwarded),
    }
}

fn rewrite_ipv4_in<T: AsRef<[u8]> + AsMut<[u8]>>(
    ip: &mut ipv4::Packet<T>,
    end: End,
    to: SocketAddrV4,
    forwarded: bool,
) -> Result<Rewritten, DropReason> {
    let ttl = if forwarded {
        Some(super::ttl_step(ip)?)
    } else {
        None
    };
    let old_addr = match end {
        End::Source => ip.src_addr(),
        End::Destination => ip.dst_addr(),
    };
    // The address is in the IPv4 header and in the pseudo-header of the TCP/UDP checksum.
    let delta = checksum::Delta::default().u32(u32::from(old_addr), u32::from(*to.ip()));
    let ip_delta = match ttl {
        Some((next, ttl_delta)) => {
            ip.set_ttl(next);
            delta.plus(ttl_delta)
        }
        None => delta,
    };
    match end {
        End::Source => ip.set_src_addr(*to.ip()),
        End::Destination => ip.set_dst_addr(*to.ip()),
    }
    ip.set_checksum(ip_delta.apply(ip.checksum()));
    Ok(Rewritten {
        delta,
        src: ip.src_addr(),
        dst: ip.dst_addr(),
    })
}

/// The flow of the packet embedded in an ICMP error, as that packet was sent (the reverse of
/// the error's direction): what the caller looks the connection up with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbeddedFlow {
    /// [`Protocol::Tcp`] or [`Protocol::Udp`].
    pub protocol: Protocol,
    /// The embedded packet's source address and port.
    pub src: SocketAddrV4,
    /// The embedded packet's destination address and port.
    pub dst: SocketAddrV4,
}

/// Return the flow of the TCP or UDP packet embedded in the ICMP error carried by `frame`
/// (the whole Ethernet frame). The ICMP checksum is not verified here (the rewrites do it).
///
/// # Errors
/// The checks of [`xmit`](super), [`DropReason::UnsupportedProtocol`] if the packet is not
/// ICMP, [`DropReason::Truncated`] if the ICMP header is cut, and those listed in the module
/// documentation for the embedded packet.
pub fn icmp_flow(frame: &[u8]) -> Result<EmbeddedFlow, DropReason> {
    embedded_flow(&super::ipv4_packet(frame)?)
}

/// The checks of [`icmp_flow`] on a checked IPv4 packet.
fn embedded_flow(ip: &ipv4::Packet<&[u8]>) -> Result<EmbeddedFlow, DropReason> {
    if ip.protocol() != Protocol::Icmp {
        return Err(DropReason::UnsupportedProtocol);
    }
    let message = icmp::Packet::new_checked(ip.payload())?;
    let embedded = message.embedded()?;
    // A non-first fragment carries no ports.
    if embedded.header.frag_offset() != 0 {
        return Err(DropReason::IcmpIgnored);
    }
    let protocol = embedded.header.protocol();
    // `embedded` holds at least 8 bytes after the header: both ports are there.
    let (src_port, dst_port) = match protocol {
        Protocol::Tcp => {
            let tcp = tcp::Packet::new_unchecked(embedded.data);
            (tcp.src_port(), tcp.dst_port())
        }
        Protocol::Udp => {
            let udp = udp::Packet::new_unchecked(embedded.data);
            (udp.src_port(), udp.dst_port())
        }
        _ => return Err(DropReason::IcmpIgnored),
    };
    Ok(EmbeddedFlow {
        protocol,
        src: SocketAddrV4::new(embedded.header.src_addr(), src_port),
        dst: SocketAddrV4::new(embedded.header.dst_addr(), dst_port),
    })
}

/// Rewrite an ICMP error going from the real-server side to the client (Linux `inout = 1`)
/// for a NAT connection whose virtual service is `virt` (`VIP:vport`): outer source → `VIP`,
/// embedded destination → `VIP:vport`; checksums as the module documentation says.
///
/// # Errors
/// Those of [`icmp_flow`], and [`DropReason::BadIcmpChecksum`]. The frame is unchanged.
pub fn icmp_snat(frame: &mut [u8], virt: SocketAddrV4) -> Result<(), DropReason> {
    icmp_rewrite(frame, End::Source, virt)
}

/// Rewrite an ICMP error going from the client side to the real server (Linux `inout = 0`)
/// for a NAT connection to `real` (`RIP:rport`): outer destination → `RIP`, embedded source
/// → `RIP:rport`. Errors as for [`icmp_snat`]; the frame is unchanged.
pub fn icmp_dnat(frame: &mut [u8], real: SocketAddrV4) -> Result<(), DropReason> {
    icmp_rewrite(frame, End::Destination, real)
}

/// Rewrite the outer `end` of an ICMP error, and the other end of the embedded packet, to
/// `to`.
fn icmp_rewrite(frame: &mut [u8], end: End, to: SocketAddrV4) -> Result<(), DropReason> {
    let ip = super::ipv4_packet(frame)?;
    let flow = embedded_flow(&ip)?;
    if !icmp::Packet::new_unchecked(ip.payload()).verify_checksum() {
        return Err(DropReason::BadIcmpChecksum);
    }
    let old_addr = match end {
        End::Source => ip.src_addr(),
        End::Destination => ip.dst_addr(),
    };
    let ip_checksum = checksum::update_u32(ip.checksum(), u32::from(old_addr), u32::from(*to.ip()));

    let mut ip = super::ipv4_mut(frame);
    let mut message = icmp::Packet::new_unchecked(ip.payload_mut());
    // Checked by `embedded_flow`; nothing is written before this point.
    let embedded = message.embedded_mut()?;
    let mut header = embedded.header;
    match end {
        End::Source => header.set_dst_addr(*to.ip()),
        End::Destination => header.set_src_addr(*to.ip()),
    }
    header.fill_checksum();
    match (flow.protocol, end) {
        (Protocol::Tcp, End::Source) => {
            tcp::Packet::new_unchecked(embedded.data).set_dst_port(to.port());
        }
        (Protocol::Tcp, End::Destination) => {
            tcp::Packet::new_unchecked(embedded.data).set_src_port(to.port());
        }
        (_, End::Source) => udp::Packet::new_unchecked(embedded.data).set_dst_port(to.port()),
        (_, End::Destination) => {
            udp::Packet::new_unchecked(embedded.data).set_src_port(to.port());
        }
    }
    message.fill_checksum();
    match end {
        End::Source => ip.set_src_addr(*to.ip()),
        End::Destination => ip.set_dst_addr(*to.ip()),
    }
    ip.set_checksum(ip_checksum);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xmit::testing::{
        self, frame, tcp_header, Ip, CLIENT, PORT_MAC, REAL, REAL_MAC, ROUTER_MAC, VIRT,
    };
    use etherparse::icmpv4::{DestUnreachableHeader, TimeExceededCode};
    use etherparse::{Icmpv4Type, IpNumber, Ipv4Header, TcpHeader, TcpOptionElement, UdpHeader};
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    /// The DNAT of a packet checked from scratch (its headers found by `xmit::headers`),
    /// without the TTL change: what [`dnat_at`] does to the addresses, ports and checksums.
    fn dnat(frame: &mut [u8], real: SocketAddrV4) -> Result<(), DropReason> {
        let at = crate::xmit::headers(frame)?;
        rewrite_at(frame, &at, End::Destination, real, false)
    }

    /// [`dnat`] for the source (SNAT).
    fn snat(frame: &mut [u8], virt: SocketAddrV4) -> Result<(), DropReason> {
        let at = crate::xmit::headers(frame)?;
        rewrite_at(frame, &at, End::Source, virt, false)
    }

    /// A router on the client's side.
    const ROUTER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

    /// What follows the IPv4 header of a test packet.
    #[derive(Debug, Clone)]
    enum L4 {
        Tcp(TcpHeader, Vec<u8>),
        Udp { payload: Vec<u8>, checksum: bool },
    }

    impl L4 {
        /// The same, with a UDP checksum: what Linux sends for a datagram that had none.
        fn checksummed(&self) -> L4 {
            match self {
                L4::Udp { payload, .. } => L4::Udp {
                    payload: payload.clone(),
                    checksum: true,
                },
                tcp => tcp.clone(),
            }
        }
    }

    /// The IPv4 packet `src` → `dst` carrying `l4`, other IPv4 fields from `ip`.
    fn packet(ip: &Ip, src: SocketAddrV4, dst: SocketAddrV4, l4: &L4) -> Vec<u8> {
        let ip = Ip {
            src: *src.ip(),
            dst: *dst.ip(),
            ..ip.clone()
        };
        match l4 {
            L4::Tcp(tcp, payload) => ip.tcp(src.port(), dst.port(), tcp, payload),
            L4::Udp { payload, checksum } => ip.udp(src.port(), dst.port(), payload, *checksum),
        }
    }

    /// The segments and datagrams every NAT test goes through.
    fn cases() -> Vec<(&'static str, L4)> {
        let mut syn = tcp_header(true, false, false, false, false);
        syn.set_options(&[
            TcpOptionElement::MaximumSegmentSize(1460),
            TcpOptionElement::SelectiveAcknowledgementPermitted,
            TcpOptionElement::Timestamp(0x0a0b_0c0d, 0),
            TcpOptionElement::Noop,
            TcpOptionElement::WindowScale(7),
        ])
        .unwrap();
        vec![
            ("TCP SYN", L4::Tcp(syn, Vec::new())),
            (
                "TCP SYN-ACK",
                L4::Tcp(tcp_header(true, true, false, false, false), Vec::new()),
            ),
            (
                "TCP data (odd length)",
                L4::Tcp(
                    tcp_header(false, true, false, false, true),
                    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
                ),
            ),
            (
                "TCP FIN",
                L4::Tcp(tcp_header(false, true, true, false, false), Vec::new()),
            ),
            (
                "TCP RST",
                L4::Tcp(tcp_header(false, false, false, true, false), Vec::new()),
            ),
            (
                "UDP with checksum",
                L4::Udp {
                    payload: b"\x12\x34\x01\x00\x00\x01query".to_vec(),
                    checksum: true,
                },
            ),
            (
                "UDP without checksum",
                L4::Udp {
                    payload: b"\x12\x34\x01\x00\x00\x01query".to_vec(),
                    checksum: false,
                },
            ),
            (
                "UDP empty",
                L4::Udp {
                    payload: Vec::new(),
                    checksum: true,
                },
            ),
        ]
    }

    /// Check every checksum of the IPv4 frame `bytes` with etherparse: header, and TCP, UDP
    /// (a UDP 0 is reported) or ICMP.
    fn assert_checksums(bytes: &[u8]) {
        let (ip, _) = Ipv4Header::from_slice(&bytes[14..]).unwrap();
        assert_eq!(ip.header_checksum, ip.calc_header_checksum());
        let payload = &bytes[14 + ip.header_len()..14 + usize::from(ip.total_len)];
        match ip.protocol {
            IpNumber::TCP => {
                let (tcp, data) = TcpHeader::from_slice(payload).unwrap();
                assert_eq!(tcp.checksum, tcp.calc_checksum_ipv4(&ip, data).unwrap());
            }
            IpNumber::UDP => {
                let (udp, data) = UdpHeader::from_slice(payload).unwrap();
                assert_ne!(udp.checksum, 0);
                assert_eq!(udp.checksum, udp.calc_checksum_ipv4(&ip, data).unwrap());
            }
            IpNumber::ICMP => assert_eq!(testing::sum(payload), 0xffff),
            other => panic!("protocol {other:?}"),
        }
    }

    #[test]
    fn dnat_matches_etherparse() {
        let ip = Ip::new(*CLIENT.ip(), *VIRT.ip());
        for (name, l4) in cases() {
            let received = frame(ROUTER_MAC, PORT_MAC, &packet(&ip, CLIENT, VIRT, &l4), &[]);
            let expected = frame(
                ROUTER_MAC,
                PORT_MAC,
                &packet(&ip, CLIENT, REAL, &l4.checksummed()),
                &[],
            );
            let mut bytes = received.clone();
            assert_eq!(dnat(&mut bytes, REAL), Ok(()), "{name}");
            assert_eq!(bytes, expected, "{name}");
            assert_checksums(&bytes);
        }
    }

    #[test]
    fn snat_matches_etherparse() {
        let ip = Ip::new(*REAL.ip(), *CLIENT.ip());
        for (name, l4) in cases() {
            let received = frame(REAL_MAC, PORT_MAC, &packet(&ip, REAL, CLIENT, &l4), &[]);
            let expected = frame(
                REAL_MAC,
                PORT_MAC,
                &packet(&ip, VIRT, CLIENT, &l4.checksummed()),
                &[],
            );
            let mut bytes = received.clone();
            assert_eq!(snat(&mut bytes, VIRT), Ok(()), "{name}");
            assert_eq!(bytes, expected, "{name}");
            assert_checksums(&bytes);
        }
    }

    /// A SYN 198.51.100.7:40312 → 203.0.113.10:80 with MSS 1460, as received.
    static SYN_BYTES: [u8; 58] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // Ethernet destination: port
        0x52, 0x54, 0x00, 0x00, 0x00, 0xfe, // Ethernet source: router
        0x08, 0x00, // IPv4
        0x45, 0x00, 0x00, 0x2c, // IHL 5, total length 44
        0x1c, 0x46, 0x40, 0x00, // ident 0x1c46, DF
        0x39, 0x06, 0xbf, 0x40, // TTL 57, TCP, checksum 0xbf40
        0xc6, 0x33, 0x64, 0x07, // 198.51.100.7
        0xcb, 0x00, 0x71, 0x0a, // 203.0.113.10
        0x9d, 0x78, 0x00, 0x50, // 40312 -> 80
        0x6b, 0x8b, 0x45, 0x67, // sequence number
        0x00, 0x00, 0x00, 0x00, // acknowledgment number
        0x60, 0x02, 0xfa, 0xf0, // data offset 6, SYN, window 64240
        0xe8, 0x34, 0x00, 0x00, // checksum 0xe834, urgent pointer
        0x02, 0x04, 0x05, 0xb4, // MSS 1460
    ];

    /// SYN_BYTES after DNAT to 10.1.0.3:8080.
    static SYN_DNAT_BYTES: [u8; 58] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // Ethernet unchanged (the caller's)
        0x52, 0x54, 0x00, 0x00, 0x00, 0xfe, //
        0x08, 0x00, //
        0x45, 0x00, 0x00, 0x2c, // unchanged
        0x1c, 0x46, 0x40, 0x00, // unchanged
        0x39, 0x06, 0xf1, 0x47, // TTL 57 kept, checksum 0xf147
        0xc6, 0x33, 0x64, 0x07, // client unchanged
        0x0a, 0x01, 0x00, 0x03, // 10.1.0.3
        0x9d, 0x78, 0x1f, 0x90, // 40312 -> 8080
        0x6b, 0x8b, 0x45, 0x67, // unchanged
        0x00, 0x00, 0x00, 0x00, //
        0x60, 0x02, 0xfa, 0xf0, //
        0xfa, 0xfb, 0x00, 0x00, // checksum 0xfafb
        0x02, 0x04, 0x05, 0xb4, // option unchanged
    ];

    #[test]
    fn dnat_syn_bytes() {
        let mut syn = tcp_header(true, false, false, false, false);
        syn.set_options(&[TcpOptionElement::MaximumSegmentSize(1460)])
            .unwrap();
        let ip = Ip::new(*CLIENT.ip(), *VIRT.ip());
        let l4 = L4::Tcp(syn, Vec::new());
        assert_eq!(
            frame(ROUTER_MAC, PORT_MAC, &packet(&ip, CLIENT, VIRT, &l4), &[]),
            SYN_BYTES
        );
        let mut bytes = SYN_BYTES;
        assert_eq!(dnat(&mut bytes, REAL), Ok(()));
        assert_eq!(bytes, SYN_DNAT_BYTES);
        assert_checksums(&bytes);
        // And back: SNAT of the same bytes from the real server gives the client's view.
        let mut back = SYN_DNAT_BYTES;
        let (src, dst) = (back[26..30].to_vec(), back[30..34].to_vec());
        back[26..30].copy_from_slice(&dst);
        back[30..34].copy_from_slice(&src);
        back[34..38].copy_from_slice(&[0x1f, 0x90, 0x9d, 0x78]);
        assert_eq!(snat(&mut back, VIRT), Ok(()));
        assert_eq!(&back[30..34], &[0xc6, 0x33, 0x64, 0x07]);
        assert_eq!(&back[26..30], &[0xcb, 0x00, 0x71, 0x0a]);
        assert_eq!(&back[34..38], &[0x00, 0x50, 0x9d, 0x78]);
        assert_checksums(&back);
    }

    #[test]
    fn udp_without_checksum_gets_one() {
        // Linux's udp_dnat_handler / udp_snat_handler compute a full checksum for 0.
        let ip = Ip::new(*CLIENT.ip(), *VIRT.ip());
        let l4 = L4::Udp {
            payload: b"no checksum".to_vec(),
            checksum: false,
        };
        let mut bytes = frame(ROUTER_MAC, PORT_MAC, &packet(&ip, CLIENT, VIRT, &l4), &[]);
        assert_eq!(&bytes[40..42], &[0, 0]);
        assert_eq!(dnat(&mut bytes, REAL), Ok(()));
        let expected = packet(&ip, CLIENT, REAL, &l4.checksummed());
        assert_ne!(&expected[26..28], &[0, 0]);
        assert_eq!(&bytes[14..], &expected[..]);
        let mut bytes = frame(REAL_MAC, PORT_MAC, &packet(&ip, REAL, CLIENT, &l4), &[]);
        assert_eq!(snat(&mut bytes, VIRT), Ok(()));
        assert_eq!(
            &bytes[14..],
            &packet(&ip, VIRT, CLIENT, &l4.checksummed())[..]
        );
    }

    #[test]
    fn udp_checksum_zero_sent_as_ffff() {
        // Choose the first payload word so that the DNATed datagram sums to 0xffff: its
        // checksum computes as 0, which UDP sends as 0xffff (RFC 768).
        let ip = Ip::new(*CLIENT.ip(), *VIRT.ip());
        let probe = packet(
            &ip,
            CLIENT,
            REAL,
            &L4::Udp {
                payload: vec![0, 0, 0xab],
                checksum: true,
            },
        );
        let word = [probe[26], probe[27]];
        let payload = vec![word[0], word[1], 0xab];
        for checksum in [true, false] {
            let l4 = L4::Udp {
                payload: payload.clone(),
                checksum,
            };
            let mut bytes = frame(ROUTER_MAC, PORT_MAC, &packet(&ip, CLIENT, VIRT, &l4), &[]);
            assert_eq!(dnat(&mut bytes, REAL), Ok(()));
            assert_eq!(&bytes[40..42], &[0xff, 0xff], "checksum in: {checksum}");
            let udp = udp::Packet::new_unchecked(&bytes[34..]);
            assert!(udp.verify_checksum(*CLIENT.ip(), *REAL.ip()));
            assert_eq!(
                &bytes[14..],
                &packet(&ip, CLIENT, REAL, &l4.checksummed())[..]
            );
        }
    }

    #[test]
    fn padding_kept_and_not_summed() {
        // 60-byte frames: the padding (0xee) is neither rewritten nor checksummed, including
        // by the full UDP computation.
        let ip = Ip::new(*CLIENT.ip(), *VIRT.ip());
        for (name, l4) in [
            (
                "UDP without checksum",
                L4::Udp {
                    payload: b"ab".to_vec(),
                    checksum: false,
                },
            ),
            (
                "UDP",
                L4::Udp {
                    payload: b"abc".to_vec(),
                    checksum: true,
                },
            ),
            (
                "TCP RST",
                L4::Tcp(tcp_header(false, false, false, true, false), Vec::new()),
            ),
        ] {
            let inner = packet(&ip, CLIENT, VIRT, &l4);
            let padding = vec![0xee; 60 - 14 - inner.len()];
            let mut bytes = frame(ROUTER_MAC, PORT_MAC, &inner, &padding);
            assert_eq!(bytes.len(), 60);
            assert_eq!(dnat(&mut bytes, REAL), Ok(()), "{name}");
            let expected = frame(
                ROUTER_MAC,
                PORT_MAC,
                &packet(&ip, CLIENT, REAL, &l4.checksummed()),
                &padding,
            );
            assert_eq!(bytes, expected, "{name}");
        }
    }

    #[test]
    fn ip_options_forwarded() {
        // IHL 6 (router alert, 4 bytes): the options move the L4 header, and stay as they are.
        let mut ip = Ip::new(*CLIENT.ip(), *VIRT.ip());
        ip.options = vec![0x94, 0x04, 0x00, 0x00];
        for (name, l4) in cases() {
            let mut bytes = frame(ROUTER_MAC, PORT_MAC, &packet(&ip, CLIENT, VIRT, &l4), &[]);
            assert_eq!(bytes[14], 0x46);
            assert_eq!(dnat(&mut bytes, REAL), Ok(()), "{name}");
            let expected = packet(&ip, CLIENT, REAL, &l4.checksummed());
            assert_eq!(&bytes[14..], &expected[..], "{name}");
            assert_checksums(&bytes);
        }
    }

    #[test]
    fn udp_length_shorter_than_ip_payload() {
        // Four bytes after the datagram inside the IPv4 payload: the UDP checksum covers the
        // datagram (its length field), not them.
        for checksum in [true, false] {
            let ip = Ip::new(*CLIENT.ip(), *VIRT.ip());
            let datagram = &packet(
                &ip,
                CLIENT,
                VIRT,
                &L4::Udp {
                    payload: b"data".to_vec(),
                    checksum,
                },
            )[20..];
            let mut payload = datagram.to_vec();
            payload.extend_from_slice(&[0x11, 0x22, 0x33, 0x44]);
            let mut bytes = frame(
                ROUTER_MAC,
                PORT_MAC,
                &ip.packet(IpNumber::UDP, &payload),
                &[],
            );
            assert_eq!(dnat(&mut bytes, REAL), Ok(()));
            let udp = udp::Packet::new_checked(&bytes[34..]).unwrap();
            assert_ne!(udp.checksum(), 0);
            assert!(udp.verify_checksum(*CLIENT.ip(), *REAL.ip()));
            assert_eq!(&bytes[46..], &[0x11, 0x22, 0x33, 0x44]);
        }
    }

    /// Run `f` on a copy of `bytes`; return the result and the copy.
    fn run(
        f: impl Fn(&mut [u8]) -> Result<(), DropReason>,
        bytes: &[u8],
    ) -> (Result<(), DropReason>, Vec<u8>) {
        let mut copy = bytes.to_vec();
        let result = f(&mut copy);
        (result, copy)
    }

    #[test]
    fn refused_frames_unchanged() {
        let ip = Ip::new(*CLIENT.ip(), *VIRT.ip());
        let tcp = frame(
            ROUTER_MAC,
            PORT_MAC,
            &packet(
                &ip,
                CLIENT,
                VIRT,
                &L4::Tcp(tcp_header(true, false, false, false, false), Vec::new()),
            ),
            &[],
        );
        let udp = frame(
            ROUTER_MAC,
            PORT_MAC,
            &packet(
                &ip,
                CLIENT,
                VIRT,
                &L4::Udp {
                    payload: b"x".to_vec(),
                    checksum: true,
                },
            ),
            &[],
        );
        let with = |bytes: &[u8], at: usize, value: &[u8]| {
            let mut bytes = bytes.to_vec();
            bytes[at..at + value.len()].copy_from_slice(value);
            bytes
        };
        let cases: Vec<(&str, Vec<u8>, DropReason)> = vec![
            (
                "VLAN",
                with(&tcp, 12, &[0x81, 0x00]),
                DropReason::VlanTagged,
            ),
            (
                "ARP",
                with(&tcp, 12, &[0x08, 0x06]),
                DropReason::UnsupportedEthertype,
            ),
            (
                "IPv6 version",
                with(&tcp, 14, &[0x65]),
                DropReason::BadIpv4Header,
            ),
            ("IHL 4", with(&tcp, 14, &[0x44]), DropReason::BadIpv4Header),
            (
                "total length > frame",
                with(&tcp, 16, &[0x01, 0x00]),
                DropReason::Truncated,
            ),
            ("MF", with(&tcp, 20, &[0x20]), DropReason::Fragment),
            ("offset", with(&tcp, 21, &[0x01]), DropReason::Fragment),
            (
                "ICMP",
                with(&tcp, 23, &[1]),
                DropReason::UnsupportedProtocol,
            ),
            (
                "GRE",
                with(&tcp, 23, &[47]),
                DropReason::UnsupportedProtocol,
            ),
            (
                "TCP data offset 4",
                with(&tcp, 46, &[0x40]),
                DropReason::BadL4Header,
            ),
            (
                "TCP data offset 6 > segment",
                with(&tcp, 46, &[0x60]),
                DropReason::BadL4Header,
            ),
            (
                "UDP length 7",
                with(&udp, 38, &[0x00, 0x07]),
                DropReason::BadL4Header,
            ),
            (
                "UDP length > payload",
                with(&udp, 38, &[0x00, 0x0a]),
                DropReason::BadL4Header,
            ),
        ];
        for (name, bytes, reason) in cases {
            for f in [dnat as fn(&mut [u8], SocketAddrV4) -> _, snat] {
                assert_eq!(
                    run(|b| f(b, REAL), &bytes),
                    (Err(reason), bytes.clone()),
                    "{name}"
                );
            }
        }
        // Every truncation of the TCP and UDP frames.
        for bytes in [&tcp, &udp] {
            for len in 0..bytes.len() {
                let (result, after) = run(|b| dnat(b, REAL), &bytes[..len]);
                assert!(result.is_err(), "len {len}");
                assert_eq!(after, bytes[..len]);
            }
        }
    }

    /// How many bytes of the original packet an ICMP error embeds.
    #[derive(Debug, Clone, Copy)]
    enum Embed {
        /// The IPv4 header and 8 bytes (RFC 792).
        Minimum,
        /// The whole packet (Linux sends up to 576 bytes).
        Whole,
    }

    impl Embed {
        fn len(self, packet: &[u8]) -> usize {
            match self {
                Embed::Minimum => 28,
                Embed::Whole => packet.len(),
            }
        }
    }

    fn icmp_types() -> [(&'static str, Icmpv4Type); 2] {
        [
            (
                "port unreachable",
                Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::Port),
            ),
            (
                "TTL exceeded",
                Icmpv4Type::TimeExceeded(TimeExceededCode::TtlExceededInTransit),
            ),
        ]
    }

    fn icmp_l4() -> [(&'static str, L4); 2] {
        [
            (
                "TCP",
                L4::Tcp(
                    tcp_header(false, true, false, false, true),
                    b"hello".to_vec(),
                ),
            ),
            (
                "UDP",
                L4::Udp {
                    payload: b"hello".to_vec(),
                    checksum: true,
                },
            ),
        ]
    }

    #[test]
    fn icmp_from_real_server_side() {
        // The real server (or a router behind rvs) reports an error about a DNATed packet
        // CIP:cport -> RIP:rport; the client must see it about CIP:cport -> VIP:vport, from
        // the VIP.
        let ip = Ip::new(*CLIENT.ip(), *VIRT.ip());
        for (type_name, icmp_type) in icmp_types() {
            for (l4_name, l4) in icmp_l4() {
                for embed in [Embed::Minimum, Embed::Whole] {
                    let name = format!("{type_name} {l4_name} {embed:?}");
                    let sent = packet(&ip, CLIENT, VIRT, &l4);
                    let delivered = packet(&ip, CLIENT, REAL, &l4);
                    let n = embed.len(&delivered);
                    let error =
                        Ip::new(*REAL.ip(), *CLIENT.ip()).icmp(icmp_type.clone(), &delivered[..n]);
                    let received = frame(REAL_MAC, PORT_MAC, &error, &[]);
                    assert_eq!(
                        icmp_flow(&received),
                        Ok(EmbeddedFlow {
                            protocol: if matches!(l4, L4::Tcp(..)) {
                                Protocol::Tcp
                            } else {
                                Protocol::Udp
                            },
                            src: CLIENT,
                            dst: REAL,
                        }),
                        "{name}"
                    );
                    // Embedded: the client's own IPv4 header (destination VIP, checksum
                    // recomputed), the destination port back to vport, the rest (the L4
                    // checksum included) as the real server saw it.
                    let mut embedded = sent[..20].to_vec();
                    embedded.extend_from_slice(&delivered[20..n]);
                    embedded[22..24].copy_from_slice(&VIRT.port().to_be_bytes());
                    let expected = frame(
                        REAL_MAC,
                        PORT_MAC,
                        &Ip::new(*VIRT.ip(), *CLIENT.ip()).icmp(icmp_type.clone(), &embedded),
                        &[],
                    );
                    let (result, bytes) = run(|b| icmp_snat(b, VIRT), &received);
                    assert_eq!(result, Ok(()), "{name}");
                    assert_eq!(bytes, expected, "{name}");
                    assert_checksums(&bytes);
                    // The embedded L4 checksum is not updated.
                    assert_eq!(
                        &bytes[42 + 20..][..n - 20][4..],
                        &delivered[24..n],
                        "{name}"
                    );
                }
            }
        }
    }

    #[test]
    fn icmp_from_client_side() {
        // A router on the client's side reports an error about a SNATed reply VIP:vport ->
        // CIP:cport; the real server must see it about its own RIP:rport -> CIP:cport, to RIP.
        let ip = Ip::new(*REAL.ip(), *CLIENT.ip());
        for (type_name, icmp_type) in icmp_types() {
            for (l4_name, l4) in icmp_l4() {
                for embed in [Embed::Minimum, Embed::Whole] {
                    let name = format!("{type_name} {l4_name} {embed:?}");
                    let replied = packet(&ip, REAL, CLIENT, &l4);
                    let delivered = packet(&ip, VIRT, CLIENT, &l4);
                    let n = embed.len(&delivered);
                    let error =
                        Ip::new(ROUTER, *VIRT.ip()).icmp(icmp_type.clone(), &delivered[..n]);
                    let received = frame(ROUTER_MAC, PORT_MAC, &error, &[]);
                    assert_eq!(
                        icmp_flow(&received).map(|flow| (flow.src, flow.dst)),
                        Ok((VIRT, CLIENT)),
                        "{name}"
                    );
                    let mut embedded = replied[..20].to_vec();
                    embedded.extend_from_slice(&delivered[20..n]);
                    embedded[20..22].copy_from_slice(&REAL.port().to_be_bytes());
                    let expected = frame(
                        ROUTER_MAC,
                        PORT_MAC,
                        &Ip::new(ROUTER, *REAL.ip()).icmp(icmp_type.clone(), &embedded),
                        &[],
                    );
                    let (result, bytes) = run(|b| icmp_dnat(b, REAL), &received);
                    assert_eq!(result, Ok(()), "{name}");
                    assert_eq!(bytes, expected, "{name}");
                    assert_checksums(&bytes);
                }
            }
        }
    }

    /// An ICMP port unreachable from the real server about a UDP datagram, as `icmp_snat`
    /// receives it, with `embedded` as the data.
    fn port_unreachable(embedded: &[u8]) -> Vec<u8> {
        let error = Ip::new(*REAL.ip(), *CLIENT.ip()).icmp(
            Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::Port),
            embedded,
        );
        frame(REAL_MAC, PORT_MAC, &error, &[])
    }

    #[test]
    fn icmp_refused() {
        let ip = Ip::new(*CLIENT.ip(), *REAL.ip());
        let udp = packet(
            &ip,
            CLIENT,
            REAL,
            &L4::Udp {
                payload: b"hello".to_vec(),
                checksum: true,
            },
        );
        let good = port_unreachable(&udp[..28]);
        assert_eq!(run(|b| icmp_snat(b, VIRT), &good).0, Ok(()));
        let mut cases: Vec<(String, Vec<u8>, DropReason)> = Vec::new();
        for at in 34..good.len() {
            let mut bytes = good.clone();
            bytes[at] ^= 0x01;
            let reason = match at {
                // The type: 3 -> 2, not an error rvs relays.
                34 => DropReason::IcmpIgnored,
                // Embedded version/IHL 0x45 -> 0x44.
                42 => DropReason::BadIpv4Header,
                // Embedded protocol 17 -> 16.
                51 => DropReason::IcmpIgnored,
                // Embedded fragment offset 0 -> 0x100 or 1.
                48 | 49 => DropReason::IcmpIgnored,
                _ => DropReason::BadIcmpChecksum,
            };
            cases.push((format!("byte {at} flipped"), bytes, reason));
        }
        for (ty, reason) in [
            (
                Icmpv4Type::EchoRequest(etherparse::IcmpEchoHeader { id: 1, seq: 1 }),
                DropReason::IcmpIgnored,
            ),
            (
                Icmpv4Type::Unknown {
                    type_u8: 5,
                    code_u8: 1,
                    bytes5to8: [10, 1, 0, 1],
                },
                DropReason::IcmpIgnored,
            ),
            (
                Icmpv4Type::Unknown {
                    type_u8: 12,
                    code_u8: 0,
                    bytes5to8: [0; 4],
                },
                DropReason::IcmpIgnored,
            ),
        ] {
            let error = Ip::new(*REAL.ip(), *CLIENT.ip()).icmp(ty, &udp[..28]);
            cases.push((
                "type".into(),
                frame(REAL_MAC, PORT_MAC, &error, &[]),
                reason,
            ));
        }
        // Embedded packets that carry no TCP/UDP ports.
        for protocol in [IpNumber::ICMP, IpNumber::IPV4, IpNumber::GRE] {
            let inner = ip.packet(protocol, &udp[20..]);
            cases.push((
                format!("{protocol:?}"),
                port_unreachable(&inner[..28]),
                DropReason::IcmpIgnored,
            ));
        }
        let mut fragment = ip.clone();
        fragment.dont_frag = false;
        let mut inner = fragment.packet(IpNumber::UDP, &udp[20..]);
        inner[7] = 0xb9; // offset 185 (1480 bytes)
        cases.push((
            "fragment".into(),
            port_unreachable(&inner[..28]),
            DropReason::IcmpIgnored,
        ));
        // Embedded cut short: fewer than 8 bytes after the header.
        cases.push((
            "short".into(),
            port_unreachable(&udp[..27]),
            DropReason::Truncated,
        ));
        // Not ICMP at all.
        cases.push((
            "UDP".into(),
            frame(REAL_MAC, PORT_MAC, &udp, &[]),
            DropReason::UnsupportedProtocol,
        ));
        for (name, bytes, reason) in cases {
            if reason != DropReason::BadIcmpChecksum {
                assert_eq!(icmp_flow(&bytes).err(), Some(reason), "{name}");
            }
            assert_eq!(
                run(|b| icmp_snat(b, VIRT), &bytes),
                (Err(reason), bytes.clone()),
                "{name}"
            );
            assert_eq!(
                run(|b| icmp_dnat(b, REAL), &bytes),
                (Err(reason), bytes.clone()),
                "{name}"
            );
        }
        // Every truncation.
        for len in 0..good.len() {
            let (result, after) = run(|b| icmp_snat(b, VIRT), &good[..len]);
            assert!(result.is_err(), "len {len}");
            assert_eq!(after, good[..len]);
        }
    }

    #[test]
    fn icmp_padding_not_summed() {
        let ip = Ip::new(*CLIENT.ip(), *REAL.ip());
        let udp = packet(
            &ip,
            CLIENT,
            REAL,
            &L4::Udp {
                payload: Vec::new(),
                checksum: true,
            },
        );
        let mut bytes = port_unreachable(&udp[..28]);
        bytes.extend_from_slice(&[0xee; 8]);
        assert_eq!(icmp_snat(&mut bytes, VIRT), Ok(()));
        assert_eq!(&bytes[bytes.len() - 8..], &[0xee; 8]);
        assert_checksums(&bytes[..bytes.len() - 8]);
    }

    /// A strategy for a TCP or UDP packet with random header fields and payload.
    fn any_l4() -> impl Strategy<Value = L4> {
        let tcp = (
            any::<u8>(),
            any::<u32>(),
            any::<u32>(),
            any::<u16>(),
            proptest::collection::vec(any::<u8>(), 0..80),
            proptest::option::of(any::<u16>()),
        )
            .prop_map(|(flags, seq, ack, window, payload, mss)| {
                let mut tcp = TcpHeader::new(0, 0, seq, window);
                tcp.fin = flags & 0x01 != 0;
                tcp.syn = flags & 0x02 != 0;
                tcp.rst = flags & 0x04 != 0;
                tcp.psh = flags & 0x08 != 0;
                tcp.ack = flags & 0x10 != 0;
                tcp.acknowledgment_number = ack;
                if let Some(mss) = mss {
                    tcp.set_options(&[TcpOptionElement::MaximumSegmentSize(mss)])
                        .unwrap();
                }
                L4::Tcp(tcp, payload)
            });
        let udp = (proptest::collection::vec(any::<u8>(), 0..80), any::<bool>())
            .prop_map(|(payload, checksum)| L4::Udp { payload, checksum });
        prop_oneof![tcp, udp]
    }

    fn any_addr() -> impl Strategy<Value = SocketAddrV4> {
        (any::<u32>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddrV4::new(Ipv4Addr::from(ip), port))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// NAT on random packets: the incremental checksums equal a full recomputation (the
        /// etherparse-built packet with the new addresses), byte for byte.
        #[test]
        fn incremental_equals_full(
            l4 in any_l4(),
            client in any_addr(),
            virt in any_addr(),
            real in any_addr(),
            ttl in any::<u8>(),
            ident in any::<u16>(),
            dscp in 0u8..64,
            ecn in 0u8..4,
        ) {
            let mut ip = Ip::new(*client.ip(), *virt.ip());
            ip.ttl = ttl;
            ip.ident = ident;
            ip.dscp = dscp;
            ip.ecn = ecn;
            let mut bytes = frame(ROUTER_MAC, PORT_MAC, &packet(&ip, client, virt, &l4), &[]);
            prop_assert_eq!(dnat(&mut bytes, real), Ok(()));
            let expected = frame(ROUTER_MAC, PORT_MAC, &packet(&ip, client, real, &l4.checksummed()), &[]);
            prop_assert_eq!(&bytes, &expected);
            let mut bytes = frame(REAL_MAC, PORT_MAC, &packet(&ip, real, client, &l4), &[]);
            prop_assert_eq!(snat(&mut bytes, virt), Ok(()));
            let expected = frame(REAL_MAC, PORT_MAC, &packet(&ip, virt, client, &l4.checksummed()), &[]);
            prop_assert_eq!(&bytes, &expected);
        }

        /// ICMP rewrites on random embedded packets and addresses: exact bytes, every checksum
        /// right.
        #[test]
        fn icmp_rewrites_random(
            l4 in any_l4(),
            client in any_addr(),
            virt in any_addr(),
            real in any_addr(),
            whole in any::<bool>(),
        ) {
            let ip = Ip::new(*client.ip(), *virt.ip());
            let sent = packet(&ip, client, virt, &l4);
            let delivered = packet(&ip, client, real, &l4);
            let n = if whole { delivered.len() } else { 28 };
            let icmp_type = Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::Port);
            let mut bytes = frame(REAL_MAC, PORT_MAC, &Ip::new(*real.ip(), *client.ip()).icmp(icmp_type.clone(), &delivered[..n]), &[]);
            prop_assert_eq!(icmp_snat(&mut bytes, virt), Ok(()));
            let mut embedded = sent[..20].to_vec();
            embedded.extend_from_slice(&delivered[20..n]);
            embedded[22..24].copy_from_slice(&virt.port().to_be_bytes());
            let expected = frame(REAL_MAC, PORT_MAC, &Ip::new(*virt.ip(), *client.ip()).icmp(icmp_type, &embedded), &[]);
            prop_assert_eq!(bytes, expected);
        }

        /// Random bytes never panic and are refused, unchanged.
        #[test]
        fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
            for f in [dnat as fn(&mut [u8], SocketAddrV4) -> _, snat, icmp_snat, icmp_dnat] {
                let (result, after) = run(|b| f(b, REAL), &bytes);
                if result.is_err() {
                    prop_assert_eq!(&after, &bytes);
                }
            }
            let _ = icmp_flow(&bytes);
        }

        /// Valid frames with a few bytes changed and cut anywhere: never a panic; refused
        /// frames are unchanged, accepted ones keep their length.
        #[test]
        fn mutated_frames(
            which in 0usize..4,
            changes in proptest::collection::vec((0usize..100, any::<u8>()), 0..4),
            cut in 0usize..110,
        ) {
            let ip = Ip::new(*CLIENT.ip(), *VIRT.ip());
            let tcp = L4::Tcp(tcp_header(false, true, false, false, true), b"payload".to_vec());
            let udp = L4::Udp { payload: b"payload".to_vec(), checksum: which == 1 };
            let mut bytes = match which {
                0 => frame(ROUTER_MAC, PORT_MAC, &packet(&ip, CLIENT, VIRT, &tcp), &[0; 6]),
                1 | 2 => frame(ROUTER_MAC, PORT_MAC, &packet(&ip, CLIENT, VIRT, &udp), &[]),
                _ => port_unreachable(&packet(&ip, CLIENT, REAL, &tcp)),
            };
            for (at, value) in changes {
                if let Some(byte) = bytes.get_mut(at) {
                    *byte = value;
                }
            }
            bytes.truncate(cut);
            for f in [dnat as fn(&mut [u8], SocketAddrV4) -> _, snat, icmp_snat, icmp_dnat] {
                let (result, after) = run(|b| f(b, REAL), &bytes);
                prop_assert_eq!(after.len(), bytes.len());
                if result.is_err() {
                    prop_assert_eq!(&after, &bytes);
                }
            }
            let _ = icmp_flow(&bytes);
        }
    }
}
