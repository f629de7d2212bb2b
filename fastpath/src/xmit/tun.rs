//! TUN (IP-in-IP tunnelling, `ipvsadm -i`, RFC 2003): the client's packet, unchanged, inside
//! a new IPv4 header addressed to the real server, as spec §4.4 describes `ip_vs_tunnel_xmit`.
//!
//! ## Encapsulation ([`encapsulate`])
//!
//! The frame grows by 20 bytes at the front ([`Frame::prepend`]) and becomes:
//!
//! - Ethernet: source = the egress port's MAC, destination = the next hop's, EtherType IPv4;
//! - outer IPv4, 20 bytes, no options: version 4, IHL 5; DSCP = the inner DSCP; ECN = the
//!   inner ECN, except that an inner CE (3) becomes ECT(0) (2) (RFC 6040 normal mode, Linux
//!   `INET_ECN_encapsulate`): a congestion mark must not be copied onto a header the
//!   decapsulator discards; total length = inner total length + 20; identification = the
//!   caller's (a per-worker counter: Linux's `ip_select_ident` writes 0 in DF packets unless
//!   `ignore_df` is set, and any value is valid in a datagram that is never fragmented,
//!   RFC 6864); DF = the inner DF (Linux with `pmtu_disc` = 1, the default), MF 0, fragment
//!   offset 0; TTL = the inner TTL (not decremented: see [`xmit`](super)); protocol 4
//!   (IP-in-IP); header checksum; source = the balancer's address on the egress link (Linux
//!   binds the route to the source it selects towards the real server); destination = the
//!   real server;
//! - the inner IPv4 packet, byte for byte as received, up to its total length; a fragment is
//!   carried like any packet (each fragment of a datagram of a TUN connection is tunnelled on
//!   its own: `pipeline::fragment`).
//!
//! Ethernet padding after the inner packet is dropped: the frame ends at the outer packet's
//! end (see [`xmit`](super)).
//!
//! ## Too big for the egress MTU
//!
//! The outer packet (inner total length + 20) must fit the egress link's IP MTU. When it does
//! not:
//!
//! - inner DF set: [`encapsulate`] leaves the frame unchanged and returns
//!   [`Outcome::FragNeeded`] with the next-hop MTU to announce, the egress MTU − 20 (Linux
//!   `ensure_mtu_is_adequate` with the tunnel MTU, `icmp_send(ICMP_FRAG_NEEDED, mtu)`). The
//!   caller then turns the frame into that ICMP error with [`frag_needed`] and sends it back
//!   to the client on the receiving port;
//! - inner DF clear: Linux sends the outer packet and lets IP fragment it; so does rvs:
//!   [`encapsulate`] encapsulates as usual and the outer packet, DF clear, is larger than
//!   the MTU, which the caller's egress stage sees and fragments
//!   ([`fragment`](super::fragment)); the real server reassembles the outer packet.
//!
//! An egress MTU below 88 (a tunnel MTU below 68, the IPv4 minimum) makes every packet
//! [`DropReason::TooBig`], as Linux refuses such routes ("mtu less than 68"), and so does an
//! inner packet too long for an outer header (over 65515 bytes).
//!
//! ## The "fragmentation needed" answer ([`frag_needed`])
//!
//! The received frame becomes, in place, the ICMP error type 3 (destination unreachable),
//! code 4 (fragmentation needed and DF set) with the next-hop MTU (RFC 1191), from the VIP to
//! the client, quoting the packet: see [`icmp_answer`](super::icmp_answer) for every field
//! and for the packets no ICMP error is sent about (those return [`DropReason::TooBig`] and
//! the oversized packet is dropped).

use std::net::Ipv4Addr;

use super::{icmp_answer, Link};
use crate::frame::Frame;
use crate::verdict::DropReason;
use crate::wire::ether::{self, EtherType, EthernetAddress};

use crate::wire::ipv4::{self, Protocol};

/// Length of the outer header that [`encapsulate`] prepends.
pub const OUTER_LEN: usize = ipv4::HEADER_LEN;
/// Smallest IPv4 MTU (RFC 791): a tunnel must carry at least this much.
const MIN_TUNNEL_MTU: u16 = 68;
/// ECN codepoints (RFC 3168).
const ECN_ECT0: u8 = 0b10;
const ECN_CE: u8 = 0b11;

/// Where a TUN packet goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tunnel {
    /// The egress port's MAC and the next hop's towards the real server.
    pub link: Link,
    /// The balancer's address on the egress link: the outer source.
    pub src_addr: Ipv4Addr,
    /// The real server: the outer destination.
    pub dst_addr: Ipv4Addr,
    /// The egress link's IP MTU: the largest outer packet.
    pub mtu: u16,
}

/// What [`encapsulate`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The frame holds the encapsulated packet: send it on the egress port.
    Encapsulated,
    /// Too big with DF set; the frame is unchanged. Answer with [`frag_needed`] announcing
    /// `next_hop_mtu`, on the receiving port.
    FragNeeded {
        /// The MTU the client must use: the egress MTU − 20.
        next_hop_mtu: u16,
    },
}

/// Encapsulate the IPv4 packet in `frame` (the whole Ethernet frame as received) in IP-in-IP
/// for `tunnel`, with outer identification `ident`; see the module documentation for every
/// field and for what happens when it is too big.
///
/// # Errors
/// The frame is unchanged on every error:
/// - the checks of [`xmit`](super) ([`DropReason::Truncated`], [`DropReason::VlanTagged`],
///   [`DropReason::UnsupportedEthertype`], [`DropReason::BadIpv4Header`]) but the one for
///   fragments: a fragment is tunnelled as it is (the pipeline forwards each fragment of a
///   datagram with its connection's method);
/// - [`DropReason::TooBig`]: an MTU below 88, or an inner packet over 65515 bytes;
/// - [`DropReason::NoHeadroom`]: fewer than 20 bytes of headroom.
pub fn encapsulate<F: Frame + ?Sized>(
    frame: &mut F,
    tunnel: &Tunnel,
    ident: u16,
) -> Result<Outcome, DropReason> {
    // A fragment is carried like any packet: the tunnel reads nothing past its header.
    let inner = super::ipv4_packet_or_fragment(frame.data())?;
    let inner_len = inner.total_len();
    let ecn = match inner.ecn() {
        ECN_CE => ECN_ECT0,
        ecn => ecn,
    };
    let outer = ipv4::Repr {
        src_addr: tunnel.src_addr,
        dst_addr: tunnel.dst_addr,
        protocol: Protocol::IpIp,
        payload_len: usize::from(inner_len),
        ttl: inner.ttl(),
        dscp: inner.dscp(),
        ecn,
        ident,
        dont_frag: inner.dont_frag(),
    };
    let next_hop_mtu = tunnel
        .mtu
        .checked_sub(ipv4::HEADER_LEN as u16)
        .filter(|&mtu| mtu >= MIN_TUNNEL_MTU)
        .ok_or(DropReason::TooBig)?;
    if inner_len > next_hop_mtu && outer.dont_frag {
        return Ok(Outcome::FragNeeded { next_hop_mtu });
    }
    if usize::from(inner_len) > usize::from(u16::MAX).saturating_sub(OUTER_LEN) {
        return Err(DropReason::TooBig);
    }
    let padding = frame
        .data()
        .len()
        .checked_sub(ether::HEADER_LEN)
        .and_then(|len| len.checked_sub(usize::from(inner_len)))
        .ok_or(DropReason::Truncated)?;
    super::splice::resize(frame, OUTER_LEN, padding)?;

    let bytes = frame.data_mut();
    let mut eth = ether::Packet::new_unchecked(&mut *bytes);
    eth.set_dst_addr(tunnel.link.next_hop_mac);
    eth.set_src_addr(tunnel.link.port_mac);
    eth.set_ethertype(EtherType::Ipv4);
    // Cannot fail: the frame holds 20 bytes for it and the total length fits 16 bits.
    outer.emit(&mut super::ipv4_mut(bytes))?;
    Ok(Outcome::Encapsulated)
}

/// Turn `frame`, holding a packet too big for a tunnel with DF set (as received, after
/// [`encapsulate`] returned [`Outcome::FragNeeded`]), into the ICMP "fragmentation needed"
/// error for its sender, in place: `port_mac` and `link_mtu` are the receiving port's MAC and
/// MTU, `next_hop_mtu` the MTU to announce, `ident` the identification of the error's IPv4
/// header. See the module documentation for every field. On `Ok`, send the frame on the
/// receiving port.
///
/// # Errors
/// The frame is unchanged on every error:
/// - the checks of [`xmit`](super);
/// - [`DropReason::TooBig`]: no ICMP error may be sent about this packet (an ICMP error, a
///   link-layer broadcast, a source that is not a single host, a multicast destination);
/// - [`DropReason::NoHeadroom`]: fewer than 28 bytes of headroom.
pub fn frag_needed<F: Frame + ?Sized>(
    frame: &mut F,
    port_mac: EthernetAddress,
    link_mtu: u16,
    next_hop_mtu: u16,
    ident: u16,
) -> Result<(), DropReason> {
    // From the VIP: the original destination, an address the balancer owns.
    let from = super::ipv4_packet(frame.data())?.dst_addr();
    let answer = icmp_answer::Answer::FragNeeded { next_hop_mtu };
    icmp_answer::answer(frame, port_mac, link_mtu, from, answer, ident)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::VecFrame;
    use crate::wire::icmp;
    use crate::xmit::icmp_answer::MAX_ERROR_LEN;
    use crate::xmit::testing::{
        self, frame, tcp_header, Ip, CLIENT, PORT_MAC, REAL, REAL_MAC, ROUTER_MAC, VIRT,
    };
    use etherparse::icmpv4::DestUnreachableHeader;
    use etherparse::{Icmpv4Header, Icmpv4Type, IpNumber, Ipv4Header};
    use proptest::prelude::*;

    /// The balancer's address on the link to the real servers.
    const LOCAL: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);

    fn tunnel(mtu: u16) -> Tunnel {
        Tunnel {
            link: Link {
                port_mac: PORT_MAC,
                next_hop_mac: REAL_MAC,
            },
            src_addr: LOCAL,
            dst_addr: *REAL.ip(),
            mtu,
        }
    }

    /// A SYN with MSS 1460 to the VIP, DSCP 46 (EF) and ECN CE (ToS 0xbb), as received.
    static SYN_BYTES: [u8; 58] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // Ethernet destination: port
        0x52, 0x54, 0x00, 0x00, 0x00, 0xfe, // Ethernet source: router
        0x08, 0x00, // IPv4
        0x45, 0xbb, 0x00, 0x2c, // ToS 0xbb, total length 44
        0x1c, 0x46, 0x40, 0x00, // ident, DF
        0x39, 0x06, 0xbe, 0x85, // TTL 57, TCP, checksum 0xbe85
        0xc6, 0x33, 0x64, 0x07, // 198.51.100.7
        0xcb, 0x00, 0x71, 0x0a, // 203.0.113.10
        0x9d, 0x78, 0x00, 0x50, // 40312 -> 80
        0x6b, 0x8b, 0x45, 0x67, // sequence number
        0x00, 0x00, 0x00, 0x00, // acknowledgment number
        0x60, 0x02, 0xfa, 0xf0, // data offset 6, SYN, window
        0xe8, 0x34, 0x00, 0x00, // checksum 0xe834
        0x02, 0x04, 0x05, 0xb4, // MSS 1460
    ];

    /// The Ethernet and outer IPv4 headers `encapsulate` puts in front of SYN_BYTES' packet,
    /// ident 1.
    static OUTER_BYTES: [u8; 34] = [
        0x52, 0x54, 0x00, 0x00, 0x00, 0x03, // Ethernet destination: next hop
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // Ethernet source: port
        0x08, 0x00, // IPv4
        0x45, 0xba, 0x00, 0x40, // DSCP 46, ECN CE -> ECT(0), total length 64
        0x00, 0x01, 0x40, 0x00, // ident 1, DF copied
        0x39, 0x04, 0x2c, 0xfa, // TTL 57 copied, IP-in-IP, checksum 0x2cfa
        0x0a, 0x01, 0x00, 0x01, // 10.1.0.1: the balancer on that link
        0x0a, 0x01, 0x00, 0x03, // 10.1.0.3: the real server
    ];

    #[test]
    fn encapsulate_bytes() {
        let mut f = VecFrame::new(SYN_BYTES);
        assert_eq!(
            encapsulate(&mut f, &tunnel(1500), 1),
            Ok(Outcome::Encapsulated)
        );
        let bytes = f.into_bytes();
        assert_eq!(bytes[..34], OUTER_BYTES);
        assert_eq!(bytes[34..], SYN_BYTES[14..]);
        let (outer, inner) = Ipv4Header::from_slice(&bytes[14..]).unwrap();
        assert_eq!(outer.header_checksum, outer.calc_header_checksum());
        let (inner, _) = Ipv4Header::from_slice(inner).unwrap();
        assert_eq!(inner.header_checksum, inner.calc_header_checksum());
    }

    /// The frame a client sends to the VIP: a TCP data segment of `len` bytes in all.
    fn client_frame(ip: &Ip, len: usize, padding: &[u8]) -> Vec<u8> {
        let payload = vec![0x5a; len - 40];
        let packet = ip.tcp(
            CLIENT.port(),
            VIRT.port(),
            &tcp_header(false, true, false, false, true),
            &payload,
        );
        assert_eq!(packet.len(), len);
        frame(ROUTER_MAC, PORT_MAC, &packet, padding)
    }

    /// What `encapsulate` must produce for `inner` (an IPv4 packet), built with etherparse.
    fn expected(inner: &[u8], ident: u16) -> Vec<u8> {
        let (header, _) = Ipv4Header::from_slice(inner).unwrap();
        let ecn = match header.ecn.value() {
            3 => 2,
            ecn => ecn,
        };
        let outer = Ip {
            src: LOCAL,
            dst: *REAL.ip(),
            ttl: header.time_to_live,
            ident,
            dont_frag: header.dont_fragment,
            dscp: header.dscp.value(),
            ecn,
            options: Vec::new(),
        };
        frame(
            PORT_MAC,
            REAL_MAC,
            &outer.packet(IpNumber::IPV4, inner),
            &[],
        )
    }

    #[test]
    fn encapsulate_matches_etherparse() {
        for dont_frag in [true, false] {
            for ecn in 0..4 {
                for (dscp, ttl) in [(0, 64), (46, 1), (10, 255)] {
                    let mut ip = Ip::new(*CLIENT.ip(), *VIRT.ip());
                    ip.dont_frag = dont_frag;
                    ip.ecn = ecn;
                    ip.dscp = dscp;
                    ip.ttl = ttl;
                    let received = client_frame(&ip, 100, &[]);
                    let mut f = VecFrame::new(&received);
                    let name = format!("DF {dont_frag} ECN {ecn} DSCP {dscp} TTL {ttl}");
                    assert_eq!(
                        encapsulate(&mut f, &tunnel(1500), 0xbeef),
                        Ok(Outcome::Encapsulated),
                        "{name}"
                    );
                    let bytes = f.into_bytes();
                    assert_eq!(bytes, expected(&received[14..], 0xbeef), "{name}");
                    // The outer ECN: CE (3) becomes ECT(0) (2), the others are copied.
                    assert_eq!(bytes[15] & 3, if ecn == 3 { 2 } else { ecn }, "{name}");
                    assert_eq!(bytes[15] >> 2, dscp, "{name}");
                    assert_eq!(bytes[22], ttl, "{name}");
                    assert_eq!(bytes[20] & 0x40 != 0, dont_frag, "{name}");
                }
            }
        }
    }

    #[test]
    fn padding_dropped() {
        let ip = Ip::new(*CLIENT.ip(), *VIRT.ip());
        let received = client_frame(&ip, 40, &[0xee; 6]);
        assert_eq!(received.len(), 60);
        let mut f = VecFrame::new(&received);
        assert_eq!(
            encapsulate(&mut f, &tunnel(1500), 7),
            Ok(Outcome::Encapsulated)
        );
        let bytes = f.into_bytes();
        assert_eq!(bytes.len(), 14 + 20 + 40);
        assert_eq!(bytes, expected(&received[14..54], 7));
    }

    #[test]
    fn mtu() {
        let mut ip = Ip::new(*CLIENT.ip(), *VIRT.ip());
        for dont_frag in [true, false] {
            ip.dont_frag = dont_frag;
            // 1480 + 20 = 1500: fits exactly.
            let received = client_frame(&ip, 1480, &[]);
            let mut f = VecFrame::new(&received);
            assert_eq!(
                encapsulate(&mut f, &tunnel(1500), 1),
                Ok(Outcome::Encapsulated)
            );
            assert_eq!(f.into_bytes().len(), 14 + 1500);
            // One byte more: too big. With DF the frame is left for the answer; without,
            // it is encapsulated all the same, for the egress stage to fragment.
            let received = client_frame(&ip, 1481, &[]);
            let mut f = VecFrame::new(&received);
            let result = encapsulate(&mut f, &tunnel(1500), 1);
            if dont_frag {
                assert_eq!(result, Ok(Outcome::FragNeeded { next_hop_mtu: 1480 }));
                assert_eq!(f.into_bytes(), received);
            } else {
                assert_eq!(result, Ok(Outcome::Encapsulated));
                assert_eq!(f.into_bytes(), expected(&received[14..], 1));
            }
        }
        // A tunnel MTU below 68 is refused whatever the size; 88 (tunnel 68) carries 68.
        ip.dont_frag = true;
        let received = client_frame(&ip, 68, &[]);
        for (mtu, result) in [
            (0, Err(DropReason::TooBig)),
            (19, Err(DropReason::TooBig)),
            (87, Err(DropReason::TooBig)),
            (88, Ok(Outcome::Encapsulated)),
        ] {
            let mut f = VecFrame::new(&received);
            assert_eq!(encapsulate(&mut f, &tunnel(mtu), 1), result, "mtu {mtu}");
        }
        let received = client_frame(&ip, 69, &[]);
        let mut f = VecFrame::new(&received);
        assert_eq!(
            encapsulate(&mut f, &tunnel(88), 1),
            Ok(Outcome::FragNeeded { next_hop_mtu: 68 })
        );
    }

    /// A frame holding `bytes` with only `headroom` bytes of headroom.
    fn with_headroom(bytes: &[u8], headroom: usize) -> VecFrame {
        let mut f = VecFrame::new(bytes);
        assert!(f.prepend(VecFrame::HEADROOM - headroom));
        assert!(f.set_data(bytes));
        f
    }

    #[test]
    fn no_headroom() {
        let ip = Ip::new(*CLIENT.ip(), *VIRT.ip());
        let received = client_frame(&ip, 100, &[0xee; 3]);
        let mut f = with_headroom(&received, 19);
        assert_eq!(
            encapsulate(&mut f, &tunnel(1500), 1),
            Err(DropReason::NoHeadroom)
        );
        assert_eq!(f.data(), &received[..]);
        let mut f = with_headroom(&received, 20);
        assert_eq!(
            encapsulate(&mut f, &tunnel(1500), 1),
            Ok(Outcome::Encapsulated)
        );
        assert_eq!(f.into_bytes(), expected(&received[14..114], 1));
        let mut f = with_headroom(&received, 27);
        assert_eq!(
            frag_needed(&mut f, PORT_MAC, 1500, 68, 1),
            Err(DropReason::NoHeadroom)
        );
        assert_eq!(f.data(), &received[..]);
        let mut f = with_headroom(&received, 28);
        assert_eq!(frag_needed(&mut f, PORT_MAC, 1500, 68, 1), Ok(()));
    }

    #[test]
    fn refused_frames_unchanged() {
        let ip = Ip::new(*CLIENT.ip(), *VIRT.ip());
        let good = client_frame(&ip, 100, &[]);
        let with = |at: usize, value: &[u8]| {
            let mut bytes = good.clone();
            bytes[at..at + value.len()].copy_from_slice(value);
            bytes
        };
        for (bytes, reason) in [
            (with(12, &[0x81, 0x00]), DropReason::VlanTagged),
            (with(12, &[0x86, 0xdd]), DropReason::UnsupportedEthertype),
            (with(14, &[0x65]), DropReason::BadIpv4Header),
            (with(16, &[0x00, 0x13]), DropReason::BadIpv4Header),
            (with(16, &[0x00, 0x65]), DropReason::Truncated),
            (good[..33].to_vec(), DropReason::Truncated),
        ] {
            let mut f = VecFrame::new(&bytes);
            assert_eq!(encapsulate(&mut f, &tunnel(1500), 1), Err(reason));
            assert_eq!(f.data(), &bytes[..]);
            let mut f = VecFrame::new(&bytes);
            assert_eq!(frag_needed(&mut f, PORT_MAC, 1500, 1480, 1), Err(reason));
            assert_eq!(f.data(), &bytes[..]);
        }
        // A fragment (DF and MF set here): no "fragmentation needed" about it, but it is
        // tunnelled as it is, as every fragment of a TUN connection's datagram.
        let fragment = with(20, &[0x60]);
        let mut f = VecFrame::new(&fragment);
        assert_eq!(
            frag_needed(&mut f, PORT_MAC, 1500, 1480, 1),
            Err(DropReason::Fragment)
        );
        assert_eq!(f.data(), &fragment[..]);
        let mut f = VecFrame::new(&fragment);
        let encapsulated = encapsulate(&mut f, &tunnel(1500), 1);
        assert_eq!(encapsulated, Ok(Outcome::Encapsulated));
        assert_eq!(f.data(), &expected(&fragment[14..], 1)[..]);
    }

    /// A 72-byte UDP datagram 198.51.100.7:40312 -> 203.0.113.10:53, payload 0..44, DF.
    static BIG_BYTES: [u8; 72] = [
        0x45, 0x00, 0x00, 0x48, 0x1c, 0x46, 0x40, 0x00, 0x39, 0x11, 0xbf, 0x19, // IPv4
        0xc6, 0x33, 0x64, 0x07, 0xcb, 0x00, 0x71, 0x0a, //
        0x9d, 0x78, 0x00, 0x35, 0x00, 0x34, 0x2b, 0xad, // UDP
        0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, // payload
        0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, //
        0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, //
        0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b,
    ];

    /// The headers of the "fragmentation needed" answer to BIG_BYTES for a tunnel MTU of 68,
    /// ident 2; the whole datagram follows.
    static FRAG_NEEDED_BYTES: [u8; 42] = [
        0x52, 0x54, 0x00, 0x00, 0x00, 0xfe, // Ethernet destination: the sender (router)
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // Ethernet source: port
        0x08, 0x00, // IPv4
        0x45, 0xc0, 0x00, 0x64, // DSCP CS6, total length 100
        0x00, 0x02, 0x00, 0x00, // ident 2, DF clear
        0x40, 0x01, 0x13, 0x92, // TTL 64, ICMP, checksum 0x1392
        0xcb, 0x00, 0x71, 0x0a, // from the VIP
        0xc6, 0x33, 0x64, 0x07, // to the client
        0x03, 0x04, 0x63, 0x43, // destination unreachable, fragmentation needed, checksum
        0x00, 0x00, 0x00, 0x44, // unused, next-hop MTU 68
    ];

    #[test]
    fn frag_needed_bytes() {
        let received = frame(ROUTER_MAC, PORT_MAC, &BIG_BYTES, &[]);
        let (udp, data) = etherparse::UdpHeader::from_slice(&BIG_BYTES[20..]).unwrap();
        let (ip, _) = Ipv4Header::from_slice(&BIG_BYTES).unwrap();
        assert_eq!(udp.checksum, udp.calc_checksum_ipv4(&ip, data).unwrap());
        let mut f = VecFrame::new(&received);
        assert_eq!(
            encapsulate(&mut f, &tunnel(88), 1),
            Ok(Outcome::FragNeeded { next_hop_mtu: 68 })
        );
        assert_eq!(frag_needed(&mut f, PORT_MAC, 1500, 68, 2), Ok(()));
        let bytes = f.into_bytes();
        assert_eq!(bytes[..42], FRAG_NEEDED_BYTES);
        assert_eq!(bytes[42..], BIG_BYTES);
        // etherparse reads it as the same message, checksums right.
        let (ip, rest) = Ipv4Header::from_slice(&bytes[14..]).unwrap();
        assert_eq!(ip.header_checksum, ip.calc_header_checksum());
        let (icmp, embedded) = Icmpv4Header::from_slice(rest).unwrap();
        assert_eq!(
            icmp.icmp_type,
            Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::FragmentationNeeded {
                next_hop_mtu: 68
            })
        );
        assert_eq!(icmp.checksum, icmp.icmp_type.calc_checksum(embedded));
    }

    #[test]
    fn frag_needed_cuts_at_576() {
        for (len, padding) in [(1500, 0), (549, 0), (548, 0), (300, 0), (100, 6)] {
            let ip = Ip::new(*CLIENT.ip(), *VIRT.ip());
            let mut received = client_frame(&ip, len, &vec![0xee; padding]);
            // A sender the answer must go back to.
            received[6..12].copy_from_slice(&ROUTER_MAC.0);
            let mut f = VecFrame::new(&received);
            assert_eq!(
                frag_needed(&mut f, PORT_MAC, 1500, 1480, 0x4242),
                Ok(()),
                "len {len}"
            );
            let bytes = f.into_bytes();
            let embedded = &received[14..14 + len.min(548)];
            let mut answer = Ip::new(*VIRT.ip(), *CLIENT.ip());
            answer.ttl = 64;
            answer.ident = 0x4242;
            answer.dont_frag = false;
            answer.dscp = 48;
            let icmp_type =
                Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::FragmentationNeeded {
                    next_hop_mtu: 1480,
                });
            let expected = frame(PORT_MAC, ROUTER_MAC, &answer.icmp(icmp_type, embedded), &[]);
            assert_eq!(bytes, expected, "len {len}");
            assert!(bytes.len() <= 14 + MAX_ERROR_LEN);
            assert_eq!(testing::sum(&bytes[34..]), 0xffff);
        }
    }

    #[test]
    fn frag_needed_refused() {
        let ip = Ip::new(*CLIENT.ip(), *VIRT.ip());
        let good = client_frame(&ip, 100, &[]);
        let icmp =
            |icmp_type: Icmpv4Type| frame(ROUTER_MAC, PORT_MAC, &ip.icmp(icmp_type, &[0; 64]), &[]);
        let with = |at: usize, value: &[u8]| {
            let mut bytes = good.clone();
            bytes[at..at + value.len()].copy_from_slice(value);
            bytes
        };
        let unknown = |type_u8: u8| Icmpv4Type::Unknown {
            type_u8,
            code_u8: 0,
            bytes5to8: [0; 4],
        };
        let mut short_icmp = ip.packet(IpNumber::ICMP, &[8, 0, 0, 0, 0, 0, 0]);
        short_icmp.truncate(27);
        for (name, bytes, refused) in [
            (
                "echo request",
                icmp(Icmpv4Type::EchoRequest(etherparse::IcmpEchoHeader {
                    id: 1,
                    seq: 2,
                })),
                false,
            ),
            ("timestamp (13)", icmp(unknown(13)), false),
            ("type 18", icmp(unknown(18)), false),
            (
                "port unreachable",
                icmp(Icmpv4Type::DestinationUnreachable(
                    DestUnreachableHeader::Port,
                )),
                true,
            ),
            ("source quench", icmp(unknown(4)), true),
            ("redirect", icmp(unknown(5)), true),
            ("time exceeded", icmp(unknown(11)), true),
            ("parameter problem", icmp(unknown(12)), true),
            ("type 19", icmp(unknown(19)), true),
            (
                "ICMP shorter than its header",
                frame(ROUTER_MAC, PORT_MAC, &short_icmp, &[]),
                true,
            ),
            (
                "multicast sender MAC",
                with(6, &[0x01, 0x00, 0x5e, 0, 0, 1]),
                true,
            ),
            ("broadcast destination MAC", with(0, &[0xff; 6]), true),
            ("source 0.0.0.0", with(26, &[0, 0, 0, 0]), true),
            ("source loopback", with(26, &[127, 0, 0, 1]), true),
            ("source multicast", with(26, &[224, 0, 0, 5]), true),
            ("source 240/4", with(26, &[240, 1, 2, 3]), true),
            ("source broadcast", with(26, &[255, 255, 255, 255]), true),
            ("destination multicast", with(30, &[239, 1, 1, 1]), true),
            (
                "destination broadcast",
                with(30, &[255, 255, 255, 255]),
                true,
            ),
            (
                "source 239.255.255.255 is multicast",
                with(26, &[239, 255, 255, 255]),
                true,
            ),
            (
                "source 223.255.255.255",
                with(26, &[223, 255, 255, 255]),
                false,
            ),
        ] {
            let mut f = VecFrame::new(&bytes);
            let result = frag_needed(&mut f, PORT_MAC, 1500, 1480, 1);
            if refused {
                assert_eq!(result, Err(DropReason::TooBig), "{name}");
                assert_eq!(f.data(), &bytes[..], "{name}");
            } else {
                assert_eq!(result, Ok(()), "{name}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Random inner packets: the encapsulation is the etherparse one, byte for byte.
        #[test]
        fn encapsulate_random(
            len in 40usize..1500,
            dont_frag in any::<bool>(),
            dscp in 0u8..64,
            ecn in 0u8..4,
            ttl in any::<u8>(),
            ident in any::<u16>(),
            padding in proptest::collection::vec(any::<u8>(), 0..20),
        ) {
            let mut ip = Ip::new(*CLIENT.ip(), *VIRT.ip());
            ip.dont_frag = dont_frag;
            ip.dscp = dscp;
            ip.ecn = ecn;
            ip.ttl = ttl;
            let received = client_frame(&ip, len, &padding);
            let mut f = VecFrame::new(&received);
            prop_assert_eq!(encapsulate(&mut f, &tunnel(1520), ident), Ok(Outcome::Encapsulated));
            prop_assert_eq!(f.into_bytes(), expected(&received[14..14 + len], ident));
        }

        /// Any bytes, from valid frames mutated and cut: never a panic; refused frames are
        /// unchanged.
        #[test]
        fn mutated_frames(
            icmp in any::<bool>(),
            changes in proptest::collection::vec((0usize..120, any::<u8>()), 0..4),
            cut in 0usize..130,
            mtu in prop_oneof![Just(88u16), Just(100), any::<u16>()],
            headroom in prop_oneof![Just(128usize), 0usize..40],
        ) {
            let ip = Ip::new(*CLIENT.ip(), *VIRT.ip());
            let mut bytes = if icmp {
                frame(ROUTER_MAC, PORT_MAC, &ip.icmp(Icmpv4Type::EchoRequest(etherparse::IcmpEchoHeader { id: 1, seq: 1 }), &[7; 80]), &[])
            } else {
                client_frame(&ip, 110, &[0xee; 6])
            };
            for (at, value) in changes {
                if let Some(byte) = bytes.get_mut(at) {
                    *byte = value;
                }
            }
            bytes.truncate(cut);
            let mut f = with_headroom(&bytes, headroom);
            match encapsulate(&mut f, &tunnel(mtu), 1) {
                Ok(Outcome::Encapsulated) => {
                    let out = f.data();
                    let outer = ipv4::Packet::new_checked(&out[14..]).unwrap();
                    prop_assert_eq!(outer.validate(), Ok(()));
                    prop_assert_eq!(&out[34..], &bytes[14..14 + usize::from(outer.total_len()) - 20]);
                }
                Ok(Outcome::FragNeeded { next_hop_mtu }) => {
                    prop_assert_eq!(f.data(), &bytes[..]);
                    prop_assert_eq!(next_hop_mtu, mtu - 20);
                    let mut f = with_headroom(&bytes, headroom);
                    match frag_needed(&mut f, PORT_MAC, 1500, next_hop_mtu, 1) {
                        Ok(()) => {
                            let out = f.data();
                            let answer = ipv4::Packet::new_checked(&out[14..]).unwrap();
                            prop_assert_eq!(answer.validate(), Ok(()));
                            prop_assert!(usize::from(answer.total_len()) <= MAX_ERROR_LEN);
                            prop_assert_eq!(out.len(), 14 + usize::from(answer.total_len()));
                            prop_assert!(icmp::Packet::new_checked(answer.payload()).unwrap().verify_checksum());
                        }
                        Err(_) => prop_assert_eq!(f.data(), &bytes[..]),
                    }
                }
                Err(_) => prop_assert_eq!(f.data(), &bytes[..]),
            }
            let mut f = with_headroom(&bytes, headroom);
            if frag_needed(&mut f, PORT_MAC, 1500, 576, 1).is_err() {
                prop_assert_eq!(f.data(), &bytes[..]);
            }
        }
    }
}
