//! DR (direct routing, `ipvsadm -g`, the default method): the packet goes to the real server
//! unchanged, in a new Ethernet frame, as spec §4.3 describes `ip_vs_dr_xmit`.
//!
//! What changes: the Ethernet destination (the real server's MAC: it is on link and has the
//! VIP on a non-ARPing interface) and the Ethernet source (the egress port's MAC).
//!
//! What deliberately does not change: everything else. The IPv4 packet keeps the client's
//! source, the VIP as destination, the TTL (see [`xmit`](super)), the ports (a DR service
//! forwards to the virtual port: ipvsadm forces `rport = vport`) and every checksum; the
//! EtherType; the frame length, Ethernet padding included. Replies go from the real server
//! straight to the client and never come back through rvs.
//!
//! Not done here: an MTU check. The packet leaves with the size it arrived with; the caller
//! must not forward from a port with a larger MTU than the egress port's (Linux checks the
//! route MTU in `__ip_vs_get_out_rt` and answers "fragmentation needed" for DF packets).

use super::Link;
use crate::verdict::DropReason;
use crate::wire::ether::{self, EtherType};

/// Forward `frame` (the whole Ethernet frame of an IPv4 packet) to a real server on link:
/// Ethernet source = `link.port_mac`, destination = `link.next_hop_mac` (the real server's
/// MAC). The IPv4 packet is neither read beyond the EtherType nor changed: the caller validated
/// it before looking up the connection.
///
/// # Errors
/// [`DropReason::Truncated`] for a frame shorter than the Ethernet header,
/// [`DropReason::VlanTagged`] or [`DropReason::UnsupportedEthertype`] if it is not IPv4. The
/// frame is unchanged.
pub fn forward(frame: &mut [u8], link: Link) -> Result<(), DropReason> {
    match ether::Packet::new_checked(&*frame)?.ethertype() {
        EtherType::Ipv4 => {}
        ethertype if ethertype.is_vlan() => return Err(DropReason::VlanTagged),
        _ => return Err(DropReason::UnsupportedEthertype),
    }
    super::rewrite_ether(frame, link)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xmit::testing::{PORT_MAC, REAL_MAC};
    use proptest::prelude::*;

    const LINK: Link = Link {
        port_mac: PORT_MAC,
        next_hop_mac: REAL_MAC,
    };

    /// A UDP datagram 198.51.100.7:40312 -> 203.0.113.10:53 from the router, padded to 60.
    static PACKET_BYTES: [u8; 60] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // Ethernet destination: port
        0x52, 0x54, 0x00, 0x00, 0x00, 0xfe, // Ethernet source: router
        0x08, 0x00, // IPv4
        0x45, 0x00, 0x00, 0x1e, // total length 30
        0x1c, 0x46, 0x40, 0x00, // ident, DF
        0x39, 0x11, 0xbf, 0x43, // TTL 57, UDP, checksum 0xbf43
        0xc6, 0x33, 0x64, 0x07, // 198.51.100.7
        0xcb, 0x00, 0x71, 0x0a, // 203.0.113.10
        0x9d, 0x78, 0x00, 0x35, // 40312 -> 53
        0x00, 0x0a, 0x9a, 0x84, // length 10, checksum 0x9a84
        0x61, 0x62, // "ab"
        0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, // padding
        0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee,
    ];

    #[test]
    fn rewrites_only_ethernet_addresses() {
        let mut bytes = PACKET_BYTES;
        assert_eq!(forward(&mut bytes, LINK), Ok(()));
        assert_eq!(
            &bytes[..12],
            &[
                0x52, 0x54, 0x00, 0x00, 0x00, 0x03, // destination: the real server
                0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // source: the port
            ]
        );
        // IPv4 (TTL, addresses, checksums), UDP and the padding: byte for byte.
        assert_eq!(&bytes[12..], &PACKET_BYTES[12..]);
        let (ip, _) = etherparse::Ipv4Header::from_slice(&bytes[14..]).unwrap();
        assert_eq!(ip.header_checksum, ip.calc_header_checksum());
        assert_eq!(ip.time_to_live, 57);
        assert_eq!(ip.destination, [203, 0, 113, 10]);
        let (udp, data) = etherparse::UdpHeader::from_slice(&bytes[34..44]).unwrap();
        assert_eq!(udp.checksum, udp.calc_checksum_ipv4(&ip, data).unwrap());
    }

    #[test]
    fn refused_frames_unchanged() {
        for (ethertype, reason) in [
            ([0x81, 0x00], DropReason::VlanTagged),
            ([0x88, 0xa8], DropReason::VlanTagged),
            ([0x08, 0x06], DropReason::UnsupportedEthertype),
            ([0x86, 0xdd], DropReason::UnsupportedEthertype),
        ] {
            let mut bytes = PACKET_BYTES;
            bytes[12..14].copy_from_slice(&ethertype);
            let before = bytes;
            assert_eq!(forward(&mut bytes, LINK), Err(reason));
            assert_eq!(bytes, before);
        }
        for len in 0..ether::HEADER_LEN {
            let mut bytes = PACKET_BYTES[..len].to_vec();
            assert_eq!(forward(&mut bytes, LINK), Err(DropReason::Truncated));
            assert_eq!(bytes, PACKET_BYTES[..len]);
        }
    }

    proptest! {
        /// Any bytes: never a panic; refused frames are unchanged, forwarded ones differ in the
        /// Ethernet addresses only.
        #[test]
        fn random_bytes(mut bytes in proptest::collection::vec(any::<u8>(), 0..80), ipv4 in any::<bool>()) {
            if ipv4 && bytes.len() >= 14 {
                bytes[12..14].copy_from_slice(&[0x08, 0x00]);
            }
            let before = bytes.clone();
            match forward(&mut bytes, LINK) {
                Ok(()) => {
                    prop_assert_eq!(&bytes[..6], &REAL_MAC.0);
                    prop_assert_eq!(&bytes[6..12], &PORT_MAC.0);
                    prop_assert_eq!(&bytes[12..], &before[12..]);
                }
                Err(_) => prop_assert_eq!(bytes, before),
            }
        }
    }
}
