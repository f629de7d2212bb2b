//! The ICMP errors rvs answers a received packet with, built in place from that packet:
//!
//! - **fragmentation needed** (type 3, code 4, with the next-hop MTU, RFC 1191) for a packet
//!   with DF set too big for the egress port (NAT, DR, FULLNAT, either way: Linux's
//!   `ensure_mtu_is_adequate` and `ip_forward`) or for a tunnel
//!   ([`tun::frag_needed`](super::tun::frag_needed));
//! - **time exceeded** (type 11, code 0, "TTL exceeded in transit") for a packet whose TTL
//!   runs out at the balancer (TTL ≤ 1), as Linux ≥ 4.3 answers it: `decrement_ttl` in
//!   `ip_vs_xmit.c` for packets to a virtual service, `ip_forward` for the replies it routes.
//!   The packet itself is not forwarded.
//!
//! ## The answer ([`answer`])
//!
//! The received frame becomes, in place (28 bytes prepended, the tail trimmed):
//!
//! - Ethernet: destination = the received frame's source (the sender, or the router it came
//!   through), source = the receiving port's MAC, EtherType IPv4;
//! - IPv4: source = `from`, which the caller chooses as Linux's `icmp_send` does: the original
//!   destination when the balancer owns it (`RTCF_LOCAL`: a VIP or a local address), so that
//!   the sender sees the error come from the address it talked to; otherwise the balancer's
//!   address on the receiving link towards the sender; destination = the original source;
//!   TTL 64; DSCP CS6 (48), ECN Not-ECT: Linux uses precedence "internetwork control"
//!   (`IPTOS_PREC_INTERNETCONTROL`) plus the original's RFC 1349 ToS bits, which can leave an
//!   ECT codepoint on the ICMP message, so rvs keeps the precedence and not those bits;
//!   identification = the caller's; DF clear (Linux's ICMP socket does not set it); no options;
//! - ICMP: the type and code above; for fragmentation needed the "unused" 16 bits 0 and the
//!   next-hop MTU, for time exceeded the 32 "unused" bits 0; checksum;
//! - the original datagram from its IPv4 header on, as received (its TTL not decremented),
//!   cut so that the whole error is at most 576 bytes: 548 bytes of the original, or all of
//!   it if shorter. RFC 792 asks for the header and 8 bytes; RFC 1812 §4.3.2.3 and Linux
//!   (`icmp_send` caps its message at 576) send as much as fits in 576, which lets the sender
//!   match the error to a TCP segment or a UDP datagram whatever its options. The embedded
//!   header is the original's, unchanged (its total length is the original's, longer than
//!   what is embedded). On a link whose MTU is below 576 the error is cut to the MTU instead
//!   (Linux: `room = min(dst_mtu, 576)`), so that it never needs fragmenting.
//!
//! No ICMP error is sent about an ICMP error (RFC 1122 §3.2.2; like Linux, an ICMP message of
//! a type above 18 or shorter than its header counts as one), about a frame sent to a
//! link-layer broadcast or multicast, from a source that is not a single host (0.0.0.0,
//! loopback, multicast, 240.0.0.0/4 and broadcast), or to a multicast destination: those
//! return the answer's own drop reason ([`Answer::refused`]) and the packet is dropped.
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

use std::net::Ipv4Addr;

use crate::frame::Frame;
use crate::l2::icmp::REPLY_TTL;
use crate::verdict::DropReason;
use crate::wire::ether::{self, EtherType, EthernetAddress};
use crate::wire::icmp::{self, Message};
use crate::wire::ipv4::{self, Protocol};

/// Largest ICMP error rvs sends, IPv4 header included (RFC 1812 §4.3.2.3, Linux).
pub const MAX_ERROR_LEN: usize = 576;
/// What [`answer`] puts in front of the original datagram: IPv4 and ICMP headers.
const ERROR_HEADERS_LEN: usize = ipv4::HEADER_LEN + icmp::HEADER_LEN;
/// DSCP of the ICMP errors rvs sends: CS6, IP precedence 6 "internetwork control".
const ERROR_DSCP: u8 = 48;
/// Highest ICMP type Linux knows (`NR_ICMP_TYPES`); higher ones count as errors.
const LAST_KNOWN_ICMP_TYPE: u8 = 18;
/// ICMP time exceeded code 0: TTL exceeded in transit.
const CODE_TTL_EXCEEDED: u8 = 0;

/// Which error to answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Destination unreachable, fragmentation needed and DF set, announcing this MTU.
    FragNeeded { next_hop_mtu: u16 },
    /// Time exceeded, TTL exceeded in transit.
    TimeExceeded,
}

impl Answer {
    /// Why the packet is dropped when no answer may be sent about it.
    pub fn refused(self) -> DropReason {
        match self {
            Answer::FragNeeded { .. } => DropReason::TooBig,
            Answer::TimeExceeded => DropReason::TtlExceeded,
        }
    }
}

/// Turn `frame`, holding a received packet (as received: a validated IPv4 header), into the
/// ICMP error `answer` for its sender, in place, from `from`: `port_mac` and `link_mtu` are
/// the receiving port's MAC and MTU, `ident` the identification of the error's IPv4 header.
/// See the module documentation for every field. On `Ok`, send the frame on the receiving
/// port.
///
/// # Errors
/// The frame is unchanged on every error:
/// - the checks of [`xmit`](super);
/// - [`Answer::refused`]: no ICMP error may be sent about this packet (an ICMP error, a
///   link-layer broadcast, a source that is not a single host, a multicast destination);
/// - [`DropReason::NoHeadroom`]: fewer than 28 bytes of headroom.
pub fn answer<F: Frame + ?Sized>(
    frame: &mut F,
    port_mac: EthernetAddress,
    link_mtu: u16,
    from: Ipv4Addr,
    answer: Answer,
    ident: u16,
) -> Result<(), DropReason> {
    let bytes = frame.data();
    let original = super::ipv4_packet(bytes)?;
    let eth = ether::Packet::new_unchecked(bytes);
    let sender_mac = eth.src_addr();
    let (src_addr, dst_addr) = (original.src_addr(), original.dst_addr());
    if !sender_mac.is_unicast()
        || !eth.dst_addr().is_unicast()
        || !is_single_host(src_addr)
        || dst_addr.is_multicast()
        || dst_addr.is_broadcast()
        || is_icmp_error(&original)
    {
        return Err(answer.refused());
    }
    let room = usize::from(link_mtu)
        .min(MAX_ERROR_LEN)
        .saturating_sub(ERROR_HEADERS_LEN);
    let embedded_len = usize::from(original.total_len()).min(room);
    let excess = bytes
        .len()
        .checked_sub(ether::HEADER_LEN)
        .and_then(|len| len.checked_sub(embedded_len))
        .ok_or(DropReason::Truncated)?;
    let error = ipv4::Repr {
        src_addr: from,
        dst_addr: src_addr,
        protocol: Protocol::Icmp,
        payload_len: icmp::HEADER_LEN
            .checked_add(embedded_len)
            .ok_or(answer.refused())?,
        ttl: REPLY_TTL,
        dscp: ERROR_DSCP,
        ecn: 0,
        ident,
        dont_frag: false,
    };
    super::splice::resize(frame, ERROR_HEADERS_LEN, excess)?;

    let bytes = frame.data_mut();
    let mut eth = ether::Packet::new_unchecked(&mut *bytes);
    eth.set_dst_addr(sender_mac);
    eth.set_src_addr(port_mac);
    eth.set_ethertype(EtherType::Ipv4);
    let mut ip = super::ipv4_mut(bytes);
    // Cannot fail: the frame holds the header and the total length is at most 576.
    error.emit(&mut ip)?;
    let mut message = icmp::Packet::new_unchecked(ip.payload_mut());
    match answer {
        Answer::FragNeeded { next_hop_mtu } => {
            message.set_msg_type(Message::DstUnreachable);
            message.set_msg_code(icmp::CODE_FRAG_NEEDED);
            message.set_rest_of_header(0);
            message.set_next_hop_mtu(next_hop_mtu);
        }
        Answer::TimeExceeded => {
            message.set_msg_type(Message::TimeExceeded);
            message.set_msg_code(CODE_TTL_EXCEEDED);
            message.set_rest_of_header(0);
        }
    }
    message.fill_checksum();
    Ok(())
}

/// Query whether `addr` may be the source of a datagram an ICMP error is sent about: a single
/// host (RFC 1122 §3.2.2), not 0.0.0.0, loopback, multicast or 240.0.0.0/4 (broadcast
/// included).
fn is_single_host(addr: Ipv4Addr) -> bool {
    !(addr.is_unspecified()
        || addr.is_loopback()
        || addr.is_multicast()
        || u32::from(addr) >= u32::from(Ipv4Addr::new(240, 0, 0, 0)))
}

/// Query whether `packet` is an ICMP error message (or an ICMP message too short to tell), which
/// no ICMP error may be sent about: destination unreachable, source quench, redirect, time
/// exceeded, parameter problem, and, as Linux, any type it does not know.
fn is_icmp_error(packet: &ipv4::Packet<&[u8]>) -> bool {
    if packet.protocol() != Protocol::Icmp {
        return false;
    }
    match icmp::Packet::new_checked(packet.payload()) {
        Ok(message) => match message.msg_type() {
            Message::DstUnreachable
            | Message::SourceQuench
            | Message::Redirect
            | Message::TimeExceeded
            | Message::ParamProblem => true,
            Message::Unknown(ty) => ty > LAST_KNOWN_ICMP_TYPE,
            Message::EchoReply | Message::EchoRequest => false,
        },
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::VecFrame;
    use crate::xmit::testing::{self, frame, Ip, CLIENT, PORT_MAC, ROUTER_MAC, VIRT};
    use etherparse::icmpv4::TimeExceededCode;
    use etherparse::Icmpv4Type;

    /// A UDP datagram of `len` bytes from `src` to the VIP with TTL 1, in a frame from the
    /// router followed by `padding` bytes.
    fn expiring_from(src: Ipv4Addr, len: usize, padding: usize) -> Vec<u8> {
        let mut ip = Ip::new(src, *VIRT.ip());
        ip.ttl = 1;
        let datagram = ip.udp(CLIENT.port(), VIRT.port(), &vec![0xab; len - 28], true);
        frame(ROUTER_MAC, PORT_MAC, &datagram, &vec![0xee; padding])
    }

    fn expiring(len: usize, padding: usize) -> Vec<u8> {
        expiring_from(*CLIENT.ip(), len, padding)
    }

    #[test]
    fn time_exceeded_exact_answer_from_the_given_address() {
        for (len, padding) in [(60, 0), (46, 8), (548, 0), (1500, 0)] {
            let received = expiring(len, padding);
            let mut f = VecFrame::new(&received);
            assert_eq!(
                answer(&mut f, PORT_MAC, 1500, *VIRT.ip(), Answer::TimeExceeded, 7),
                Ok(()),
                "len {len}"
            );
            let mut from_vip = Ip::new(*VIRT.ip(), *CLIENT.ip());
            from_vip.ttl = 64;
            from_vip.ident = 7;
            from_vip.dont_frag = false;
            from_vip.dscp = 48;
            let quoted = &received[14..14 + len.min(548)];
            let icmp_type = Icmpv4Type::TimeExceeded(TimeExceededCode::TtlExceededInTransit);
            let expected = frame(PORT_MAC, ROUTER_MAC, &from_vip.icmp(icmp_type, quoted), &[]);
            assert_eq!(f.into_bytes(), expected, "len {len}");
        }
        // Another source: the caller's choice is taken as given.
        let dip = Ipv4Addr::new(10, 0, 0, 1);
        let mut f = VecFrame::new(expiring(60, 0));
        assert_eq!(
            answer(&mut f, PORT_MAC, 1500, dip, Answer::TimeExceeded, 7),
            Ok(())
        );
        assert_eq!(f.data()[26..30], dip.octets());
    }

    /// On a link whose MTU is below 576 the error fits the MTU: it quotes that much less.
    #[test]
    fn an_error_never_exceeds_the_receiving_link_mtu() {
        for (link_mtu, quoted) in [
            (68u16, 40usize),
            (100, 72),
            (575, 547),
            (576, 548),
            (9000, 548),
        ] {
            let received = expiring(1000, 0);
            let mut f = VecFrame::new(&received);
            assert_eq!(
                answer(
                    &mut f,
                    PORT_MAC,
                    link_mtu,
                    *VIRT.ip(),
                    Answer::TimeExceeded,
                    7
                ),
                Ok(()),
                "MTU {link_mtu}"
            );
            let bytes = f.into_bytes();
            assert_eq!(bytes.len(), 14 + 28 + quoted, "MTU {link_mtu}");
            assert_eq!(&bytes[42..], &received[14..14 + quoted], "MTU {link_mtu}");
            assert_eq!(
                testing::sum(&bytes[34..]),
                0xffff,
                "ICMP checksum, MTU {link_mtu}"
            );
        }
    }

    #[test]
    fn refusals_keep_the_frame_and_name_the_answer() {
        let good = expiring(60, 0);
        let mut to_broadcast = good.clone();
        to_broadcast[..6].copy_from_slice(&[0xff; 6]);
        let from_zero = expiring_from(Ipv4Addr::UNSPECIFIED, 60, 0);
        let mut about_an_error = expiring(60, 0);
        about_an_error[23] = 1; // protocol ICMP: the payload starts 0xab, an unknown type
        about_an_error[24..26].copy_from_slice(&[0, 0]);
        let checksum = !testing::sum(&about_an_error[14..34]);
        about_an_error[24..26].copy_from_slice(&checksum.to_be_bytes());
        for bytes in [to_broadcast, from_zero, about_an_error] {
            for (kind, reason) in [
                (Answer::TimeExceeded, DropReason::TtlExceeded),
                (
                    Answer::FragNeeded { next_hop_mtu: 1480 },
                    DropReason::TooBig,
                ),
            ] {
                let mut f = VecFrame::new(&bytes);
                assert_eq!(
                    answer(&mut f, PORT_MAC, 1500, *VIRT.ip(), kind, 1),
                    Err(reason)
                );
                assert_eq!(f.data(), &bytes[..]);
            }
        }
    }
}
