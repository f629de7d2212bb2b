//! The ICMP echo responder (RFC 792, RFC 1122 §3.2.2.6): `ping` to an owned address.
//!
//! [`respond`] turns an echo request into the echo reply in place:
//! - Ethernet: destination = the request's source, source = the port's MAC;
//! - IPv4: source and destination swapped, TTL [`REPLY_TTL`], header checksum recomputed;
//!   identification, DF, DSCP/ECN and total length unchanged;
//! - ICMP: type 0 (echo reply) code 0, checksum updated incrementally (RFC 1624 eqn. 3) for the
//!   changed type/code word; identifier, sequence number and data unchanged (RFC 792: "the data
//!   received in the echo message must be returned in the echo reply message").
//!
//! The packet's end is the IPv4 total length: Ethernet padding is neither checksummed nor
//! changed, and the frame keeps its length.
//!
//! Checked, in order, before anything is written (on any error the frame is untouched):
//! - Ethernet header present ([`DropReason::Truncated`]), EtherType IPv4
//!   ([`DropReason::VlanTagged`] for a VLAN tag, else [`DropReason::UnsupportedEthertype`]);
//! - [`ipv4::Packet::validate`] (`Truncated`, `BadIpv4Header`, `Fragment`);
//! - protocol ICMP ([`DropReason::UnsupportedProtocol`]);
//! - destination owned by the balancer ([`DropReason::NotOurs`]);
//! - an ICMP header is present (`Truncated`) and its checksum verifies
//!   ([`DropReason::BadIcmpChecksum`]);
//! - an echo request, of any code ([`DropReason::IcmpIgnored`] for every other type: error
//!   messages about connections are the caller's to route before calling this);
//! - no IPv4 options ([`DropReason::IcmpIgnored`]): RFC 1122 §3.2.2.6 wants record-route and
//!   timestamp options updated and a source route reversed in the reply, which rvs does not
//!   implement, so such requests go unanswered and are counted rather than answered wrongly;
//! - a unicast requester: Ethernet source unicast, IPv4 source not unspecified, multicast,
//!   limited broadcast or loopback ([`DropReason::IcmpIgnored`]): a reply to a group address
//!   would be an amplifier.
//!
//! Not checked: the Ethernet destination (the caller's L2 filter), TTL (the request is
//! delivered, not routed).

use std::net::Ipv4Addr;

use crate::verdict::DropReason;
use crate::wire::checksum;
use crate::wire::ether::{self, EtherType, EthernetAddress};
use crate::wire::icmp::{self, Message};
use crate::wire::ipv4::{self, Protocol};

/// TTL of the replies (Linux's default `ip_default_ttl`).
pub const REPLY_TTL: u8 = 64;

/// Answer an ICMP echo request to an owned address by rewriting `frame` (the whole Ethernet
/// frame as received) into the echo reply, in place. `port_mac` is the receiving port's
/// address; `owns` says whether the balancer owns an IPv4 address. On `Ok` the frame holds the
/// reply: transmit it on the receiving port.
///
/// # Errors
/// The reason the frame gets no reply (see the module documentation); it is unchanged.
pub fn respond(
    frame: &mut [u8],
    port_mac: impl Into<EthernetAddress>,
    owns: impl Fn(Ipv4Addr) -> bool,
) -> Result<(), DropReason> {
    let port_mac = port_mac.into();
    let eth = ether::Packet::new_checked(&*frame)?;
    match eth.ethertype() {
        EtherType::Ipv4 => {}
        ethertype if ethertype.is_vlan() => return Err(DropReason::VlanTagged),
        _ => return Err(DropReason::UnsupportedEthertype),
    }
    let requester_mac = eth.src_addr();
    let ip = ipv4::Packet::new_unchecked(eth.payload());
    ip.validate()?;
    if ip.protocol() != Protocol::Icmp {
        return Err(DropReason::UnsupportedProtocol);
    }
    let (src_addr, dst_addr) = (ip.src_addr(), ip.dst_addr());
    if !owns(dst_addr) {
        return Err(DropReason::NotOurs);
    }
    let request = icmp::Packet::new_checked(ip.payload())?;
    if !request.verify_checksum() {
        return Err(DropReason::BadIcmpChecksum);
    }
    if request.msg_type() != Message::EchoRequest || ip.header_len() != ipv4::HEADER_LEN {
        return Err(DropReason::IcmpIgnored);
    }
    if !requester_mac.is_unicast()
        || src_addr.is_unspecified()
        || src_addr.is_multicast()
        || src_addr.is_broadcast()
        || src_addr.is_loopback()
    {
        return Err(DropReason::IcmpIgnored);
    }
    let old_type_code = u16::from_be_bytes([Message::EchoRequest.into(), request.msg_code()]);
    let new_type_code = u16::from_be_bytes([Message::EchoReply.into(), 0]);
    let mut icmp_checksum = checksum::update_u16(request.checksum(), old_type_code, new_type_code);
    // RFC 1624's update gives the right checksum for any message whose bytes are not all
    // zero; a reply of nothing but zeros (id 0, sequence 0, no data) sums to +0, whose
    // checksum is 0xffff, where the update yields the other zero, 0x0000.
    if icmp_checksum == 0 && request.rest_of_header() == 0 && request.data().iter().all(|&b| b == 0)
    {
        icmp_checksum = 0xffff;
    }

    let mut eth = ether::Packet::new_unchecked(&mut *frame);
    eth.set_dst_addr(requester_mac);
    eth.set_src_addr(port_mac);
    let mut ip = ipv4::Packet::new_unchecked(eth.payload_mut());
    ip.set_src_addr(dst_addr);
    ip.set_dst_addr(src_addr);
    ip.set_ttl(REPLY_TTL);
    ip.fill_checksum();
    let mut reply = icmp::Packet::new_unchecked(ip.payload_mut());
    reply.set_msg_type(Message::EchoReply);
    reply.set_msg_code(0);
    reply.set_checksum(icmp_checksum);
    Ok(())
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

    /// Echo request 10.0.0.2 -> 10.0.0.1, id 0x1234, seq 7, data "ping", in a frame padded
    /// to 60 bytes with a pattern (not part of the IPv4 packet).
    static PACKET_BYTES: [u8; 60] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // Ethernet destination: port
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // Ethernet source: requester
        0x08, 0x00, // IPv4
        0x45, 0x00, 0x00, 0x20, // version 4, IHL 5, total length 32
        0xab, 0xcd, 0x40, 0x00, // ident 0xabcd, DF
        0x3f, 0x01, 0x7c, 0x0d, // TTL 63, ICMP, checksum 0x7c0d
        0x0a, 0x00, 0x00, 0x02, // source 10.0.0.2
        0x0a, 0x00, 0x00, 0x01, // destination 10.0.0.1
        0x08, 0x00, 0x06, 0xf4, // echo request, code 0, checksum 0x06f4
        0x12, 0x34, 0x00, 0x07, // id 0x1234, seq 7
        0x70, 0x69, 0x6e, 0x67, // "ping"
        0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, // padding (14 bytes)
        0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee,
    ];

    /// The echo reply.
    static REPLY_BYTES: [u8; 60] = [
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // Ethernet destination: requester
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // Ethernet source: port
        0x08, 0x00, // IPv4
        0x45, 0x00, 0x00, 0x20, // unchanged
        0xab, 0xcd, 0x40, 0x00, // ident and DF unchanged
        0x40, 0x01, 0x7b, 0x0d, // TTL 64, ICMP, checksum 0x7b0d
        0x0a, 0x00, 0x00, 0x01, // source 10.0.0.1
        0x0a, 0x00, 0x00, 0x02, // destination 10.0.0.2
        0x00, 0x00, 0x0e, 0xf4, // echo reply, code 0, checksum 0x0ef4
        0x12, 0x34, 0x00, 0x07, // id, seq unchanged
        0x70, 0x69, 0x6e, 0x67, // "ping" unchanged
        0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, // padding, kept
        0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee,
    ];

    /// Run `respond` on `bytes` and return the result and the frame afterwards.
    fn run(bytes: &[u8]) -> (Result<(), DropReason>, Vec<u8>) {
        let mut frame = bytes.to_vec();
        let result = respond(&mut frame, PORT_MAC, owns);
        (result, frame)
    }

    /// PACKET_BYTES with `bytes[at..]` replaced by `value`, both checksums recomputed.
    fn with(at: usize, value: &[u8]) -> Vec<u8> {
        let mut bytes = PACKET_BYTES.to_vec();
        bytes[at..at + value.len()].copy_from_slice(value);
        let mut ip = ipv4::Packet::new_unchecked(&mut bytes[14..]);
        ip.fill_checksum();
        icmp::Packet::new_unchecked(ip.payload_mut()).fill_checksum();
        bytes
    }

    #[test]
    fn all_zero_echo_gets_the_checksum_0xffff() {
        // Echo request id 0, seq 0, no data: checksum !(0x0800) = 0xf7ff. The reply is all
        // zeros, whose sum is +0: checksum 0xffff (0x0000 would not verify).
        let mut frame = PACKET_BYTES[..42].to_vec();
        frame[16..18].copy_from_slice(&28u16.to_be_bytes());
        frame[24..26].copy_from_slice(&[0, 0]);
        let header = <&[u8; 20]>::try_from(&frame[14..34]).unwrap();
        let sum = checksum::ipv4_header(header);
        frame[24..26].copy_from_slice(&(!sum).to_be_bytes());
        frame[34..42].copy_from_slice(&[8, 0, 0xf7, 0xff, 0, 0, 0, 0]);
        assert_eq!(respond(&mut frame, PORT_MAC, owns), Ok(()));
        assert_eq!(frame[34..42], [0, 0, 0xff, 0xff, 0, 0, 0, 0]);
        assert!(icmp::Packet::new_checked(&frame[34..42])
            .unwrap()
            .verify_checksum());
    }

    #[test]
    fn reply() {
        let (result, frame) = run(&PACKET_BYTES);
        assert_eq!(result, Ok(()));
        assert_eq!(frame, REPLY_BYTES);
    }

    #[test]
    fn reply_matches_etherparse() {
        let mut ip = etherparse::Ipv4Header::new(
            0,
            64,
            etherparse::IpNumber::ICMP,
            VIP.octets(),
            REQUESTER.octets(),
        )
        .unwrap();
        ip.identification = 0xabcd;
        ip.dont_fragment = true;
        let mut theirs = Vec::new();
        etherparse::PacketBuilder::ethernet2(PORT_MAC.0, REQUESTER_MAC.0)
            .ip(etherparse::IpHeaders::Ipv4(ip, Default::default()))
            .icmpv4_echo_reply(0x1234, 7)
            .write(&mut theirs, b"ping")
            .unwrap();
        assert_eq!(theirs[..], REPLY_BYTES[..46]);
    }

    #[test]
    fn reply_checksum_incremental_equals_full() {
        // Odd-length data and a non-zero request code (accepted; the reply has code 0).
        for data in [
            &b""[..],
            b"p",
            b"pin",
            b"a longer payload of 33 bytes.....",
            &[0xff; 64],
        ] {
            let mut bytes = PACKET_BYTES[..34].to_vec();
            bytes.extend_from_slice(&[0x08, 0x05, 0, 0, 0x12, 0x34, 0x00, 0x07]);
            bytes.extend_from_slice(data);
            let total = u16::try_from(bytes.len() - 14).unwrap();
            let mut ip = ipv4::Packet::new_unchecked(&mut bytes[14..]);
            ip.set_total_len(total);
            ip.fill_checksum();
            icmp::Packet::new_unchecked(ip.payload_mut()).fill_checksum();
            let (result, frame) = run(&bytes);
            assert_eq!(result, Ok(()));
            let mut expected = frame.clone();
            let mut reply = icmp::Packet::new_unchecked(&mut expected[34..]);
            assert_eq!(reply.msg_type(), Message::EchoReply);
            assert_eq!(reply.msg_code(), 0);
            reply.fill_checksum();
            assert_eq!(frame, expected, "data {data:?}");
            assert_eq!(&frame[42..], data);
        }
    }

    #[test]
    fn padding_ignored() {
        // Different padding, same reply up to the IPv4 total length, padding unchanged.
        let mut bytes = PACKET_BYTES;
        bytes[46..].copy_from_slice(&[0; 14]);
        let (result, frame) = run(&bytes);
        assert_eq!(result, Ok(()));
        assert_eq!(frame[..46], REPLY_BYTES[..46]);
        assert_eq!(frame[46..], [0; 14]);
        // Unpadded (46 bytes).
        let (result, frame) = run(&PACKET_BYTES[..46]);
        assert_eq!(result, Ok(()));
        assert_eq!(frame, REPLY_BYTES[..46]);
    }

    #[test]
    fn not_ours() {
        let bytes = with(33, &[3]); // to 10.0.0.3
        assert_eq!(run(&bytes), (Err(DropReason::NotOurs), bytes.clone()));
    }

    #[test]
    fn ignored() {
        // Echo reply, destination unreachable, timestamp: not answered.
        for ty in [0, 3, 13] {
            let bytes = with(34, &[ty]);
            assert_eq!(run(&bytes), (Err(DropReason::IcmpIgnored), bytes.clone()));
        }
    }

    #[test]
    fn ignored_options() {
        // IHL 6 with a 4-byte NOP/EOL option: total length 36, the echo shifted by 4.
        let mut bytes = PACKET_BYTES[..34].to_vec();
        bytes[14] = 0x46;
        bytes[17] = 36;
        bytes.extend_from_slice(&[0x01, 0x01, 0x01, 0x00]);
        bytes.extend_from_slice(&PACKET_BYTES[34..46]);
        ipv4::Packet::new_unchecked(&mut bytes[14..]).fill_checksum();
        assert_eq!(ipv4::Packet::new_unchecked(&bytes[14..]).validate(), Ok(()));
        assert_eq!(run(&bytes), (Err(DropReason::IcmpIgnored), bytes.clone()));
    }

    #[test]
    fn ignored_group_requester() {
        for (at, value) in [
            (6, &[0x01, 0x00, 0x5e, 0x00, 0x00, 0x01][..]), // multicast MAC
            (6, &[0xff; 6][..]),                            // broadcast MAC
            (26, &[0, 0, 0, 0][..]),                        // 0.0.0.0
            (26, &[224, 0, 0, 1][..]),                      // multicast
            (26, &[255, 255, 255, 255][..]),                // limited broadcast
            (26, &[127, 0, 0, 1][..]),                      // loopback
        ] {
            let bytes = with(at, value);
            assert_eq!(run(&bytes), (Err(DropReason::IcmpIgnored), bytes.clone()));
        }
    }

    #[test]
    fn bad_icmp_checksum() {
        for at in 34..46 {
            let mut bytes = PACKET_BYTES;
            bytes[at] ^= 0x40;
            assert_eq!(
                run(&bytes),
                (Err(DropReason::BadIcmpChecksum), bytes.to_vec()),
                "byte {at}"
            );
        }
    }

    #[test]
    fn bad_ipv4() {
        let mut bytes = PACKET_BYTES;
        bytes[25] ^= 1; // header checksum
        assert_eq!(
            run(&bytes),
            (Err(DropReason::BadIpv4Header), bytes.to_vec())
        );
        let bytes = with(14, &[0x65]); // version 6
        assert_eq!(run(&bytes), (Err(DropReason::BadIpv4Header), bytes.clone()));
        let bytes = with(20, &[0x20]); // MF
        assert_eq!(run(&bytes), (Err(DropReason::Fragment), bytes.clone()));
        let bytes = with(23, &[6]); // TCP
        assert_eq!(
            run(&bytes),
            (Err(DropReason::UnsupportedProtocol), bytes.clone())
        );
        // Total length 27 leaves 7 bytes of ICMP: shorter than its header.
        let bytes = with(17, &[27]);
        assert_eq!(run(&bytes), (Err(DropReason::Truncated), bytes.clone()));
    }

    #[test]
    fn bad_ethertype() {
        for (ethertype, reason) in [
            ([0x81, 0x00], DropReason::VlanTagged),
            ([0x88, 0xa8], DropReason::VlanTagged),
            ([0x08, 0x06], DropReason::UnsupportedEthertype),
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
            let (result, frame) = run(&PACKET_BYTES[..len]);
            if len < 46 {
                assert_eq!(result, Err(DropReason::Truncated), "len {len}");
                assert_eq!(frame, PACKET_BYTES[..len]);
            } else {
                assert_eq!(result, Ok(()), "len {len}");
                assert_eq!(frame, REPLY_BYTES[..len]);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// Random bytes never panic, are rejected, and leave the frame untouched.
        #[test]
        fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let (result, frame) = run(&bytes);
            prop_assert!(result.is_err());
            prop_assert_eq!(frame, bytes);
        }

        /// A valid request with a few bytes changed, possibly truncated: never panics; a
        /// rejected frame is untouched, an answered one is a valid echo reply from the VIP.
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
            let (result, frame) = run(&bytes);
            if result.is_err() {
                prop_assert_eq!(frame, bytes);
                return Ok(());
            }
            prop_assert_eq!(frame.len(), bytes.len());
            let eth = ether::Packet::new_checked(&frame[..]).unwrap();
            prop_assert_eq!(eth.src_addr(), PORT_MAC);
            let ip = ipv4::Packet::new_checked(eth.payload()).unwrap();
            prop_assert_eq!(ip.validate(), Ok(()));
            prop_assert_eq!(ip.src_addr(), VIP);
            prop_assert_eq!(ip.ttl(), REPLY_TTL);
            let reply = icmp::Packet::new_checked(ip.payload()).unwrap();
            prop_assert!(reply.verify_checksum());
            prop_assert_eq!(reply.msg_type(), Message::EchoReply);
            prop_assert_eq!(reply.msg_code(), 0);
            let end = 14 + usize::from(ip.total_len());
            prop_assert_eq!(&frame[42..end], &bytes[42..end]);
            prop_assert_eq!(&frame[end..], &bytes[end..]);
        }
    }
}
