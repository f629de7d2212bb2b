//! NAT66 (masquerading over IPv6, `ipvsadm -m` on an IPv6 service): the address and port
//! rewrites of [`super::nat`] for IPv6, as Linux IPVS does them (`ip_vs_nat_xmit_v6` with
//! `tcp_dnat_handler` / `udp_dnat_handler`, `handle_response` with the `*_snat_handler`s).
//!
//! - [`dnat_at`], client → real server: destination `VIP:vport` → `RIP:rport`;
//! - [`snat_at`], real server → client: source `RIP:rport` → `VIP:vport`.
//!
//! What changes: that one address and that one port, the hop limit (decremented: the packet
//! is forwarded; at 0 or 1 it is not, and the caller answers with time exceeded), and the TCP
//! or UDP checksum, updated incrementally over the 128-bit address in the pseudo-header and
//! the port (RFC 1624 eqn. 3); IPv6 has no header checksum. A UDP checksum computed as 0 is
//! sent as `0xffff`; a datagram without one (0) never gets here, as IPv6 forbids it
//! (RFC 8200 §8.1, dropped by the classifier as Linux's `udp6_csum_init` drops it).
//!
//! What does not change: the other address and port, traffic class, flow label, extension
//! headers (the upper-layer offset comes from the classifier's walk), TCP sequence numbers
//! and options, the payload, the Ethernet header (the egress stage writes it).

use std::net::SocketAddrV6;

use crate::verdict::DropReason;
use crate::wire::checksum;
use crate::wire::ipv6;

/// Where a validated IPv6 packet's TCP or UDP header is, in the frame (from its Ethernet
/// header): what the classifier found walking its extension headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Headers6 {
    /// TCP or UDP.
    pub proto: conf::Proto,
    /// Offset of the TCP or UDP header.
    pub l4: usize,
    /// End of the IPv6 packet (the frame may hold padding after it).
    pub end: usize,
}

/// Which end of the packet a rewrite changes.
#[derive(Clone, Copy)]
enum End {
    Source,
    Destination,
}

/// Offset of the IPv6 header in a frame.
const IP: usize = crate::wire::ether::HEADER_LEN;

/// DNAT and hop limit − 1 of a client → real server packet whose headers are `at`.
///
/// # Errors
/// [`DropReason::TtlExceeded`] when the hop limit is 0 or 1, [`DropReason::Truncated`] when
/// `at` does not fit the frame; the frame is unchanged.
#[inline]
pub fn dnat_at(frame: &mut [u8], at: &Headers6, real: SocketAddrV6) -> Result<(), DropReason> {
    rewrite_at(frame, at, End::Destination, real)
}

/// SNAT and hop limit − 1 of a real server → client packet: [`dnat_at`] for the source.
/// Errors as for [`dnat_at`].
#[inline]
pub fn snat_at(frame: &mut [u8], at: &Headers6, virt: SocketAddrV6) -> Result<(), DropReason> {
    rewrite_at(frame, at, End::Source, virt)
}

fn rewrite_at(
    frame: &mut [u8],
    at: &Headers6,
    end: End,
    to: SocketAddrV6,
) -> Result<(), DropReason> {
    let truncated = DropReason::Truncated;
    // The checksum's offset in the TCP or UDP header, after the four bytes of ports.
    let csum_after_ports = match at.proto {
        conf::Proto::Tcp => 12,
        conf::Proto::Udp => 2,
    };
    let (ip, rest) = frame
        .get_mut(IP..)
        .and_then(|b| b.split_first_chunk_mut::<{ ipv6::HEADER_LEN }>())
        .ok_or(truncated)?;
    let l4_from = at.l4.checked_sub(IP + ipv6::HEADER_LEN).ok_or(truncated)?;
    let l4_to = at.end.checked_sub(IP + ipv6::HEADER_LEN).ok_or(truncated)?;
    let (ports, tail) = rest
        .get_mut(l4_from..l4_to)
        .and_then(|l4| l4.split_first_chunk_mut::<4>())
        .ok_or(truncated)?;
    let csum = tail
        .get_mut(csum_after_ports..)
        .and_then(|b| b.first_chunk_mut::<2>())
        .ok_or(truncated)?;
    let (hop_limit, addrs) = ip
        .get_mut(7..)
        .and_then(|b| b.split_first_mut())
        .ok_or(truncated)?;
    let decremented = match hop_limit.checked_sub(1) {
        Some(h) if h > 0 => h,
        _ => return Err(DropReason::TtlExceeded),
    };
    let (src, dst) = addrs.split_at_mut_checked(16).ok_or(truncated)?;
    let (addr, port) = match end {
        End::Source => (src, ports.first_chunk_mut::<2>()),
        End::Destination => (dst, ports.last_chunk_mut::<2>()),
    };
    let (addr, port) = (addr.first_chunk_mut::<16>(), port);
    let (Some(addr), Some(port)) = (addr, port) else {
        return Err(truncated);
    };
    let new_addr = to.ip().octets();
    // The address is in the pseudo-header, at an even offset; the port is an aligned word.
    let sum = checksum::update_bytes(u16::from_be_bytes(*csum), 0, &addr[..], &new_addr);
    let sum = checksum::update_u16(sum, u16::from_be_bytes(*port), to.port());
    let sum = match at.proto {
        conf::Proto::Tcp => sum,
        conf::Proto::Udp => checksum::udp_nonzero(sum),
    };
    *hop_limit = decremented;
    *addr = new_addr;
    *port = to.port().to_be_bytes();
    *csum = sum.to_be_bytes();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;
    use std::net::Ipv6Addr;

    const CLIENT: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xc, 0, 0, 0, 0, 0x99);
    const VIP: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
    const RIP: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0xffff, 0x11);

    /// A TCP (or UDP) packet built by etherparse, with its headers' offsets.
    fn packet(
        src: (Ipv6Addr, u16),
        dst: (Ipv6Addr, u16),
        hop: u8,
        udp: bool,
        data: &[u8],
    ) -> (Vec<u8>, Headers6) {
        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]).ipv6(
            src.0.octets(),
            dst.0.octets(),
            hop,
        );
        let mut out = Vec::new();
        let proto = if udp {
            b.udp(src.1, dst.1).write(&mut out, data).unwrap();
            conf::Proto::Udp
        } else {
            b.tcp(src.1, dst.1, 0x0102_0304, 501)
                .ack(0x0a0b_0c0d)
                .psh()
                .write(&mut out, data)
                .unwrap();
            conf::Proto::Tcp
        };
        let end = out.len();
        (
            out,
            Headers6 {
                proto,
                l4: IP + ipv6::HEADER_LEN,
                end,
            },
        )
    }

    #[test]
    fn dnat_and_snat_give_what_a_fresh_build_gives() {
        for udp in [false, true] {
            for data in [&b""[..], b"x", b"GET / HTTP/1.1\r\n\r\n"] {
                let (mut f, at) = packet((CLIENT, 40000), (VIP, 80), 64, udp, data);
                dnat_at(&mut f, &at, SocketAddrV6::new(RIP, 8080, 0, 0)).unwrap();
                let (want, _) = packet((CLIENT, 40000), (RIP, 8080), 63, udp, data);
                assert_eq!(f, want, "dnat udp={udp} {data:?}");

                let (mut f, at) = packet((RIP, 8080), (CLIENT, 40000), 64, udp, data);
                snat_at(&mut f, &at, SocketAddrV6::new(VIP, 80, 0, 0)).unwrap();
                let (want, _) = packet((VIP, 80), (CLIENT, 40000), 63, udp, data);
                assert_eq!(f, want, "snat udp={udp} {data:?}");
            }
        }
    }

    #[test]
    fn a_spent_hop_limit_or_a_short_frame_changes_nothing() {
        let (f, at) = packet((CLIENT, 40000), (VIP, 80), 1, false, b"x");
        let mut g = f.clone();
        assert_eq!(
            dnat_at(&mut g, &at, SocketAddrV6::new(RIP, 80, 0, 0)),
            Err(DropReason::TtlExceeded)
        );
        assert_eq!(g, f);
        let short = Headers6 {
            end: f.len() + 1,
            ..at
        };
        assert_eq!(
            snat_at(&mut g, &short, SocketAddrV6::new(VIP, 80, 0, 0)),
            Err(DropReason::Truncated)
        );
        assert_eq!(g, f);
    }
}
