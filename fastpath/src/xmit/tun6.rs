//! IPv6-in-IPv6 (next header 41), the LVS TUN method for an IPv6 service, as the kernel's
//! `ip_vs_tunnel_xmit_v6` builds it: an outer fixed header from the balancer's address to the
//! real server, its hop limit the inner packet's (already decremented), its traffic class the
//! inner one with ECN encapsulated as RFC 6040 says (CE becomes ECT(0)), flow label 0.
//! Ethernet padding after the inner packet is dropped.

use std::net::Ipv6Addr;

use crate::frame::Frame;
use crate::verdict::DropReason;
use crate::wire::ether;
use crate::wire::ipv6;

/// Bytes the encapsulation adds.
pub const OUTER_LEN: usize = ipv6::HEADER_LEN;

/// ECN congestion experienced, and ECT(0) (RFC 3168).
const ECN_CE: u8 = 3;
const ECN_ECT0: u8 = 2;

/// Encapsulate the IPv6 packet in `frame` (Ethernet, then the packet) for `dst` from `src`.
/// The Ethernet addresses are left for the egress stage to write.
///
/// # Errors
/// `bad_ipv6_header` if the frame holds no whole IPv6 packet, `too_big` if the outer payload
/// length would not fit 16 bits; the frame is unchanged.
pub fn encapsulate<F: Frame + ?Sized>(
    frame: &mut F,
    src: Ipv6Addr,
    dst: Ipv6Addr,
) -> Result<(), DropReason> {
    let data = frame.data();
    let eth: [u8; ether::HEADER_LEN] = *data
        .first_chunk::<{ ether::HEADER_LEN }>()
        .ok_or(DropReason::Truncated)?;
    let inner = data
        .get(ether::HEADER_LEN..)
        .and_then(|b| ipv6::Packet::new_checked(b).ok())
        .ok_or(DropReason::BadIpv6Header)?;
    let outer_payload = inner
        .payload_len()
        .checked_add(ipv6::HEADER_LEN as u16)
        .ok_or(DropReason::TooBig)?;
    let inner_len = usize::from(outer_payload);
    let tc = match inner.traffic_class() {
        tc if tc & 3 == ECN_CE => (tc & !3) | ECN_ECT0,
        tc => tc,
    };
    let hop_limit = inner.hop_limit();
    let padding = data
        .len()
        .checked_sub(inner_len)
        .and_then(|rest| rest.checked_sub(ether::HEADER_LEN))
        .ok_or(DropReason::BadIpv6Header)?;
    super::splice::resize(frame, OUTER_LEN, padding)?;
    let bytes = frame.data_mut();
    let (head, rest) = bytes
        .split_first_chunk_mut::<{ ether::HEADER_LEN }>()
        .ok_or(DropReason::Truncated)?;
    *head = eth;
    let repr = ipv6::Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: ipv6::NextHeader::Ipv6,
        payload_len: usize::from(outer_payload),
        hop_limit,
        traffic_class: tc,
        flow_label: 0,
    };
    repr.emit(&mut ipv6::Packet::new_unchecked(rest))
        .map_err(|_| DropReason::Truncated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::VecFrame;

    #[test]
    fn the_outer_header_is_the_kernels() {
        let inner_src = Ipv6Addr::new(0x2001, 0xdb8, 0xc, 0, 0, 0, 0, 0x99);
        let vip = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
        let (lb, rip) = (
            Ipv6Addr::new(0x2001, 0xdb8, 0x10, 0, 0, 0, 0, 1),
            Ipv6Addr::new(0x2001, 0xdb8, 0x10, 0, 0, 0, 0, 0x31),
        );
        let mut inner = vec![0u8; 14];
        inner[12..14].copy_from_slice(&[0x86, 0xdd]);
        // Version 6, traffic class 0xbb (DSCP 46, ECN CE), flow label 0x12345, 4 bytes of
        // payload, hop limit 63.
        inner.extend_from_slice(&[0x6b, 0xb1, 0x23, 0x45, 0, 4, 59, 63]);
        inner.extend_from_slice(&inner_src.octets());
        inner.extend_from_slice(&vip.octets());
        inner.extend_from_slice(b"data");
        let mut padded = inner.clone();
        padded.extend_from_slice(&[0; 6]);
        let mut frame = VecFrame::new(&padded);
        encapsulate(&mut frame, lb, rip).unwrap();
        let mut want = inner[..14].to_vec();
        // Traffic class 0xba (CE → ECT(0)), flow label 0, payload 44, next header 41, hop 63.
        want.extend_from_slice(&[0x6b, 0xa0, 0, 0, 0, 44, 41, 63]);
        want.extend_from_slice(&lb.octets());
        want.extend_from_slice(&rip.octets());
        want.extend_from_slice(&inner[14..]);
        assert_eq!(frame.data(), &want[..]);
    }
}
