//! The ICMPv6 errors rvs answers with instead of forwarding an IPv6 packet (RFC 4443), as
//! [`super::icmp_answer`] does for IPv4: time exceeded (code 0) for a hop limit that ran out,
//! packet too big for a packet longer than the egress link's MTU (IPv6 routers never
//! fragment).
//!
//! The answer replaces the frame: Ethernet addresses swapped (back to the sender's MAC, from
//! the receiving port's), an IPv6 header from `from` (the balancer's address: the packet's
//! destination when the balancer owns it, else its address on the receiving link) to the
//! packet's source with hop limit 64, and the message quoting as much of the packet as fits
//! in 1280 bytes (RFC 4443 §2.4 (c)). Not answered, as RFC 4443 §2.4 (e) says: an ICMPv6 error
//! or redirect, a packet from the unspecified or a multicast address, and a packet to a
//! multicast address unless the answer is packet too big.

use std::net::Ipv6Addr;

use crate::frame::Frame;
use crate::verdict::DropReason;
use crate::wire::ether::{self, EtherType, EthernetAddress};
use crate::wire::icmpv6::{self, Message};
use crate::wire::ipv6::{self, NextHeader};

/// Hop limit of the answers (Linux's default).
pub const HOP_LIMIT: u8 = 64;

/// The longest answer frame: Ethernet and the 1280-byte minimum MTU.
const MAX_FRAME: usize = ether::HEADER_LEN + 1280;

/// Which error to answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer6 {
    /// Time exceeded in transit (type 3, code 0).
    TimeExceeded,
    /// Packet too big (type 2), with the MTU of the link the packet would have left on.
    PacketTooBig { mtu: u32 },
}

impl Answer6 {
    /// The drop reason of a packet that may get no answer.
    pub fn refused(self) -> DropReason {
        match self {
            Answer6::TimeExceeded => DropReason::TtlExceeded,
            Answer6::PacketTooBig { .. } => DropReason::TooBig,
        }
    }
}

/// Replace `frame` (a whole IPv6 frame as received, unchanged since) with the answer `answer`
/// from `from`, sent by the port with MAC `port_mac`.
///
/// # Errors
/// `answer.refused()` when RFC 4443 forbids an answer or the frame is not a valid IPv6
/// packet; the frame is unchanged.
pub fn answer<F: Frame>(
    frame: &mut F,
    port_mac: EthernetAddress,
    from: Ipv6Addr,
    answer: Answer6,
) -> Result<(), DropReason> {
    let refused = answer.refused();
    let data = frame.data();
    let (head, packet) = data
        .split_first_chunk::<{ ether::HEADER_LEN }>()
        .ok_or(refused)?;
    let sender_mac = ether::Packet::new_unchecked(&head[..]).src_addr();
    let ip = ipv6::Packet::new_checked(packet).map_err(|_| refused)?;
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    if src.is_unspecified() || src.is_multicast() || !sender_mac.is_unicast() {
        return Err(refused);
    }
    if dst.is_multicast() && answer == Answer6::TimeExceeded {
        return Err(refused);
    }
    if let Ok(upper) = ip.upper_layer() {
        let first = upper.fragment.is_none_or(|f| f.is_first());
        if upper.protocol == NextHeader::Icmpv6 && first {
            let quoted = packet.get(upper.offset).map(|&t| Message::from(t));
            if quoted.is_some_and(|m| m.is_error() || m == Message::Redirect) {
                return Err(refused);
            }
        }
    }
    let invoking = packet
        .get(..ipv6::HEADER_LEN + usize::from(ip.payload_len()))
        .ok_or(refused)?;
    let message = match answer {
        Answer6::TimeExceeded => icmpv6::Repr::TimeExceeded { code: 0, invoking },
        Answer6::PacketTooBig { mtu } => icmpv6::Repr::PacketTooBig { mtu, invoking },
    };
    let mut out = [0u8; MAX_FRAME];
    // At most MAX_FRAME: the message quotes at most what fits in 1280 bytes.
    let len = message
        .buffer_len()
        .checked_add(ether::HEADER_LEN + ipv6::HEADER_LEN)
        .ok_or(refused)?;
    {
        let buf = out.get_mut(..len).ok_or(refused)?;
        let mut eth = ether::Packet::new_unchecked(&mut buf[..]);
        eth.set_dst_addr(sender_mac);
        eth.set_src_addr(port_mac);
        eth.set_ethertype(EtherType::Ipv6);
        let repr = ipv6::Repr {
            src_addr: from,
            dst_addr: src,
            next_header: NextHeader::Icmpv6,
            payload_len: message.buffer_len(),
            hop_limit: HOP_LIMIT,
            traffic_class: 0,
            flow_label: 0,
        };
        let mut ip = ipv6::Packet::new_unchecked(eth.payload_mut());
        repr.emit(&mut ip).map_err(|_| refused)?;
        message
            .emit(
                &mut icmpv6::Packet::new_unchecked(ip.payload_mut()),
                &from,
                &src,
            )
            .map_err(|_| refused)?;
    }
    if frame.set_data(out.get(..len).ok_or(refused)?) {
        Ok(())
    } else {
        Err(refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::VecFrame;
    use etherparse::icmpv6::TimeExceededCode;
    use etherparse::{Icmpv6Type, PacketBuilder};

    const CLIENT: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xc, 0, 0, 0, 0, 0x99);
    const VIP: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
    const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x99];
    const PORT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

    fn tcp(src: Ipv6Addr, dst: Ipv6Addr, hop: u8, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ethernet2(CLIENT_MAC, PORT_MAC)
            .ipv6(src.octets(), dst.octets(), hop)
            .tcp(40000, 80, 1, 1000)
            .write(&mut out, data)
            .unwrap();
        out
    }

    fn expected(icmp: Icmpv6Type, invoking: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ethernet2(PORT_MAC, CLIENT_MAC)
            .ipv6(VIP.octets(), CLIENT.octets(), HOP_LIMIT)
            .icmpv6(icmp)
            .write(&mut out, invoking)
            .unwrap();
        out
    }

    #[test]
    fn time_exceeded_and_packet_too_big_quote_the_packet_up_to_1280_bytes() {
        let small = tcp(CLIENT, VIP, 1, b"hello");
        let mut frame = VecFrame::new(&small);
        answer(
            &mut frame,
            EthernetAddress(PORT_MAC),
            VIP,
            Answer6::TimeExceeded,
        )
        .unwrap();
        let want = expected(
            Icmpv6Type::TimeExceeded(TimeExceededCode::HopLimitExceeded),
            &small[ether::HEADER_LEN..],
        );
        assert_eq!(frame.data(), &want[..]);

        let big = tcp(CLIENT, VIP, 64, &[0x5a; 1400]);
        let mut frame = VecFrame::new(&big);
        answer(
            &mut frame,
            EthernetAddress(PORT_MAC),
            VIP,
            Answer6::PacketTooBig { mtu: 1280 },
        )
        .unwrap();
        let quoted = &big[ether::HEADER_LEN..ether::HEADER_LEN + icmpv6::MAX_INVOKING_LEN];
        let want = expected(Icmpv6Type::PacketTooBig { mtu: 1280 }, quoted);
        assert_eq!(frame.data(), &want[..]);
        assert_eq!(frame.data().len(), ether::HEADER_LEN + 1280);
    }

    #[test]
    fn rfc_4443_forbidden_answers_leave_the_frame_unchanged() {
        let from_unspecified = tcp(Ipv6Addr::UNSPECIFIED, VIP, 1, b"x");
        let from_multicast = tcp("ff02::1".parse().unwrap(), VIP, 1, b"x");
        let to_multicast = tcp(CLIENT, "ff0e::1".parse().unwrap(), 1, b"x");
        let mut error = Vec::new();
        PacketBuilder::ethernet2(CLIENT_MAC, PORT_MAC)
            .ipv6(CLIENT.octets(), VIP.octets(), 1)
            .icmpv6(Icmpv6Type::TimeExceeded(TimeExceededCode::HopLimitExceeded))
            .write(&mut error, &[0; 48])
            .unwrap();
        for (input, answer6) in [
            (&from_unspecified, Answer6::TimeExceeded),
            (&from_multicast, Answer6::PacketTooBig { mtu: 1280 }),
            (&to_multicast, Answer6::TimeExceeded),
            (&error, Answer6::TimeExceeded),
        ] {
            let mut frame = VecFrame::new(input);
            assert_eq!(
                answer(&mut frame, EthernetAddress(PORT_MAC), VIP, answer6),
                Err(answer6.refused())
            );
            assert_eq!(frame.data(), &input[..]);
        }
        // Packet too big is the one error a multicast destination gets (path MTU discovery).
        let mut frame = VecFrame::new(&to_multicast);
        let too_big = Answer6::PacketTooBig { mtu: 1280 };
        assert_eq!(
            answer(&mut frame, EthernetAddress(PORT_MAC), VIP, too_big),
            Ok(())
        );
    }
}
