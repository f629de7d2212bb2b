//! Ethernet II frames (IEEE 802.3 with an EtherType, RFC 894): destination, source, EtherType.
//!
//! The view covers the 14-byte header and everything after it; the frame check sequence is not
//! part of the buffer (NICs strip it). A received frame may carry padding up to
//! [`MIN_FRAME_LEN`] after its network-layer packet: the network-layer length field (IPv4 total
//! length), never the frame length, tells where that packet ends.
//!
//! VLAN tags (802.1Q `0x8100`, 802.1ad `0x88a8`) are recognised only so that tagged frames can
//! be counted as [`DropReason::VlanTagged`]; rvs configures no VLANs and does not parse tags.

use core::fmt;

use super::{field::Field, field::Rest, read_bytes, read_u16, write_bytes, write_u16};
use crate::verdict::DropReason;

/// A 48-bit Ethernet (MAC) address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct EthernetAddress(pub [u8; 6]);

impl EthernetAddress {
    /// The broadcast address `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: EthernetAddress = EthernetAddress([0xff; 6]);
    /// The all-zero address, used for an unknown target hardware address in ARP.
    pub const UNSPECIFIED: EthernetAddress = EthernetAddress([0; 6]);

    /// Return the address as bytes.
    pub const fn as_bytes(&self) -> &[u8; 6] {
        &self.0
    }

    /// Query whether this is the broadcast address.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// Query whether the group bit (I/G, least significant bit of the first octet) is set:
    /// multicast, broadcast included.
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// Query whether this is an individual (unicast) address that is not all zeros.
    pub fn is_unicast(&self) -> bool {
        !self.is_multicast() && *self != Self::UNSPECIFIED
    }
}

impl From<[u8; 6]> for EthernetAddress {
    fn from(bytes: [u8; 6]) -> Self {
        EthernetAddress(bytes)
    }
}

impl From<EthernetAddress> for [u8; 6] {
    fn from(addr: EthernetAddress) -> Self {
        addr.0
    }
}

impl fmt::Display for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// The EtherType field (IEEE 802.3 clause 3.2.6, IANA "IEEE 802 Numbers").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EtherType {
    /// IPv4, `0x0800`.
    Ipv4,
    /// ARP, `0x0806`.
    Arp,
    /// 802.1Q VLAN tag, `0x8100`.
    Vlan,
    /// 802.1ad (QinQ) service tag, `0x88a8`.
    QinQ,
    /// IPv6, `0x86dd`.
    Ipv6,
    /// Any other value (including 802.3 length fields, < `0x0600`).
    Unknown(u16),
}

impl EtherType {
    /// Query whether this is a VLAN tag (802.1Q or 802.1ad).
    pub const fn is_vlan(self) -> bool {
        matches!(self, EtherType::Vlan | EtherType::QinQ)
    }
}

impl From<u16> for EtherType {
    fn from(value: u16) -> Self {
        match value {
            0x0800 => EtherType::Ipv4,
            0x0806 => EtherType::Arp,
            0x8100 => EtherType::Vlan,
            0x88a8 => EtherType::QinQ,
            0x86dd => EtherType::Ipv6,
            other => EtherType::Unknown(other),
        }
    }
}

impl From<EtherType> for u16 {
    fn from(value: EtherType) -> Self {
        match value {
            EtherType::Ipv4 => 0x0800,
            EtherType::Arp => 0x0806,
            EtherType::Vlan => 0x8100,
            EtherType::QinQ => 0x88a8,
            EtherType::Ipv6 => 0x86dd,
            EtherType::Unknown(other) => other,
        }
    }
}

mod field {
    use super::{Field, Rest};
    pub const DESTINATION: Field = 0..6;
    pub const SOURCE: Field = 6..12;
    pub const ETHERTYPE: Field = 12..14;
    pub const PAYLOAD: Rest = 14..;
}

/// Length of the Ethernet II header.
pub const HEADER_LEN: usize = field::PAYLOAD.start;

/// Minimum Ethernet frame length without the frame check sequence (IEEE 802.3 §4.2.3.3):
/// shorter frames are padded to this length.
pub const MIN_FRAME_LEN: usize = 60;

/// A read/write view of an Ethernet II frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wrap a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wrap a received buffer, checking that it holds a full header.
    pub fn new_checked(buffer: T) -> Result<Packet<T>, DropReason> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Check that the buffer holds the 14-byte header.
    ///
    /// # Errors
    /// [`DropReason::Truncated`] if it is shorter.
    pub fn check_len(&self) -> Result<(), DropReason> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(DropReason::Truncated)
        } else {
            Ok(())
        }
    }

    /// Consume the view, returning the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Return the destination address field.
    #[inline]
    pub fn dst_addr(&self) -> EthernetAddress {
        EthernetAddress(read_bytes(self.buffer.as_ref(), field::DESTINATION))
    }

    /// Return the source address field.
    #[inline]
    pub fn src_addr(&self) -> EthernetAddress {
        EthernetAddress(read_bytes(self.buffer.as_ref(), field::SOURCE))
    }

    /// Return the EtherType field.
    #[inline]
    pub fn ethertype(&self) -> EtherType {
        EtherType::from(read_u16(self.buffer.as_ref(), field::ETHERTYPE))
    }

    /// Return the payload: everything after the header, padding included.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        self.buffer.as_ref().get(field::PAYLOAD).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Set the destination address field.
    #[inline]
    pub fn set_dst_addr(&mut self, value: EthernetAddress) {
        write_bytes(self.buffer.as_mut(), field::DESTINATION, value.0);
    }

    /// Set the source address field.
    #[inline]
    pub fn set_src_addr(&mut self, value: EthernetAddress) {
        write_bytes(self.buffer.as_mut(), field::SOURCE, value.0);
    }

    /// Set the EtherType field.
    #[inline]
    pub fn set_ethertype(&mut self, value: EtherType) {
        write_u16(self.buffer.as_mut(), field::ETHERTYPE, value.into());
    }

    /// Return the payload, mutably.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        self.buffer
            .as_mut()
            .get_mut(field::PAYLOAD)
            .unwrap_or(&mut [])
    }
}

/// A high-level representation of an Ethernet II header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub src_addr: EthernetAddress,
    pub dst_addr: EthernetAddress,
    pub ethertype: EtherType,
}

impl Repr {
    /// Parse a header from a checked view. Every address and EtherType is representable.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr, DropReason> {
        packet.check_len()?;
        Ok(Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            ethertype: packet.ethertype(),
        })
    }

    /// Return the length of the header this emits.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Write the header into the first [`HEADER_LEN`] bytes of `packet`.
    ///
    /// # Errors
    /// [`DropReason::Truncated`] if the buffer is shorter than the header; nothing is written.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
    ) -> Result<(), DropReason> {
        packet.check_len()?;
        packet.set_dst_addr(self.dst_addr);
        packet.set_src_addr(self.src_addr);
        packet.set_ethertype(self.ethertype);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static PACKET_BYTES: [u8; 18] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // destination
        0x52, 0x54, 0x00, 0xab, 0xcd, 0xef, // source
        0x08, 0x00, // IPv4
        0xaa, 0xbb, 0xcc, 0xdd, // payload
    ];

    const DST: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x01]);
    const SRC: EthernetAddress = EthernetAddress([0x52, 0x54, 0x00, 0xab, 0xcd, 0xef]);

    #[test]
    fn deconstruct() {
        let packet = Packet::new_checked(&PACKET_BYTES[..]).unwrap();
        assert_eq!(packet.dst_addr(), DST);
        assert_eq!(packet.src_addr(), SRC);
        assert_eq!(packet.ethertype(), EtherType::Ipv4);
        assert_eq!(packet.payload(), &[0xaa, 0xbb, 0xcc, 0xdd]);
    }

    #[test]
    fn construct() {
        let mut bytes = [0u8; 18];
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_dst_addr(DST);
        packet.set_src_addr(SRC);
        packet.set_ethertype(EtherType::Ipv4);
        packet
            .payload_mut()
            .copy_from_slice(&[0xaa, 0xbb, 0xcc, 0xdd]);
        assert_eq!(bytes, PACKET_BYTES);
    }

    #[test]
    fn parse() {
        let repr = Repr::parse(&Packet::new_unchecked(&PACKET_BYTES[..])).unwrap();
        assert_eq!(
            repr,
            Repr {
                src_addr: SRC,
                dst_addr: DST,
                ethertype: EtherType::Ipv4
            }
        );
    }

    #[test]
    fn emit() {
        let repr = Repr {
            src_addr: SRC,
            dst_addr: DST,
            ethertype: EtherType::Ipv4,
        };
        let mut bytes = [0u8; 18];
        bytes[14..].copy_from_slice(&PACKET_BYTES[14..]);
        repr.emit(&mut Packet::new_unchecked(&mut bytes[..]))
            .unwrap();
        assert_eq!(bytes, PACKET_BYTES);
        assert_eq!(repr.buffer_len(), 14);
        let mut short = [0u8; 13];
        assert_eq!(
            repr.emit(&mut Packet::new_unchecked(&mut short[..])),
            Err(DropReason::Truncated)
        );
        assert_eq!(short, [0; 13]);
    }

    #[test]
    fn truncated() {
        for len in 0..HEADER_LEN {
            assert_eq!(
                Packet::new_checked(&PACKET_BYTES[..len]),
                Err(DropReason::Truncated)
            );
        }
        let packet = Packet::new_checked(&PACKET_BYTES[..HEADER_LEN]).unwrap();
        assert_eq!(packet.payload(), &[] as &[u8]);
        // An unchecked view of a short buffer reads zeros rather than panicking.
        let packet = Packet::new_unchecked(&PACKET_BYTES[..8]);
        assert_eq!(packet.src_addr(), EthernetAddress([0; 6]));
        assert_eq!(packet.ethertype(), EtherType::Unknown(0));
    }

    #[test]
    fn ethertypes() {
        for (value, ty) in [
            (0x0800, EtherType::Ipv4),
            (0x0806, EtherType::Arp),
            (0x8100, EtherType::Vlan),
            (0x88a8, EtherType::QinQ),
            (0x86dd, EtherType::Ipv6),
            (0x88cc, EtherType::Unknown(0x88cc)),
        ] {
            assert_eq!(EtherType::from(value), ty);
            assert_eq!(u16::from(ty), value);
        }
        assert!(EtherType::Vlan.is_vlan());
        assert!(EtherType::QinQ.is_vlan());
        assert!(!EtherType::Ipv4.is_vlan());
    }

    #[test]
    fn addresses() {
        assert!(EthernetAddress::BROADCAST.is_broadcast());
        assert!(EthernetAddress::BROADCAST.is_multicast());
        assert!(!EthernetAddress::BROADCAST.is_unicast());
        assert!(EthernetAddress([0x01, 0x00, 0x5e, 0, 0, 1]).is_multicast());
        assert!(SRC.is_unicast());
        assert!(!EthernetAddress::UNSPECIFIED.is_unicast());
        assert_eq!(SRC.to_string(), "52:54:00:ab:cd:ef");
        assert_eq!(SRC.as_bytes(), &[0x52, 0x54, 0x00, 0xab, 0xcd, 0xef]);
        let bytes: [u8; 6] = SRC.into();
        assert_eq!(EthernetAddress::from(bytes), SRC);
    }
}
