//! Forwarding: the per-mode rewrites that turn a received frame into the frame sent on, as the
//! Linux IPVS transmitters do (`ip_vs_nat_xmit` and `handle_response`, `ip_vs_dr_xmit`,
//! `ip_vs_tunnel_xmit`, `ip_vs_nat_icmp`), one file per forwarding method:
//!
//! - [`nat`]: masquerading: DNAT client → real server, SNAT on the replies, and the ICMP errors
//!   that belong to a NAT connection (outer and embedded headers);
//! - DR (direct routing): only the Ethernet addresses change ([`rewrite_ether`]); the IPv4
//!   packet keeps everything but its TTL, as `ip_vs_dr_xmit`;
//! - [`tun`]: IP-in-IP encapsulation, and the ICMP "fragmentation needed" answer when the
//!   encapsulated packet would exceed the egress MTU with DF set;
//! - [`fragment`]: IPv4 fragmentation of a packet larger than the egress MTU without DF
//!   (or a forwarded ICMP error), fragment by fragment into buffers the worker provides;
//! - [`icmp_answer`]: the ICMP errors rvs answers with instead of forwarding (time exceeded,
//!   fragmentation needed);
//! - here: [`rewrite_ether`], the egress Ethernet header every method writes.
//!
//! The connection lookup, the scheduling, the route and neighbour lookups are the caller's: a
//! rewrite takes the frame and the values to write, and nothing else.
//!
//! ## Rules every function here follows
//!
//! - **Pure, in place, no allocation, no panic.** Functions that keep the frame's length take
//!   `&mut [u8]` (the whole Ethernet frame); those that grow or shrink it take a
//!   [`Frame`](crate::frame::Frame). Every field is read and written through the
//!   [`wire`](crate::wire) views, every length read from the packet is checked first.
//! - **All or nothing.** Each returns `Result<_, DropReason>`; every check comes before the
//!   first write, so on `Err` the frame is exactly as it was and the caller counts the reason.
//! - **What is checked, and what is the caller's.** Each function checks the structure it relies
//!   on: the Ethernet header and EtherType IPv4 ([`DropReason::Truncated`],
//!   [`DropReason::VlanTagged`], [`DropReason::UnsupportedEthertype`]); IPv4 version, IHL and
//!   total length within the frame ([`DropReason::Truncated`], [`DropReason::BadIpv4Header`]);
//!   not a fragment ([`DropReason::Fragment`]: ports are only in the first one; TUN carries
//!   any fragment, FULLNAT rewrites a first one, [`readdress_fragment`] is for the later
//!   ones, see `pipeline::fragment`); for NAT, the
//!   TCP or UDP header within the IPv4 payload ([`DropReason::BadL4Header`]). The IPv4 header
//!   checksum is *not* verified: the caller passed every received packet through
//!   [`ipv4::Packet::validate`](crate::wire::ipv4::Packet::validate) before looking up its
//!   connection. Incremental checksum updates keep a wrong checksum wrong, so a corrupted
//!   packet is never made to look valid. ICMP errors rewritten by NAT get a fully recomputed
//!   ICMP checksum, so their checksum *is* verified first ([`DropReason::BadIcmpChecksum`]),
//!   as `ip_vs_in_icmp` and `handle_response_icmp` do.
//!
//!   The exception is the fast path: the pipeline has already checked all of this once, on
//!   receipt, so the rewrites of every established TCP/UDP packet ([`nat::dnat_at`],
//!   [`nat::snat_at`], [`decrement_ttl_validated`]) take where the headers are ([`Headers`])
//!   instead of checking them again. They still never panic and are still all or nothing.
//! - **Ethernet padding.** A received frame may be longer than its IPv4 packet (padding to 60
//!   bytes, or trailing garbage). The pipeline trims every IPv4 frame to 14 + the total length
//!   before any rewrite, as the kernel does on receipt (`pskb_trim_rcsum` in `ip_rcv`), so
//!   what leaves ends with its packet and the NIC pads short frames again; the egress MTU
//!   check compares the frame's length. The functions here do not rely on that: every one
//!   takes the packet's end from the IPv4 total length, never from the frame length, so
//!   padding is never checksummed nor read as data; in-place rewrites (`&mut [u8]`) leave
//!   whatever follows the packet as it was, and the rewrites that resize the frame
//!   (encapsulation, TOA, PROXY, the ICMP answers) drop it.
//! - **TTL**: the per-method rewrites leave it alone; the caller decrements it first with
//!   [`decrement_ttl`] (or [`decrement_ttl_validated`]), for every method, except that
//!   [`nat::dnat_at`] and [`nat::snat_at`] decrement it themselves, folding its checksum change
//!   into the address's; as Linux ≥ 4.3 does in `__ip_vs_get_out_rt`
//!   (commit 8d8e20e2d7bb, "ipvs: Decrement ttl"; spec §4 describes the older kernels that
//!   did not). Linux checks the TTL before the MTU, so a "fragmentation needed" about a
//!   packet to a virtual service quotes it with its TTL already decremented. TTL ≤ 1 is
//!   answered, as by Linux, with ICMP time exceeded ([`icmp_answer`]); a packet no ICMP error
//!   may be sent about is dropped and counted (`ttl_exceeded`).
//! - **MTU**: the rewrites do not check the egress MTU, but for TUN (the tunnel's, inner DF)
//!   and for what TOA and PROXY add; the pipeline answers DF packets too big for the egress
//!   port before rewriting them and has the rest fragmented ([`fragment`]).
//! - **Checksums** in received packets are full checksums (RX never sees a TX-offload
//!   pseudo-header seed); the rewrites leave full checksums, nothing for TX offload to finish.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::arithmetic_side_effects
    )
)]

use crate::verdict::DropReason;
use crate::wire::ether::{self, EtherType, EthernetAddress};
use crate::wire::{checksum, ipv4};
#[cfg(test)]
use crate::wire::{tcp, udp};
use std::net::Ipv4Addr;

pub mod fragment;
pub mod fullnat;
pub mod icmp6_answer;
pub mod icmp_answer;
pub mod isn;
pub mod nat;
pub mod nat6;
pub mod proxy;
pub(crate) mod splice;
pub mod toa;
pub mod tun;
pub mod tun6;

#[cfg(test)]
pub(crate) mod testing;

/// The Ethernet addresses of the egress link: what [`rewrite_ether`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// The egress port's MAC: the Ethernet source.
    pub port_mac: EthernetAddress,
    /// The next hop's MAC (the real server's for DR, the gateway's or the destination's on
    /// link for NAT and TUN): the Ethernet destination.
    pub next_hop_mac: EthernetAddress,
}

/// Where the headers of a received TCP or UDP packet are in its frame, as the pipeline found
/// them when it validated it: an Ethernet II header with EtherType IPv4, an IPv4 header that
/// passed [`ipv4::Packet::validate`] (so not a fragment, or else the first fragment of a
/// datagram, holding the whole TCP or UDP header: `pipeline::fragment`), then the TCP or UDP
/// header, which passed its `check_len` (for a first fragment: is all there). The `_at` rewrites ([`nat::dnat_at`], [`nat::snat_at`]) take it
/// instead of checking the frame again: the frame must not have changed since. (A `Headers` that does not match its frame cannot make them panic, since
/// every access goes through the [`wire`](crate::wire) views; it can only write wrong bytes.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Headers {
    /// [`ipv4::Protocol::Tcp`] or [`ipv4::Protocol::Udp`].
    pub protocol: ipv4::Protocol,
    /// Offset of the TCP or UDP header from the start of the frame.
    pub l4: usize,
    /// Offset of the end of the IPv4 packet (its total length after the Ethernet header);
    /// what follows is Ethernet padding.
    pub end: usize,
}

/// Rewrite the Ethernet header of `frame` for the egress link: source = the port's MAC,
/// destination = the next hop's. The EtherType and everything after the header are unchanged.
///
/// # Errors
/// [`DropReason::Truncated`] if the frame is shorter than an Ethernet header; it is unchanged.
pub fn rewrite_ether(frame: &mut [u8], link: Link) -> Result<(), DropReason> {
    let mut eth = ether::Packet::new_checked(frame)?;
    eth.set_dst_addr(link.next_hop_mac);
    eth.set_src_addr(link.port_mac);
    Ok(())
}

/// Decrement the TTL of the IPv4 packet in `frame` by one, updating the header checksum
/// incrementally, as the kernel does for every packet IPVS forwards to another host
/// (`ip_vs_xmit.c` `decrement_ttl`, since Linux 4.3; older kernels left the TTL alone).
///
/// # Errors
/// [`DropReason::TtlExceeded`] when the TTL is 0 or 1 (the packet must not be forwarded);
/// the structural errors of the other rewrites. The frame is unchanged on error.
pub fn decrement_ttl(frame: &mut [u8]) -> Result<(), DropReason> {
    ipv4_packet(frame)?;
    let mut eth = ether::Packet::new_unchecked(frame);
    let mut ip = ipv4::Packet::new_unchecked(eth.payload_mut());
    let (next, delta) = ttl_step(&ip)?;
    ip.set_ttl(next);
    ip.set_checksum(delta.apply(ip.checksum()));
    Ok(())
}

/// [`decrement_ttl`] on a frame whose IPv4 header the pipeline validated: nothing is checked
/// again.
///
/// # Errors
/// [`DropReason::TtlExceeded`] when the TTL is 0 or 1 ([`DropReason::Truncated`] for a frame
/// too short for an IPv4 header, which a validated one is not); the frame is unchanged.
#[inline]
pub fn decrement_ttl_validated(frame: &mut [u8]) -> Result<(), DropReason> {
    // TTL and checksum are in the fixed 20 bytes, whatever the options: a view of known size.
    let mut ip = frame
        .get_mut(ether::HEADER_LEN..)
        .and_then(<[u8]>::first_chunk_mut::<{ ipv4::HEADER_LEN }>)
        .map(ipv4::Packet::new_unchecked)
        .ok_or(DropReason::Truncated)?;
    let (next, delta) = ttl_step(&ip)?;
    ip.set_ttl(next);
    ip.set_checksum(delta.apply(ip.checksum()));
    Ok(())
}

/// TTL − 1 and the addresses `src` and `dst` for a later fragment (offset > 0) of a datagram
/// whose first fragment got its connection's rewrite, in a frame whose IPv4 header the
/// pipeline validated: one update of the header checksum for all of it. A later fragment
/// carries no TCP or UDP header: the ports and the L4 checksum are in the first fragment
/// (the checksum covers the whole datagram, and only addresses and ports change, so the first
/// fragment's incremental update holds for the reassembled datagram).
///
/// # Errors
/// [`DropReason::TtlExceeded`] when the TTL is 0 or 1 ([`DropReason::Truncated`] for a frame
/// too short for an IPv4 header, which a validated one is not); the frame is unchanged.
pub fn readdress_fragment(
    frame: &mut [u8],
    src: Ipv4Addr,
    dst: Ipv4Addr,
) -> Result<(), DropReason> {
    let mut ip = frame
        .get_mut(ether::HEADER_LEN..)
        .and_then(<[u8]>::first_chunk_mut::<{ ipv4::HEADER_LEN }>)
        .map(ipv4::Packet::new_unchecked)
        .ok_or(DropReason::Truncated)?;
    let (next, delta) = ttl_step(&ip)?;
    let delta = delta
        .u32(u32::from(ip.src_addr()), u32::from(src))
        .u32(u32::from(ip.dst_addr()), u32::from(dst));
    ip.set_ttl(next);
    ip.set_src_addr(src);
    ip.set_dst_addr(dst);
    ip.set_checksum(delta.apply(ip.checksum()));
    Ok(())
}

/// The TTL an IPv4 packet is forwarded with, and the change of the header checksum for it.
///
/// # Errors
/// [`DropReason::TtlExceeded`] when the TTL is 0 or 1.
fn ttl_step<T: AsRef<[u8]>>(ip: &ipv4::Packet<T>) -> Result<(u8, checksum::Delta), DropReason> {
    let ttl = ip.ttl();
    let next = match ttl.checked_sub(1) {
        Some(next) if next > 0 => next,
        _ => return Err(DropReason::TtlExceeded),
    };
    // TTL is the high byte of the 16-bit word it shares with the protocol (RFC 791); the
    // protocol, the same before and after, cancels out of the update (~m + m').
    let old = u16::from(ttl) << 8;
    let new = u16::from(next) << 8;
    Ok((next, checksum::Delta::default().u16(old, new)))
}

/// Check the structure every rewrite relies on (see the module documentation) and return a
/// view of the IPv4 packet of `frame`. The view's buffer runs to the end of the frame, padding
/// included; its payload ends at the total length.
pub(crate) fn ipv4_packet(frame: &[u8]) -> Result<ipv4::Packet<&[u8]>, DropReason> {
    let ip = ipv4_packet_or_fragment(frame)?;
    if ip.is_fragment() {
        return Err(DropReason::Fragment);
    }
    Ok(ip)
}

/// [`ipv4_packet`] without its last check: the packet may be a fragment. For the rewrites
/// that read nothing past the IPv4 header (TUN's encapsulation) and for those that check
/// themselves which fragment they rewrite (FULLNAT's, of a first fragment).
pub(crate) fn ipv4_packet_or_fragment(frame: &[u8]) -> Result<ipv4::Packet<&[u8]>, DropReason> {
    let eth = ether::Packet::new_checked(frame)?;
    match eth.ethertype() {
        EtherType::Ipv4 => {}
        ethertype if ethertype.is_vlan() => return Err(DropReason::VlanTagged),
        _ => return Err(DropReason::UnsupportedEthertype),
    }
    let bytes = frame.get(ether::HEADER_LEN..).unwrap_or_default();
    if bytes.len() < ipv4::HEADER_LEN {
        return Err(DropReason::Truncated);
    }
    let ip = ipv4::Packet::new_unchecked(bytes);
    if ip.version() != 4 {
        return Err(DropReason::BadIpv4Header);
    }
    ip.check_len()?;
    Ok(ip)
}

/// Check the structure the TCP/UDP rewrites rely on: that of [`ipv4_packet`], then a TCP or
/// UDP header within the IPv4 payload; return where the headers are.
///
/// # Errors
/// Those of [`ipv4_packet`], [`DropReason::UnsupportedProtocol`] for anything but TCP and UDP,
/// [`DropReason::BadL4Header`] for a TCP or UDP header that does not fit.
#[cfg(test)]
pub(crate) fn headers(frame: &[u8]) -> Result<Headers, DropReason> {
    let ip = ipv4_packet(frame)?;
    let protocol = ip.protocol();
    match protocol {
        ipv4::Protocol::Tcp => tcp::Packet::new_checked(ip.payload()).map(|_| ())?,
        ipv4::Protocol::Udp => udp::Packet::new_checked(ip.payload()).map(|_| ())?,
        _ => return Err(DropReason::UnsupportedProtocol),
    }
    // A checked header and total length are at most 60 and 65535 bytes: no overflow.
    Ok(Headers {
        protocol,
        l4: ether::HEADER_LEN.saturating_add(ip.header_len()),
        end: ether::HEADER_LEN.saturating_add(usize::from(ip.total_len())),
    })
}

/// A writable view of the IPv4 packet of `frame`, for after [`ipv4_packet`] has checked it.
fn ipv4_mut(frame: &mut [u8]) -> ipv4::Packet<&mut [u8]> {
    ipv4::Packet::new_unchecked(frame.get_mut(ether::HEADER_LEN..).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PORT_MAC: EthernetAddress = EthernetAddress([0x02, 0x00, 0x00, 0x00, 0x00, 0x01]);
    const NEXT_HOP_MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0x00, 0x00, 0x00, 0x0a]);

    /// A 20-byte IPv4 header (UDP, no payload) behind an Ethernet header.
    fn ipv4_frame(ttl: u8) -> Vec<u8> {
        let mut f = vec![0u8; 14];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let mut header = etherparse::Ipv4Header::new(
            0,
            ttl,
            etherparse::IpNumber::UDP,
            [10, 0, 0, 2],
            [10, 0, 0, 100],
        )
        .expect("valid header");
        header.header_checksum = header.calc_header_checksum();
        f.extend_from_slice(&header.to_bytes());
        f
    }

    #[test]
    fn decrement_ttl_updates_the_checksum_and_stops_at_one() {
        for ttl in [2u8, 64, 128, 255] {
            let mut frame = ipv4_frame(ttl);
            assert_eq!(decrement_ttl(&mut frame), Ok(()));
            assert_eq!(
                frame,
                ipv4_frame(ttl - 1),
                "TTL {ttl}: bytes equal a header built with TTL-1"
            );
        }
        for ttl in [0u8, 1] {
            let mut frame = ipv4_frame(ttl);
            assert_eq!(decrement_ttl(&mut frame), Err(DropReason::TtlExceeded));
            assert_eq!(frame, ipv4_frame(ttl), "unchanged on error");
        }
    }

    #[test]
    fn rewrites_only_the_addresses() {
        let mut frame = [0xeeu8; 20];
        frame[12..14].copy_from_slice(&[0x08, 0x00]);
        let link = Link {
            port_mac: PORT_MAC,
            next_hop_mac: NEXT_HOP_MAC,
        };
        assert_eq!(rewrite_ether(&mut frame, link), Ok(()));
        assert_eq!(
            frame,
            [
                0x52, 0x54, 0x00, 0x00, 0x00, 0x0a, // destination: next hop
                0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // source: port
                0x08, 0x00, // EtherType unchanged
                0xee, 0xee, 0xee, 0xee, 0xee, 0xee, // payload unchanged
            ]
        );
        for len in 0..ether::HEADER_LEN {
            let mut short = vec![0xee; len];
            assert_eq!(rewrite_ether(&mut short, link), Err(DropReason::Truncated));
            assert_eq!(short, vec![0xee; len]);
        }
    }

    #[test]
    fn ipv4_checks() {
        // Ethernet + a 20-byte IPv4 header, total length 20, no payload.
        let mut frame = vec![0u8; 34];
        frame[12..14].copy_from_slice(&[0x08, 0x00]);
        frame[14] = 0x45;
        frame[17] = 20;
        assert_eq!(ipv4_packet(&frame).map(|ip| ip.total_len()), Ok(20));
        assert_eq!(ipv4_packet(&frame[..33]).err(), Some(DropReason::Truncated));
        assert_eq!(ipv4_packet(&frame[..13]).err(), Some(DropReason::Truncated));
        let mut bad = frame.clone();
        bad[14] = 0x65;
        assert_eq!(ipv4_packet(&bad).err(), Some(DropReason::BadIpv4Header));
        let mut bad = frame.clone();
        bad[14] = 0x44;
        assert_eq!(ipv4_packet(&bad).err(), Some(DropReason::BadIpv4Header));
        let mut bad = frame.clone();
        bad[17] = 21;
        assert_eq!(ipv4_packet(&bad).err(), Some(DropReason::Truncated));
        let mut bad = frame.clone();
        bad[20] = 0x20; // MF
        assert_eq!(ipv4_packet(&bad).err(), Some(DropReason::Fragment));
        let mut bad = frame.clone();
        bad[12..14].copy_from_slice(&[0x81, 0x00]);
        assert_eq!(ipv4_packet(&bad).err(), Some(DropReason::VlanTagged));
        bad[12..14].copy_from_slice(&[0x86, 0xdd]);
        assert_eq!(
            ipv4_packet(&bad).err(),
            Some(DropReason::UnsupportedEthertype)
        );
        // The header checksum is the caller's (validate): not checked here.
        let mut unchecked = frame.clone();
        unchecked[24] = 0x12;
        assert!(ipv4_packet(&unchecked).is_ok());
    }
}
