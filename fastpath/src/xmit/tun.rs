//! TUN (`ipvsadm -i`): the client's packet, unchanged, inside a new IPv4 header addressed to
//! the real server, as spec §4.4 describes `ip_vs_tunnel_xmit`: IP-in-IP (RFC 2003), or with
//! the kernel's (5.2+) `--tun-type gue` and `--tun-type gre` a UDP + GUE or a GRE header
//! between the two ([`Encap`]).
//!
//! ## Encapsulation ([`encapsulate`])
//!
//! The frame grows by 20 bytes at the front, plus the [`Encap`]'s header ([`Frame::prepend`]),
//! and becomes:
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
//!   (IP-in-IP), 17 (GUE) or 47 (GRE); header checksum; source = the balancer's address on
//!   the egress link (Linux binds the route to the source it selects towards the real server);
//!   destination = the real server;
//! - GUE only (`ipvs_gue_encap`): UDP, 8 bytes: source port from the connection's flow hash
//!   ([`gue_source_port`]), destination port `--tun-port`, length = 12 + inner total length,
//!   checksum 0 with `--tun-nocsum`, else the full UDP checksum (pseudo-header, UDP, GUE and
//!   the inner packet; a computed 0 is sent as `0xffff`), as `udp_set_csum` computes it for a
//!   packet that is not `CHECKSUM_PARTIAL`; then GUE, 4 bytes: version 0, C 0, hlen 0,
//!   protocol 4 (the inner IPv4), flags 0;
//! - GRE only (`ipvs_gre_encap`, `gre_build_header`, RFC 2784): flags and version, with only
//!   the C bit (0x8000) set with `--tun-csum`, protocol type 0x0800; with C, the checksum of
//!   the GRE header (its checksum field 0) and the inner packet, and 2 reserved bytes 0. No
//!   key, no sequence number;
//! - the inner IPv4 packet, byte for byte as received, up to its total length; a fragment is
//!   carried like any packet (each fragment of a datagram of a TUN connection is tunnelled on
//!   its own: `pipeline::fragment`).
//!
//! Ethernet padding after the inner packet is dropped: the frame ends at the outer packet's
//! end (see [`xmit`](super)).
//!
//! ## Too big for the egress MTU
//!
//! The outer packet (inner total length + 20 + the encapsulation's header) must fit the egress
//! link's IP MTU. When it does not:
//!
//! - inner DF set: [`encapsulate`] leaves the frame unchanged and returns
//!   [`Outcome::FragNeeded`] with the next-hop MTU to announce, the egress MTU − 20 − the
//!   encapsulation's header (12 for GUE, 4 for GRE, 8 for GRE with checksum: Linux
//!   `__ip_vs_get_out_rt` with `IP_VS_RT_MODE_TUNNEL`, `ensure_mtu_is_adequate`,
//!   `icmp_send(ICMP_FRAG_NEEDED, mtu)`). The
//!   caller then turns the frame into that ICMP error with [`frag_needed`] and sends it back
//!   to the client on the receiving port;
//! - inner DF clear: Linux sends the outer packet and lets IP fragment it; so does rvs:
//!   [`encapsulate`] encapsulates as usual and the outer packet, DF clear, is larger than
//!   the MTU, which the caller's egress stage sees and fragments
//!   ([`fragment`](super::fragment)); the real server reassembles the outer packet.
//!
//! A tunnel MTU (egress MTU − 20 − the encapsulation's header) below 68, the IPv4 minimum,
//! makes every packet [`DropReason::TooBig`], as Linux refuses such routes ("mtu less than
//! 68"), and so does an inner packet too long for the outer headers (over 65515 bytes for
//! IP-in-IP).
//!
//! ## What rvs does differently
//!
//! - `--tun-remcsum`: the kernel adds GUE's remote checksum offload option only to a packet
//!   whose transport checksum is still to be filled in (`CHECKSUM_PARTIAL`, a locally sent
//!   one); a packet forwarded from the wire already carries its checksum, so the kernel
//!   sends it as with `--tun-csum` (no option, UDP checksum computed). Every packet rvs
//!   tunnels comes from the wire: remcsum is csum, byte for byte.
//! - The GUE source port: the kernel takes the packet's skb hash (the NIC's RSS hash, or a
//!   randomly seeded hash of the addresses and ports) through `udp_flow_src_port`. rvs cannot
//!   have that hash; it hashes the connection's protocol, client and virtual address and port
//!   with a fixed function ([`flow_hash`]), then maps it as `udp_flow_src_port` does onto the
//!   kernel's default ephemeral range (`ip_local_port_range` 32768 60999, of which the map
//!   reaches 32768..=60998). Every packet of a connection, its fragments included, gets the
//!   same port, on any worker and across restarts, so the real server's RSS keeps a
//!   connection on one queue.
//!
//! ## The "fragmentation needed" answer ([`frag_needed`])
//!
//! The received frame becomes, in place, the ICMP error type 3 (destination unreachable),
//! code 4 (fragmentation needed and DF set) with the next-hop MTU (RFC 1191), from the VIP to
//! the client, quoting the packet: see [`icmp_answer`](super::icmp_answer) for every field
//! and for the packets no ICMP error is sent about (those return [`DropReason::TooBig`] and
//! the oversized packet is dropped).

use std::net::{Ipv4Addr, SocketAddrV4};

use super::{icmp_answer, Link};
use crate::frame::Frame;
use crate::verdict::DropReason;
use crate::wire::checksum;
use crate::wire::ether::{self, EtherType, EthernetAddress};

use crate::wire::ipv4::{self, Protocol};

/// Length of the outer IPv4 header that [`encapsulate`] prepends (before any [`Encap`]
/// header).
pub const OUTER_LEN: usize = ipv4::HEADER_LEN;
/// Smallest IPv4 MTU (RFC 791): a tunnel must carry at least this much.
const MIN_TUNNEL_MTU: u16 = 68;
/// ECN codepoints (RFC 3168).
const ECN_ECT0: u8 = 0b10;
const ECN_CE: u8 = 0b11;
/// UDP and GUE (version 0, no options) header lengths.
const UDP_LEN: usize = 8;
const GUE_LEN: usize = 4;
/// GRE's base header, and its checksum and reserved fields (RFC 2784).
const GRE_LEN: usize = 4;
const GRE_CSUM_LEN: usize = 4;
/// GRE's C bit (checksum present) and the protocol type of an inner IPv4 packet.
const GRE_FLAG_CSUM: u16 = 0x8000;
const GRE_PROTO_IPV4: u16 = 0x0800;
/// The kernel's default ephemeral port range (`net.ipv4.ip_local_port_range`), which
/// `udp_flow_src_port` maps a flow hash onto.
const EPHEMERAL_MIN: u32 = 32768;
const EPHEMERAL_MAX: u32 = 60999;

/// What goes between the outer IPv4 header and the inner packet (`--tun-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encap {
    /// IP-in-IP: nothing.
    Ipip,
    /// UDP to `dst_port` from `src_port`, then GUE version 0; `csum`: the UDP checksum is
    /// computed (`--tun-csum`, `--tun-remcsum`), else 0.
    Gue {
        src_port: u16,
        dst_port: u16,
        csum: bool,
    },
    /// GRE; `csum`: with the checksum (`--tun-csum`).
    Gre { csum: bool },
}

impl Encap {
    /// The encapsulation of a real configured with `tunnel`, for a connection whose
    /// [`flow_hash`] `hash` gives (only GUE calls it).
    #[inline]
    pub fn new(tunnel: conf::Tunnel, hash: impl FnOnce() -> u32) -> Encap {
        match tunnel.kind {
            conf::TunKind::Ipip => Encap::Ipip,
            conf::TunKind::Gue => Encap::Gue {
                src_port: gue_source_port(hash()),
                dst_port: tunnel.port,
                csum: tunnel.csum != conf::TunCsum::None,
            },
            // The kernel looks at the csum flag only: remcsum on GRE is no checksum.
            conf::TunKind::Gre => Encap::Gre {
                csum: tunnel.csum == conf::TunCsum::Csum,
            },
        }
    }

    /// Length of the header between the outer IPv4 header and the inner packet.
    #[inline]
    pub const fn header_len(self) -> usize {
        match self {
            Encap::Ipip => 0,
            Encap::Gue { .. } => UDP_LEN + GUE_LEN,
            Encap::Gre { csum: false } => GRE_LEN,
            Encap::Gre { csum: true } => GRE_LEN + GRE_CSUM_LEN,
        }
    }

    const fn protocol(self) -> Protocol {
        match self {
            Encap::Ipip => Protocol::IpIp,
            Encap::Gue { .. } => Protocol::Udp,
            Encap::Gre { .. } => Protocol::Gre,
        }
    }
}

/// The hash of a connection that picks its GUE source port: its protocol, client address and
/// port, virtual address and port through a fixed 64-bit mix (MurmurHash3's finalizer), the
/// same for every packet of the connection on any worker (see the module documentation for
/// why it is not the kernel's skb hash).
#[inline]
pub fn flow_hash(proto: conf::Proto, client: SocketAddrV4, virt: SocketAddrV4) -> u32 {
    let addrs = (u64::from(u32::from(*client.ip())) << 32) | u64::from(u32::from(*virt.ip()));
    let ports = (u64::from(client.port()) << 32)
        | (u64::from(virt.port()) << 16)
        | u64::from(proto.number());
    (fmix64(addrs ^ fmix64(ports)) >> 32) as u32
}

/// MurmurHash3's 64-bit finalizer: every input bit reaches every output bit.
#[inline]
const fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

/// The GUE source port for a flow hash, as the kernel's `udp_flow_src_port` maps its hash
/// (the low half folded into the high one, then scaled onto the default ephemeral range).
#[inline]
pub const fn gue_source_port(hash: u32) -> u16 {
    let hash = hash ^ (hash << 16);
    // A 32-bit hash times the 15-bit range fits 64 bits; the scaled value is below the range.
    let range = (EPHEMERAL_MAX - EPHEMERAL_MIN) as u64;
    let scaled = ((hash as u64).wrapping_mul(range) >> 32) as u32;
    scaled.wrapping_add(EPHEMERAL_MIN) as u16
}

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
    /// What follows the outer IPv4 header.
    pub encap: Encap,
}

/// What [`encapsulate`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The frame holds the encapsulated packet: send it on the egress port.
    Encapsulated,
    /// Too big with DF set; the frame is unchanged. Answer with [`frag_needed`] announcing
    /// `next_hop_mtu`, on the receiving port.
    FragNeeded {
        /// The MTU the client must use: the egress MTU − 20 − the encapsulation's header.
        next_hop_mtu: u16,
    },
}

/// Encapsulate the IPv4 packet in `frame` (the whole Ethernet frame as received) for
/// `tunnel`, with outer identification `ident`; see the module documentation for every field
/// and for what happens when it is too big.
///
/// # Errors
/// The frame is unchanged on every error:
/// - the checks of [`xmit`](super) ([`DropReason::Truncated`], [`DropReason::VlanTagged`],
///   [`DropReason::UnsupportedEthertype`], [`DropReason::BadIpv4Header`]) but the one for
///   fragments: a fragment is tunnelled as it is (the pipeline forwards each fragment of a
///   datagram with its connection's method);
/// - [`DropReason::TooBig`]: a tunnel MTU below 68, or an inner packet too long for the
///   outer headers;
/// - [`DropReason::NoHeadroom`]: too little headroom for the outer headers.
pub fn encapsulate<F: Frame + ?Sized>(
    frame: &mut F,
    tunnel: &Tunnel,
    ident: u16,
) -> Result<Outcome, DropReason> {
    // One instance per tunnel type, whose header length and protocol are then constants:
    // IP-in-IP costs what it cost before GUE and GRE.
    match tunnel.encap {
        Encap::Ipip => encapsulate_as(frame, tunnel, ident, Encap::Ipip),
        gue @ Encap::Gue { .. } => encapsulate_as(frame, tunnel, ident, gue),
        gre @ Encap::Gre { .. } => encapsulate_as(frame, tunnel, ident, gre),
    }
}

/// [`encapsulate`] with `encap` (`tunnel.encap`).
#[inline(always)]
fn encapsulate_as<F: Frame + ?Sized>(
    frame: &mut F,
    tunnel: &Tunnel,
    ident: u16,
    encap: Encap,
) -> Result<Outcome, DropReason> {
    // A fragment is carried like any packet: the tunnel reads nothing past its header.
    let inner = super::ipv4_packet_or_fragment(frame.data())?;
    let inner_len = inner.total_len();
    let ecn = match inner.ecn() {
        ECN_CE => ECN_ECT0,
        ecn => ecn,
    };
    let encap_len = encap.header_len();
    // The outer headers: at most 20 + 12 bytes.
    let headers = OUTER_LEN.wrapping_add(encap_len);
    let outer = ipv4::Repr {
        src_addr: tunnel.src_addr,
        dst_addr: tunnel.dst_addr,
        protocol: encap.protocol(),
        payload_len: encap_len.wrapping_add(usize::from(inner_len)),
        ttl: inner.ttl(),
        dscp: inner.dscp(),
        ecn,
        ident,
        dont_frag: inner.dont_frag(),
    };
    let next_hop_mtu = tunnel
        .mtu
        .checked_sub(headers as u16)
        .filter(|&mtu| mtu >= MIN_TUNNEL_MTU)
        .ok_or(DropReason::TooBig)?;
    if inner_len > next_hop_mtu && outer.dont_frag {
        return Ok(Outcome::FragNeeded { next_hop_mtu });
    }
    if usize::from(inner_len) > usize::from(u16::MAX).saturating_sub(headers) {
        return Err(DropReason::TooBig);
    }
    let padding = frame
        .data()
        .len()
        .checked_sub(ether::HEADER_LEN)
        .and_then(|len| len.checked_sub(usize::from(inner_len)))
        .ok_or(DropReason::Truncated)?;
    super::splice::resize(frame, headers, padding)?;

    let bytes = frame.data_mut();
    let mut eth = ether::Packet::new_unchecked(&mut *bytes);
    eth.set_dst_addr(tunnel.link.next_hop_mac);
    eth.set_src_addr(tunnel.link.port_mac);
    eth.set_ethertype(EtherType::Ipv4);
    // Cannot fail: the frame holds the headers and the total length fits 16 bits.
    outer.emit(&mut super::ipv4_mut(bytes))?;
    let at = ether::HEADER_LEN.wrapping_add(OUTER_LEN);
    match encap {
        Encap::Ipip => {}
        Encap::Gue {
            src_port,
            dst_port,
            csum,
        } => {
            // Fits 16 bits: the inner length was checked against 65535 − 32 above.
            let udp_len = outer.payload_len as u16;
            let [s0, s1] = src_port.to_be_bytes();
            let [d0, d1] = dst_port.to_be_bytes();
            let [l0, l1] = udp_len.to_be_bytes();
            // UDP, checksum 0 for now; GUE version 0, C 0, hlen 0, the inner protocol, no
            // flags.
            let header = [
                s0,
                s1,
                d0,
                d1,
                l0,
                l1,
                0,
                0,
                0,
                u8::from(Protocol::IpIp),
                0,
                0,
            ];
            let datagram = bytes
                .get_mut(at..)
                .and_then(|after| after.get_mut(..usize::from(udp_len)))
                .ok_or(DropReason::Truncated)?;
            let (head, _) = datagram
                .split_first_chunk_mut::<{ UDP_LEN + GUE_LEN }>()
                .ok_or(DropReason::Truncated)?;
            *head = header;
            if csum {
                let pseudo = checksum::pseudo_header(
                    tunnel.src_addr,
                    tunnel.dst_addr,
                    u8::from(Protocol::Udp),
                    usize::from(udp_len),
                );
                let sum = checksum::combine(&[pseudo, checksum::data(datagram)]);
                let value = checksum::udp_nonzero(checksum::finish(sum)).to_be_bytes();
                if let Some(field) = datagram.get_mut(6..8) {
                    field.copy_from_slice(&value);
                }
            }
        }
        Encap::Gre { csum } => {
            let [p0, p1] = GRE_PROTO_IPV4.to_be_bytes();
            let packet = bytes
                .get_mut(at..)
                .and_then(|after| after.get_mut(..outer.payload_len))
                .ok_or(DropReason::Truncated)?;
            if csum {
                let [f0, f1] = GRE_FLAG_CSUM.to_be_bytes();
                let (head, _) = packet
                    .split_first_chunk_mut::<{ GRE_LEN + GRE_CSUM_LEN }>()
                    .ok_or(DropReason::Truncated)?;
                *head = [f0, f1, p0, p1, 0, 0, 0, 0];
                let value = checksum::finish(checksum::data(packet)).to_be_bytes();
                if let Some(field) = packet.get_mut(4..6) {
                    field.copy_from_slice(&value);
                }
            } else {
                let (head, _) = packet
                    .split_first_chunk_mut::<GRE_LEN>()
                    .ok_or(DropReason::Truncated)?;
                *head = [0, 0, p0, p1];
            }
        }
    }
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
            encap: Encap::Ipip,
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

    fn tunnel_with(mtu: u16, encap: Encap) -> Tunnel {
        Tunnel {
            encap,
            ..tunnel(mtu)
        }
    }

    const GUE: Encap = Encap::Gue {
        src_port: 40000,
        dst_port: 6080,
        csum: false,
    };
    const GUE_CSUM: Encap = Encap::Gue {
        src_port: 40000,
        dst_port: 6080,
        csum: true,
    };

    /// The headers `encapsulate` puts in front of SYN_BYTES' packet (ident 1) for each
    /// encapsulation: Ethernet, outer IPv4 (protocol 17 or 47, total length and header
    /// checksum), then UDP 40000 -> 6080 + GUE (version 0, protocol 4), or GRE (C bit and
    /// checksum with csum, protocol type 0x0800). Computed independently (Python's struct and
    /// an RFC 1071 sum over pseudo-header, headers and inner packet).
    static GUE_BYTES: [u8; 46] = [
        0x52, 0x54, 0x00, 0x00, 0x00, 0x03, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, //
        0x08, 0x00, 0x45, 0xba, 0x00, 0x4c, 0x00, 0x01, 0x40, 0x00, 0x39, 0x11, //
        0x2c, 0xe1, 0x0a, 0x01, 0x00, 0x01, 0x0a, 0x01, 0x00, 0x03, 0x9c, 0x40, //
        0x17, 0xc0, 0x00, 0x38, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00,
    ];
    static GUE_CSUM_BYTES: [u8; 46] = [
        0x52, 0x54, 0x00, 0x00, 0x00, 0x03, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, //
        0x08, 0x00, 0x45, 0xba, 0x00, 0x4c, 0x00, 0x01, 0x40, 0x00, 0x39, 0x11, //
        0x2c, 0xe1, 0x0a, 0x01, 0x00, 0x01, 0x0a, 0x01, 0x00, 0x03, 0x9c, 0x40, //
        0x17, 0xc0, 0x00, 0x38, 0x9d, 0xd8, 0x00, 0x04, 0x00, 0x00,
    ];
    static GRE_BYTES: [u8; 38] = [
        0x52, 0x54, 0x00, 0x00, 0x00, 0x03, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, //
        0x08, 0x00, 0x45, 0xba, 0x00, 0x44, 0x00, 0x01, 0x40, 0x00, 0x39, 0x2f, //
        0x2c, 0xcb, 0x0a, 0x01, 0x00, 0x01, 0x0a, 0x01, 0x00, 0x03, 0x00, 0x00, //
        0x08, 0x00,
    ];
    static GRE_CSUM_BYTES: [u8; 42] = [
        0x52, 0x54, 0x00, 0x00, 0x00, 0x03, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, //
        0x08, 0x00, 0x45, 0xba, 0x00, 0x48, 0x00, 0x01, 0x40, 0x00, 0x39, 0x2f, //
        0x2c, 0xc7, 0x0a, 0x01, 0x00, 0x01, 0x0a, 0x01, 0x00, 0x03, 0x80, 0x00, //
        0x08, 0x00, 0xde, 0x63, 0x00, 0x00,
    ];

    #[test]
    fn gue_and_gre_bytes() {
        let cases: [(Encap, &[u8]); 4] = [
            (GUE, &GUE_BYTES),
            (GUE_CSUM, &GUE_CSUM_BYTES),
            (Encap::Gre { csum: false }, &GRE_BYTES),
            (Encap::Gre { csum: true }, &GRE_CSUM_BYTES),
        ];
        for (encap, headers) in cases {
            let mut f = VecFrame::new(SYN_BYTES);
            assert_eq!(
                encapsulate(&mut f, &tunnel_with(1500, encap), 1),
                Ok(Outcome::Encapsulated),
                "{encap:?}"
            );
            let bytes = f.into_bytes();
            assert_eq!(bytes[..headers.len()], *headers, "{encap:?}");
            // The inner packet byte for byte.
            assert_eq!(bytes[headers.len()..], SYN_BYTES[14..], "{encap:?}");
        }
    }

    /// `--tun-remcsum` and `--tun-csum` give the same packet (no remote checksum option for a
    /// packet from the wire); remcsum on GRE is no checksum, as the kernel reads only the
    /// csum flag there.
    #[test]
    fn encap_from_the_real_configuration() {
        let t = |kind, port, csum| conf::Tunnel { kind, port, csum };
        use conf::{TunCsum::*, TunKind::*};
        let hash = || 0x8000_0000;
        assert_eq!(Encap::new(t(Ipip, 0, None), hash), Encap::Ipip);
        for (csum, on) in [(None, false), (Csum, true), (Remcsum, true)] {
            assert_eq!(
                Encap::new(t(Gue, 6080, csum), hash),
                Encap::Gue {
                    src_port: 46883,
                    dst_port: 6080,
                    csum: on
                }
            );
        }
        assert_eq!(Encap::new(t(Gre, 0, Csum), hash), Encap::Gre { csum: true });
        assert_eq!(
            Encap::new(t(Gre, 0, Remcsum), hash),
            Encap::Gre { csum: false }
        );
        // ipip never hashes.
        assert_eq!(Encap::new(t(Ipip, 0, None), || unreachable!()), Encap::Ipip);
    }

    #[test]
    fn gue_source_port_is_udp_flow_src_port_over_the_default_range() {
        // (hash ^ hash << 16) * (60999 - 32768) >> 32, + 32768: values from Python.
        for (hash, port) in [
            (0, 32768),
            (0xffff_ffff, 32768),
            (0x8000_0000, 46883),
            (0x1234_5678, 40299),
            (0xdead_beef, 43383),
        ] {
            assert_eq!(gue_source_port(hash), port, "{hash:#x}");
        }
        let client: SocketAddrV4 = "198.51.100.7:40312".parse().unwrap();
        let virt: SocketAddrV4 = "203.0.113.10:80".parse().unwrap();
        let h = flow_hash(conf::Proto::Tcp, client, virt);
        assert_eq!(h, flow_hash(conf::Proto::Tcp, client, virt));
        assert_ne!(h, flow_hash(conf::Proto::Udp, client, virt));
        let other: SocketAddrV4 = "198.51.100.7:40313".parse().unwrap();
        assert_ne!(h, flow_hash(conf::Proto::Tcp, other, virt));
        // Client ports spread over the range.
        let ports: std::collections::HashSet<u16> = (0..1000u16)
            .map(|p| {
                let c = SocketAddrV4::new(*client.ip(), 30000 + p);
                gue_source_port(flow_hash(conf::Proto::Tcp, c, virt))
            })
            .collect();
        assert!(ports.len() > 950, "{}", ports.len());
        assert!(ports.iter().all(|&p| (32768..=60998).contains(&p)));
    }

    /// The MTU rules of ipip with the encapsulation's header taken off the tunnel MTU.
    #[test]
    fn gue_and_gre_mtu() {
        for (encap, overhead) in [
            (Encap::Ipip, 20u16),
            (GUE, 32),
            (GUE_CSUM, 32),
            (Encap::Gre { csum: false }, 24),
            (Encap::Gre { csum: true }, 28),
        ] {
            let ip = Ip::new(*CLIENT.ip(), *VIRT.ip());
            let mtu = 1500 - overhead;
            // Fits exactly, then one byte too many with DF: frag needed announcing the tunnel
            // MTU, the frame unchanged.
            let fits = client_frame(&ip, usize::from(mtu), &[]);
            let mut f = VecFrame::new(&fits);
            assert_eq!(
                encapsulate(&mut f, &tunnel_with(1500, encap), 7),
                Ok(Outcome::Encapsulated),
                "{encap:?}"
            );
            assert_eq!(f.into_bytes().len(), 14 + 1500, "{encap:?}");
            let big = client_frame(&ip, usize::from(mtu) + 1, &[]);
            let mut f = VecFrame::new(&big);
            assert_eq!(
                encapsulate(&mut f, &tunnel_with(1500, encap), 7),
                Ok(Outcome::FragNeeded { next_hop_mtu: mtu }),
                "{encap:?}"
            );
            assert_eq!(f.into_bytes(), big);
            // DF clear: encapsulated, left to the egress stage to fragment.
            let mut ip = ip;
            ip.dont_frag = false;
            let mut f = VecFrame::new(client_frame(&ip, usize::from(mtu) + 1, &[]));
            assert_eq!(
                encapsulate(&mut f, &tunnel_with(1500, encap), 7),
                Ok(Outcome::Encapsulated)
            );
            assert_eq!(f.into_bytes().len(), 14 + 1501);
            // A tunnel MTU of 68 works, 67 is refused ("mtu less than 68").
            let small = client_frame(&Ip::new(*CLIENT.ip(), *VIRT.ip()), 60, &[]);
            let mut f = VecFrame::new(&small);
            assert!(encapsulate(&mut f, &tunnel_with(68 + overhead, encap), 7).is_ok());
            let mut f = VecFrame::new(&small);
            assert_eq!(
                encapsulate(&mut f, &tunnel_with(67 + overhead, encap), 7),
                Err(DropReason::TooBig)
            );
        }
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
