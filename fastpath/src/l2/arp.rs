//! The ARP responder (RFC 826) and the ARP packets rvs originates.
//!
//! [`respond`] turns a request for an address the balancer owns into the reply, in place:
//! Ethernet destination = the requester's hardware address, source = the port's; ARP operation
//! reply, sender = (port MAC, requested address), target = (requester MAC, requester address).
//! The frame keeps its length, padding included. A request with sender address 0.0.0.0 (an
//! RFC 5227 probe) is answered the same way, to the requester's MAC with target address
//! 0.0.0.0, as Linux `arp_process` does. A gratuitous request (sender address = target address)
//! for an owned address is answered too, which defends the address.
//!
//! Checked, in order, before anything is written (on any error the frame is untouched):
//! - Ethernet header present ([`DropReason::Truncated`]), EtherType ARP
//!   ([`DropReason::VlanTagged`] for a VLAN tag, else [`DropReason::UnsupportedEthertype`]);
//! - an Ethernet/IPv4 ARP packet: [`arp::Repr::parse`] (`Truncated`, `BadArp`, and
//!   `ArpIgnored` for operations other than request and reply);
//! - the sender hardware address is unicast and the sender protocol address is not
//!   multicast, limited broadcast or loopback (`BadArp`): nothing could be learned from it and
//!   a reply must not go to a group address.
//!
//! Not checked: the Ethernet destination (the port's MAC filter and the caller decide which
//! frames arrive), whether the Ethernet source matches the sender hardware address (proxies
//! differ), whether the requested address is loopback or multicast (the owner callback never
//! owns those).

use std::net::Ipv4Addr;

use crate::verdict::DropReason;
use crate::wire::arp::{self, Operation};
use crate::wire::ether::{self, EtherType, EthernetAddress};

/// What [`respond`] did with a well-formed ARP packet. Either way the received packet is
/// returned, so the caller can learn the sender's address from any request or reply
/// (gratuitous ARP included). Callers should not learn sender address 0.0.0.0 (a probe) nor an
/// address the balancer owns (a conflict, not a neighbour).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The frame now holds the reply: transmit it on the receiving port.
    Reply(arp::Repr),
    /// No reply; the frame is unchanged. Count it under the reason: [`DropReason::ArpNotOurs`]
    /// for a request for an address the balancer does not own, [`DropReason::ArpIgnored`] for
    /// a reply.
    NoReply(arp::Repr, DropReason),
}

impl Outcome {
    /// Return the ARP packet as received.
    pub fn received(&self) -> &arp::Repr {
        match self {
            Outcome::Reply(repr) | Outcome::NoReply(repr, _) => repr,
        }
    }
}

/// Answer an ARP request for an owned address by rewriting `frame` (the whole Ethernet frame
/// as received) into the reply, in place. `port_mac` is the receiving port's address; `owns`
/// says whether the balancer owns an IPv4 address.
///
/// # Errors
/// The frame is not a well-formed Ethernet/IPv4 ARP request or reply (see the module
/// documentation); it is unchanged.
pub fn respond(
    frame: &mut [u8],
    port_mac: impl Into<EthernetAddress>,
    owns: impl Fn(Ipv4Addr) -> bool,
) -> Result<Outcome, DropReason> {
    let port_mac = port_mac.into();
    let eth = ether::Packet::new_checked(&*frame)?;
    match eth.ethertype() {
        EtherType::Arp => {}
        ethertype if ethertype.is_vlan() => return Err(DropReason::VlanTagged),
        _ => return Err(DropReason::UnsupportedEthertype),
    }
    let received = arp::Repr::parse(&arp::Packet::new_checked(eth.payload())?)?;
    let sender = received.sender_protocol_addr;
    if !received.sender_hardware_addr.is_unicast()
        || sender.is_multicast()
        || sender.is_broadcast()
        || sender.is_loopback()
    {
        return Err(DropReason::BadArp);
    }
    if received.operation != Operation::Request {
        return Ok(Outcome::NoReply(received, DropReason::ArpIgnored));
    }
    if !owns(received.target_protocol_addr) {
        return Ok(Outcome::NoReply(received, DropReason::ArpNotOurs));
    }

    let reply = arp::Repr {
        operation: Operation::Reply,
        sender_hardware_addr: port_mac,
        sender_protocol_addr: received.target_protocol_addr,
        target_hardware_addr: received.sender_hardware_addr,
        target_protocol_addr: received.sender_protocol_addr,
    };
    let mut eth = ether::Packet::new_unchecked(&mut *frame);
    eth.set_dst_addr(received.sender_hardware_addr);
    eth.set_src_addr(port_mac);
    reply.emit(&mut arp::Packet::new_unchecked(eth.payload_mut()))?;
    Ok(Outcome::Reply(received))
}

/// Length of the frames [`request`] and [`gratuitous`] build: the Ethernet minimum, so no NIC
/// has to pad them.
pub const FRAME_LEN: usize = ether::MIN_FRAME_LEN;

/// Return a broadcast ARP request "who has `target`? tell `sender`" from `port_mac`, zero
/// padded to [`FRAME_LEN`] bytes.
pub fn request(
    port_mac: impl Into<EthernetAddress>,
    sender: Ipv4Addr,
    target: Ipv4Addr,
) -> [u8; FRAME_LEN] {
    let port_mac = port_mac.into();
    let mut frame = [0; FRAME_LEN];
    let mut eth = ether::Packet::new_unchecked(&mut frame[..]);
    eth.set_dst_addr(EthernetAddress::BROADCAST);
    eth.set_src_addr(port_mac);
    eth.set_ethertype(EtherType::Arp);
    let mut arp = arp::Packet::new_unchecked(eth.payload_mut());
    arp.set_hardware_type(arp::HARDWARE_ETHERNET);
    arp.set_protocol_type(EtherType::Ipv4);
    arp.set_hardware_len(6);
    arp.set_protocol_len(4);
    arp.set_operation(Operation::Request);
    arp.set_sender_hardware_addr(port_mac);
    arp.set_sender_protocol_addr(sender);
    // Unknown, hence zero (RFC 5227 §2.1.1).
    arp.set_target_hardware_addr(EthernetAddress::UNSPECIFIED);
    arp.set_target_protocol_addr(target);
    frame
}

/// Return the gratuitous ARP announcing that `addr` is at `port_mac` (RFC 5227 §3, request
/// form: sender and target address both `addr`, broadcast), [`FRAME_LEN`] bytes. Sent at
/// start-up for every owned address so switches and neighbours update.
pub fn gratuitous(port_mac: impl Into<EthernetAddress>, addr: Ipv4Addr) -> [u8; FRAME_LEN] {
    request(port_mac, addr, addr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PORT_MAC: EthernetAddress = EthernetAddress([0x02, 0x00, 0x00, 0x00, 0x00, 0x01]);
    const REQUESTER_MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
    const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const REQUESTER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    fn owns(addr: Ipv4Addr) -> bool {
        addr == VIP
    }

    /// "Who has 10.0.0.1? Tell 10.0.0.2", broadcast, padded to 60 bytes with a pattern so the
    /// test sees the padding kept as it was.
    static PACKET_BYTES: [u8; 60] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // Ethernet destination: broadcast
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // Ethernet source: requester
        0x08, 0x06, // ARP
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, // Ethernet, IPv4, 6, 4
        0x00, 0x01, // request
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // sender hardware address: requester
        0x0a, 0x00, 0x00, 0x02, // sender protocol address 10.0.0.2
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // target hardware address: unknown
        0x0a, 0x00, 0x00, 0x01, // target protocol address 10.0.0.1
        0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, // padding (18 bytes)
        0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee,
    ];

    /// The reply "10.0.0.1 is at 02:00:00:00:00:01", to the requester, padding unchanged.
    static REPLY_BYTES: [u8; 60] = [
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // Ethernet destination: requester
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // Ethernet source: port
        0x08, 0x06, // ARP
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, // Ethernet, IPv4, 6, 4
        0x00, 0x02, // reply
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // sender hardware address: port
        0x0a, 0x00, 0x00, 0x01, // sender protocol address 10.0.0.1
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // target hardware address: requester
        0x0a, 0x00, 0x00, 0x02, // target protocol address 10.0.0.2
        0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, // padding, kept
        0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee,
    ];

    fn request_repr() -> arp::Repr {
        arp::Repr {
            operation: Operation::Request,
            sender_hardware_addr: REQUESTER_MAC,
            sender_protocol_addr: REQUESTER,
            target_hardware_addr: EthernetAddress::UNSPECIFIED,
            target_protocol_addr: VIP,
        }
    }

    /// Run `respond` on `bytes` and return the outcome and the frame afterwards.
    fn run(bytes: &[u8]) -> (Result<Outcome, DropReason>, Vec<u8>) {
        let mut frame = bytes.to_vec();
        let outcome = respond(&mut frame, PORT_MAC, owns);
        (outcome, frame)
    }

    #[test]
    fn reply() {
        let (outcome, frame) = run(&PACKET_BYTES);
        assert_eq!(outcome, Ok(Outcome::Reply(request_repr())));
        assert_eq!(outcome.unwrap().received(), &request_repr());
        assert_eq!(frame, REPLY_BYTES);
        // Cross-check the ARP part with an independent implementation.
        let theirs = etherparse::ArpEthIpv4Packet {
            operation: etherparse::ArpOperation::REPLY,
            sender_mac: PORT_MAC.0,
            sender_ipv4: VIP.octets(),
            target_mac: REQUESTER_MAC.0,
            target_ipv4: REQUESTER.octets(),
        };
        assert_eq!(frame[14..42], theirs.to_bytes());
    }

    #[test]
    fn reply_unpadded() {
        // A 42-byte frame (as sent by a host before the NIC pads it) gets a 42-byte reply.
        let (outcome, frame) = run(&PACKET_BYTES[..42]);
        assert!(matches!(outcome, Ok(Outcome::Reply(_))));
        assert_eq!(frame, REPLY_BYTES[..42]);
    }

    #[test]
    fn reply_to_probe() {
        // RFC 5227 probe: sender address 0.0.0.0; the reply goes to the prober's MAC with
        // target address 0.0.0.0.
        let mut bytes = PACKET_BYTES;
        bytes[28..32].copy_from_slice(&[0, 0, 0, 0]);
        let (outcome, frame) = run(&bytes);
        assert!(matches!(outcome, Ok(Outcome::Reply(_))));
        assert_eq!(frame[..38], REPLY_BYTES[..38]);
        assert_eq!(frame[38..42], [0, 0, 0, 0]);
        assert_eq!(frame[42..], REPLY_BYTES[42..]);
    }

    #[test]
    fn not_ours() {
        let mut bytes = PACKET_BYTES;
        bytes[41] = 3; // who has 10.0.0.3?
        let (outcome, frame) = run(&bytes);
        let repr = arp::Repr {
            target_protocol_addr: Ipv4Addr::new(10, 0, 0, 3),
            ..request_repr()
        };
        assert_eq!(outcome, Ok(Outcome::NoReply(repr, DropReason::ArpNotOurs)));
        assert_eq!(frame, bytes);
    }

    #[test]
    fn ignored_reply_is_learnable() {
        // A gratuitous reply from a neighbour: no answer, but the sender is handed back.
        let mut bytes = PACKET_BYTES;
        bytes[21] = 2;
        bytes[38..42].copy_from_slice(&[10, 0, 0, 2]);
        let (outcome, frame) = run(&bytes);
        let outcome = outcome.unwrap();
        assert_eq!(
            outcome,
            Outcome::NoReply(
                arp::Repr {
                    operation: Operation::Reply,
                    target_protocol_addr: REQUESTER,
                    ..request_repr()
                },
                DropReason::ArpIgnored
            )
        );
        assert_eq!(outcome.received().sender_hardware_addr, REQUESTER_MAC);
        assert_eq!(outcome.received().sender_protocol_addr, REQUESTER);
        assert_eq!(frame, bytes);
    }

    #[test]
    fn bad_operation() {
        let mut bytes = PACKET_BYTES;
        bytes[21] = 3; // RARP request
        assert_eq!(run(&bytes), (Err(DropReason::ArpIgnored), bytes.to_vec()));
    }

    #[test]
    fn bad_arp() {
        // Not Ethernet/IPv4: hardware type, protocol type, lengths.
        for (at, value) in [(15, 6), (16, 0x86), (18, 8), (19, 16)] {
            let mut bytes = PACKET_BYTES;
            bytes[at] = value;
            assert_eq!(
                run(&bytes),
                (Err(DropReason::BadArp), bytes.to_vec()),
                "byte {at}"
            );
        }
        // Group or zero sender hardware address; multicast, broadcast or loopback sender.
        for (at, value) in [
            (22, &[0x01, 0x00, 0x5e, 0x00, 0x00, 0x01][..]),
            (22, &[0xff; 6][..]),
            (22, &[0; 6][..]),
            (28, &[224, 0, 0, 1][..]),
            (28, &[255, 255, 255, 255][..]),
            (28, &[127, 0, 0, 1][..]),
        ] {
            let mut bytes = PACKET_BYTES;
            bytes[at..at + value.len()].copy_from_slice(value);
            assert_eq!(run(&bytes), (Err(DropReason::BadArp), bytes.to_vec()));
        }
    }

    #[test]
    fn bad_ethertype() {
        for (ethertype, reason) in [
            ([0x81, 0x00], DropReason::VlanTagged),
            ([0x88, 0xa8], DropReason::VlanTagged),
            ([0x08, 0x00], DropReason::UnsupportedEthertype),
            ([0x86, 0xdd], DropReason::UnsupportedEthertype),
        ] {
            let mut bytes = PACKET_BYTES;
            bytes[12..14].copy_from_slice(&ethertype);
            assert_eq!(run(&bytes), (Err(reason), bytes.to_vec()));
        }
    }

    #[test]
    fn truncated() {
        for len in 0..PACKET_BYTES.len() {
            let (outcome, frame) = run(&PACKET_BYTES[..len]);
            if len < 42 {
                assert_eq!(outcome, Err(DropReason::Truncated), "len {len}");
                assert_eq!(frame, PACKET_BYTES[..len]);
            } else {
                assert!(matches!(outcome, Ok(Outcome::Reply(_))), "len {len}");
                assert_eq!(frame, REPLY_BYTES[..len]);
            }
        }
    }

    #[test]
    fn emit_gratuitous() {
        let frame = gratuitous(PORT_MAC, VIP);
        let expected: [u8; 60] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // Ethernet destination: broadcast
            0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // Ethernet source: port
            0x08, 0x06, // ARP
            0x00, 0x01, 0x08, 0x00, 0x06, 0x04, // Ethernet, IPv4, 6, 4
            0x00, 0x01, // request
            0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // sender hardware address: port
            0x0a, 0x00, 0x00, 0x01, // sender protocol address: the VIP
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // target hardware address: zero
            0x0a, 0x00, 0x00, 0x01, // target protocol address: the VIP
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // zero padding
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        ];
        assert_eq!(frame, expected);
        // A plain MAC array is accepted too.
        assert_eq!(gratuitous(PORT_MAC.0, VIP), expected);
        // Another host parses it as an announcement of the VIP.
        let mut copy = frame;
        let other = EthernetAddress([0x02, 0, 0, 0, 0, 0x02]);
        let outcome = respond(&mut copy, other, |_| false).unwrap();
        assert_eq!(outcome.received().sender_protocol_addr, VIP);
        assert_eq!(outcome.received().target_protocol_addr, VIP);
        assert_eq!(outcome.received().sender_hardware_addr, PORT_MAC);
    }

    #[test]
    fn emit_request() {
        let frame = request(PORT_MAC, VIP, REQUESTER);
        let packet = arp::Packet::new_checked(&frame[14..]).unwrap();
        assert_eq!(
            arp::Repr::parse(&packet),
            Ok(arp::Repr {
                operation: Operation::Request,
                sender_hardware_addr: PORT_MAC,
                sender_protocol_addr: VIP,
                target_hardware_addr: EthernetAddress::UNSPECIFIED,
                target_protocol_addr: REQUESTER,
            })
        );
        let eth = ether::Packet::new_checked(&frame[..]).unwrap();
        assert_eq!(eth.dst_addr(), EthernetAddress::BROADCAST);
        assert_eq!(eth.src_addr(), PORT_MAC);
        assert_eq!(eth.ethertype(), EtherType::Arp);
        assert_eq!(frame[42..], [0; 18]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// Random bytes never panic, and are rejected (being Ethernet/IPv4 ARP by chance needs
        /// 10 fixed bytes) with the frame untouched.
        #[test]
        fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let (outcome, frame) = run(&bytes);
            prop_assert!(outcome.is_err());
            prop_assert_eq!(frame, bytes);
        }

        /// A valid request with a few bytes changed: never panics; whatever is not answered
        /// leaves the frame untouched, and whatever is answered is a well-formed reply from
        /// the port for an owned address.
        #[test]
        fn mutated_request(
            changes in proptest::collection::vec((0usize..60, any::<u8>()), 1..4),
            len in 0usize..=60,
        ) {
            let mut bytes = PACKET_BYTES[..len].to_vec();
            for (at, value) in changes {
                if let Some(byte) = bytes.get_mut(at) {
                    *byte = value;
                }
            }
            let (outcome, frame) = run(&bytes);
            // Shorter than Ethernet + ARP: always rejected.
            prop_assert!(len >= 42 || outcome.is_err());
            match outcome {
                Ok(Outcome::Reply(received)) => {
                    prop_assert_eq!(frame.len(), bytes.len());
                    let eth = ether::Packet::new_checked(&frame[..]).unwrap();
                    prop_assert_eq!(eth.src_addr(), PORT_MAC);
                    prop_assert_eq!(eth.dst_addr(), received.sender_hardware_addr);
                    let reply = arp::Repr::parse(&arp::Packet::new_checked(eth.payload()).unwrap());
                    prop_assert_eq!(reply, Ok(arp::Repr {
                        operation: Operation::Reply,
                        sender_hardware_addr: PORT_MAC,
                        sender_protocol_addr: VIP,
                        target_hardware_addr: received.sender_hardware_addr,
                        target_protocol_addr: received.sender_protocol_addr,
                    }));
                    prop_assert_eq!(&frame[42..], &bytes[42..]);
                }
                Ok(Outcome::NoReply(..)) | Err(_) => prop_assert_eq!(frame, bytes),
            }
        }
    }
}
