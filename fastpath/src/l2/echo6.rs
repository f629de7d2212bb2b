//! ICMPv6 echo replies for the balancer's own IPv6 addresses (RFC 4443 §4.2), written over the
//! request in place, as [`super::icmp`] does for IPv4.
//!
//! The classifier has already checked that the request is a whole, unfragmented echo request
//! to an owned unicast address from a source that is not martian; what is checked here is
//! the message itself: its length and its checksum (a request with a bad checksum gets no
//! reply, as Linux's `icmpv6_rcv` drops it). Extension headers before the message are kept
//! as they are (Linux answers from its socket with none; an echo with extension headers is
//! rare enough that rvs answers it in place rather than rebuilding it).
//!
//! The reply: Ethernet addresses swapped (to the requester's MAC, from the port's), IPv6
//! addresses swapped, hop limit 64 (Linux's default `hop_limit`), type 129 code 0, the same
//! identifier, sequence number and data, and the checksum updated for the type (swapping the
//! addresses leaves the pseudo-header's sum unchanged).

use crate::verdict::DropReason;
use crate::wire::checksum;
use crate::wire::ether::{self, EthernetAddress};
use crate::wire::icmpv6::{self, Message};
use crate::wire::ipv6;

/// Hop limit of the replies (Linux's default `net.ipv6.conf.*.hop_limit`).
pub const REPLY_HOP_LIMIT: u8 = 64;

/// Answer the ICMPv6 echo request in `frame` (a whole Ethernet frame, trimmed to its IPv6
/// packet) by rewriting it into the reply, in place, from the port with address `port_mac`.
/// On `Ok` the frame holds the reply: transmit it on the receiving port.
///
/// # Errors
/// `bad_ipv6_header` for a frame that is not a valid IPv6 packet, `icmp_ignored` for another
/// message or a requester whose MAC is not unicast, `bad_icmp_checksum`; the frame is
/// unchanged.
pub fn respond(frame: &mut [u8], port_mac: impl Into<EthernetAddress>) -> Result<(), DropReason> {
    let port_mac = port_mac.into();
    let (head, rest) = frame
        .split_first_chunk::<{ ether::HEADER_LEN }>()
        .ok_or(DropReason::Truncated)?;
    let requester_mac = ether::Packet::new_unchecked(&head[..]).src_addr();
    let ip = ipv6::Packet::new_checked(rest).map_err(|_| DropReason::BadIpv6Header)?;
    let upper = ip.upper_layer().map_err(|_| DropReason::BadIpv6Header)?;
    if upper.protocol != ipv6::NextHeader::Icmpv6 || upper.fragment.is_some() {
        return Err(DropReason::IcmpIgnored);
    }
    let end = ipv6::HEADER_LEN + usize::from(ip.payload_len());
    let (src_addr, dst_addr) = (ip.src_addr(), ip.dst_addr());
    let message = rest
        .get(upper.offset..end)
        .ok_or(DropReason::BadIpv6Header)?;
    let request = icmpv6::Packet::new_checked(message).map_err(|_| DropReason::IcmpIgnored)?;
    if request.msg_type() != Message::EchoRequest || !requester_mac.is_unicast() {
        return Err(DropReason::IcmpIgnored);
    }
    if !request.verify_checksum(&src_addr, &dst_addr) {
        return Err(DropReason::BadIcmpChecksum);
    }
    let old_type_code = u16::from_be_bytes([u8::from(Message::EchoRequest), request.msg_code()]);
    let new_type_code = u16::from_be_bytes([u8::from(Message::EchoReply), 0]);
    // The pseudo-header holds next header 58, so no message sums to +0 and RFC 1624's update
    // is exact here (the IPv4 responder must care for an all-zero reply; this one need not).
    let reply_checksum = checksum::update_u16(request.checksum(), old_type_code, new_type_code);

    let mut eth = ether::Packet::new_unchecked(&mut *frame);
    eth.set_dst_addr(requester_mac);
    eth.set_src_addr(port_mac);
    let mut ip = ipv6::Packet::new_unchecked(eth.payload_mut());
    ip.set_src_addr(dst_addr);
    ip.set_dst_addr(src_addr);
    ip.set_hop_limit(REPLY_HOP_LIMIT);
    let Some(message) = ip.payload_mut().get_mut(upper.offset - ipv6::HEADER_LEN..) else {
        return Err(DropReason::BadIpv6Header);
    };
    let mut reply = icmpv6::Packet::new_unchecked(message);
    reply.set_msg_type(Message::EchoReply);
    reply.set_msg_code(0);
    reply.set_checksum(reply_checksum);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    const CLIENT: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x99);
    const DIP: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x99];
    const PORT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

    /// An echo message of `msg_type` from `src` to `dst`, id 0x1234, sequence 7, `data`.
    fn echo(
        msg_type: Message,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        hop_limit: u8,
        data: &[u8],
    ) -> Vec<u8> {
        let mut icmp = vec![0u8; icmpv6::HEADER_LEN + data.len()];
        {
            let mut p = icmpv6::Packet::new_unchecked(&mut icmp[..]);
            p.set_msg_type(msg_type);
            p.set_msg_code(0);
            p.set_echo_ident(0x1234);
            p.set_echo_seq_no(7);
        }
        icmp[icmpv6::HEADER_LEN..].copy_from_slice(data);
        icmpv6::Packet::new_unchecked(&mut icmp[..]).fill_checksum(&src, &dst);
        let mut frame = vec![0u8; ether::HEADER_LEN + ipv6::HEADER_LEN];
        frame[12..14].copy_from_slice(&[0x86, 0xdd]);
        let repr = ipv6::Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: ipv6::NextHeader::Icmpv6,
            payload_len: icmp.len(),
            hop_limit,
            traffic_class: 0,
            flow_label: 0,
        };
        repr.emit(&mut ipv6::Packet::new_unchecked(
            &mut frame[ether::HEADER_LEN..],
        ))
        .unwrap();
        frame.extend_from_slice(&icmp);
        frame
    }

    fn with_macs(mut frame: Vec<u8>, dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
        frame[0..6].copy_from_slice(&dst);
        frame[6..12].copy_from_slice(&src);
        frame
    }

    #[test]
    fn a_request_becomes_the_reply_a_stack_would_build() {
        let mut frame = with_macs(
            echo(Message::EchoRequest, CLIENT, DIP, 63, b"abcdefgh"),
            PORT_MAC,
            CLIENT_MAC,
        );
        respond(&mut frame, PORT_MAC).unwrap();
        // Built from scratch: same bytes, checksum computed over the reply.
        let expected = with_macs(
            echo(
                Message::EchoReply,
                DIP,
                CLIENT,
                REPLY_HOP_LIMIT,
                b"abcdefgh",
            ),
            CLIENT_MAC,
            PORT_MAC,
        );
        assert_eq!(frame, expected);
    }

    #[test]
    fn every_checksum_the_update_makes_is_the_full_computation() {
        for seq_data in [&b""[..], &[0][..], &[0xff; 3][..], &[0x7f, 0x80][..]] {
            for src in [CLIENT, Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1)] {
                let mut frame = with_macs(
                    echo(Message::EchoRequest, src, DIP, 64, seq_data),
                    PORT_MAC,
                    CLIENT_MAC,
                );
                respond(&mut frame, PORT_MAC).unwrap();
                let expected = with_macs(
                    echo(Message::EchoReply, DIP, src, 64, seq_data),
                    CLIENT_MAC,
                    PORT_MAC,
                );
                assert_eq!(frame, expected, "{seq_data:?} from {src}");
            }
        }
    }

    #[test]
    fn what_gets_no_reply_is_left_unchanged() {
        let request = with_macs(
            echo(Message::EchoRequest, CLIENT, DIP, 64, b"x"),
            PORT_MAC,
            CLIENT_MAC,
        );
        let mut bad_sum = request.clone();
        *bad_sum.last_mut().unwrap() ^= 1;
        let reply = with_macs(
            echo(Message::EchoReply, CLIENT, DIP, 64, b"x"),
            PORT_MAC,
            CLIENT_MAC,
        );
        let multicast_requester = with_macs(request.clone(), PORT_MAC, [0x33, 0x33, 0, 0, 0, 1]);
        let mut truncated = request.clone();
        truncated.truncate(ether::HEADER_LEN + ipv6::HEADER_LEN + 4);
        for (frame, reason) in [
            (bad_sum, DropReason::BadIcmpChecksum),
            (reply, DropReason::IcmpIgnored),
            (multicast_requester, DropReason::IcmpIgnored),
            (truncated, DropReason::BadIpv6Header),
            (request[..20].to_vec(), DropReason::BadIpv6Header),
        ] {
            let mut copy = frame.clone();
            assert_eq!(respond(&mut copy, PORT_MAC), Err(reason));
            assert_eq!(copy, frame);
        }
    }
}
