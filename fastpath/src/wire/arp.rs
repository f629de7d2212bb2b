//! ARP (RFC 826) for Ethernet and IPv4, the only combination rvs speaks.
//!
//! The view has the fixed layout of Ethernet/IPv4 ARP (hardware length 6, protocol length 4),
//! 28 bytes; [`Repr::parse`] rejects packets of any other hardware or protocol type or address
//! length. The view starts at the ARP header: the Ethernet padding after byte 28 is not part of
//! the packet and is ignored.
//!
//! Not checked here (policy for the responder in `l2::arp`): whether the sender addresses are
//! unicast, whether the Ethernet source matches the sender hardware address.

use std::net::Ipv4Addr;

use super::ether::{EtherType, EthernetAddress};
use super::{field::Field, read_bytes, read_u16, read_u8, write_bytes, write_u16, write_u8};
use crate::verdict::DropReason;

/// ARP hardware type for Ethernet (RFC 826, IANA "ar$hrd").
pub const HARDWARE_ETHERNET: u16 = 1;

/// ARP operation (RFC 826 "ar$op").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// A request, 1.
    Request,
    /// A reply, 2.
    Reply,
    /// Any other operation (RARP, InARP, ...).
    Unknown(u16),
}

impl From<u16> for Operation {
    fn from(value: u16) -> Self {
        match value {
            1 => Operation::Request,
            2 => Operation::Reply,
            other => Operation::Unknown(other),
        }
    }
}

impl From<Operation> for u16 {
    fn from(value: Operation) -> Self {
        match value {
            Operation::Request => 1,
            Operation::Reply => 2,
            Operation::Unknown(other) => other,
        }
    }
}

mod field {
    use super::Field;
    pub const HTYPE: Field = 0..2;
    pub const PTYPE: Field = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Field = 6..8;
    pub const SHA: Field = 8..14;
    pub const SPA: Field = 14..18;
    pub const THA: Field = 18..24;
    pub const TPA: Field = 24..28;
}

/// Length of an Ethernet/IPv4 ARP packet.
pub const HEADER_LEN: usize = field::TPA.end;

/// A read/write view of an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wrap a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wrap a received buffer, checking that it holds a full Ethernet/IPv4 ARP packet.
    pub fn new_checked(buffer: T) -> Result<Packet<T>, DropReason> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Check that the buffer holds the 28 bytes of an Ethernet/IPv4 ARP packet.
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

    /// Return the hardware type field.
    #[inline]
    pub fn hardware_type(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::HTYPE)
    }

    /// Return the protocol type field.
    #[inline]
    pub fn protocol_type(&self) -> EtherType {
        EtherType::from(read_u16(self.buffer.as_ref(), field::PTYPE))
    }

    /// Return the hardware address length field.
    #[inline]
    pub fn hardware_len(&self) -> u8 {
        read_u8(self.buffer.as_ref(), field::HLEN)
    }

    /// Return the protocol address length field.
    #[inline]
    pub fn protocol_len(&self) -> u8 {
        read_u8(self.buffer.as_ref(), field::PLEN)
    }

    /// Return the operation field.
    #[inline]
    pub fn operation(&self) -> Operation {
        Operation::from(read_u16(self.buffer.as_ref(), field::OPER))
    }

    /// Return the sender hardware address field.
    #[inline]
    pub fn sender_hardware_addr(&self) -> EthernetAddress {
        EthernetAddress(read_bytes(self.buffer.as_ref(), field::SHA))
    }

    /// Return the sender protocol address field.
    #[inline]
    pub fn sender_protocol_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(read_bytes::<4>(self.buffer.as_ref(), field::SPA))
    }

    /// Return the target hardware address field.
    #[inline]
    pub fn target_hardware_addr(&self) -> EthernetAddress {
        EthernetAddress(read_bytes(self.buffer.as_ref(), field::THA))
    }

    /// Return the target protocol address field.
    #[inline]
    pub fn target_protocol_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(read_bytes::<4>(self.buffer.as_ref(), field::TPA))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Set the hardware type field.
    #[inline]
    pub fn set_hardware_type(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::HTYPE, value);
    }

    /// Set the protocol type field.
    #[inline]
    pub fn set_protocol_type(&mut self, value: EtherType) {
        write_u16(self.buffer.as_mut(), field::PTYPE, value.into());
    }

    /// Set the hardware address length field.
    #[inline]
    pub fn set_hardware_len(&mut self, value: u8) {
        write_u8(self.buffer.as_mut(), field::HLEN, value);
    }

    /// Set the protocol address length field.
    #[inline]
    pub fn set_protocol_len(&mut self, value: u8) {
        write_u8(self.buffer.as_mut(), field::PLEN, value);
    }

    /// Set the operation field.
    #[inline]
    pub fn set_operation(&mut self, value: Operation) {
        write_u16(self.buffer.as_mut(), field::OPER, value.into());
    }

    /// Set the sender hardware address field.
    #[inline]
    pub fn set_sender_hardware_addr(&mut self, value: EthernetAddress) {
        write_bytes(self.buffer.as_mut(), field::SHA, value.0);
    }

    /// Set the sender protocol address field.
    #[inline]
    pub fn set_sender_protocol_addr(&mut self, value: Ipv4Addr) {
        write_bytes(self.buffer.as_mut(), field::SPA, value.octets());
    }

    /// Set the target hardware address field.
    #[inline]
    pub fn set_target_hardware_addr(&mut self, value: EthernetAddress) {
        write_bytes(self.buffer.as_mut(), field::THA, value.0);
    }

    /// Set the target protocol address field.
    #[inline]
    pub fn set_target_protocol_addr(&mut self, value: Ipv4Addr) {
        write_bytes(self.buffer.as_mut(), field::TPA, value.octets());
    }
}

/// A high-level representation of an Ethernet/IPv4 ARP packet. [`Repr::parse`] yields only
/// [`Operation::Request`] or [`Operation::Reply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub operation: Operation,
    pub sender_hardware_addr: EthernetAddress,
    pub sender_protocol_addr: Ipv4Addr,
    pub target_hardware_addr: EthernetAddress,
    pub target_protocol_addr: Ipv4Addr,
}

impl Repr {
    /// Parse and validate an ARP packet.
    ///
    /// # Errors
    /// - [`DropReason::Truncated`]: shorter than 28 bytes;
    /// - [`DropReason::BadArp`]: hardware type not Ethernet (1), protocol type not IPv4
    ///   (`0x0800`), hardware length not 6 or protocol length not 4;
    /// - [`DropReason::ArpIgnored`]: a well-formed Ethernet/IPv4 packet whose operation is
    ///   neither request nor reply (RARP, InARP): nothing rvs answers or learns from, as Linux
    ///   `arp_process` also drops them.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr, DropReason> {
        packet.check_len()?;
        if packet.hardware_type() != HARDWARE_ETHERNET
            || packet.protocol_type() != EtherType::Ipv4
            || packet.hardware_len() != 6
            || packet.protocol_len() != 4
        {
            return Err(DropReason::BadArp);
        }
        let operation = packet.operation();
        if let Operation::Unknown(_) = operation {
            return Err(DropReason::ArpIgnored);
        }
        Ok(Repr {
            operation,
            sender_hardware_addr: packet.sender_hardware_addr(),
            sender_protocol_addr: packet.sender_protocol_addr(),
            target_hardware_addr: packet.target_hardware_addr(),
            target_protocol_addr: packet.target_protocol_addr(),
        })
    }

    /// Return the length of the packet this emits.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Write the packet into the first [`HEADER_LEN`] bytes of `packet`.
    ///
    /// # Errors
    /// [`DropReason::Truncated`] if the buffer is shorter; nothing is written.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
    ) -> Result<(), DropReason> {
        packet.check_len()?;
        packet.set_hardware_type(HARDWARE_ETHERNET);
        packet.set_protocol_type(EtherType::Ipv4);
        packet.set_hardware_len(6);
        packet.set_protocol_len(4);
        packet.set_operation(self.operation);
        packet.set_sender_hardware_addr(self.sender_hardware_addr);
        packet.set_sender_protocol_addr(self.sender_protocol_addr);
        packet.set_target_hardware_addr(self.target_hardware_addr);
        packet.set_target_protocol_addr(self.target_protocol_addr);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request "who has 10.0.0.1? tell 10.0.0.2", followed by 2 bytes of Ethernet padding.
    static PACKET_BYTES: [u8; 30] = [
        0x00, 0x01, // hardware type: Ethernet
        0x08, 0x00, // protocol type: IPv4
        0x06, 0x04, // hardware length 6, protocol length 4
        0x00, 0x01, // operation: request
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // sender hardware address
        0x0a, 0x00, 0x00, 0x02, // sender protocol address 10.0.0.2
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // target hardware address (unknown)
        0x0a, 0x00, 0x00, 0x01, // target protocol address 10.0.0.1
        0x00, 0x00, // padding
    ];

    const SHA: EthernetAddress = EthernetAddress([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);

    fn repr() -> Repr {
        Repr {
            operation: Operation::Request,
            sender_hardware_addr: SHA,
            sender_protocol_addr: Ipv4Addr::new(10, 0, 0, 2),
            target_hardware_addr: EthernetAddress::UNSPECIFIED,
            target_protocol_addr: Ipv4Addr::new(10, 0, 0, 1),
        }
    }

    #[test]
    fn deconstruct() {
        let packet = Packet::new_checked(&PACKET_BYTES[..]).unwrap();
        assert_eq!(packet.hardware_type(), 1);
        assert_eq!(packet.protocol_type(), EtherType::Ipv4);
        assert_eq!(packet.hardware_len(), 6);
        assert_eq!(packet.protocol_len(), 4);
        assert_eq!(packet.operation(), Operation::Request);
        assert_eq!(packet.sender_hardware_addr(), SHA);
        assert_eq!(packet.sender_protocol_addr(), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(packet.target_hardware_addr(), EthernetAddress::UNSPECIFIED);
        assert_eq!(packet.target_protocol_addr(), Ipv4Addr::new(10, 0, 0, 1));
    }

    #[test]
    fn construct() {
        let mut bytes = [0xa5u8; 28];
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_hardware_type(1);
        packet.set_protocol_type(EtherType::Ipv4);
        packet.set_hardware_len(6);
        packet.set_protocol_len(4);
        packet.set_operation(Operation::Request);
        packet.set_sender_hardware_addr(SHA);
        packet.set_sender_protocol_addr(Ipv4Addr::new(10, 0, 0, 2));
        packet.set_target_hardware_addr(EthernetAddress::UNSPECIFIED);
        packet.set_target_protocol_addr(Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(bytes[..], PACKET_BYTES[..28]);
    }

    #[test]
    fn parse() {
        let packet = Packet::new_checked(&PACKET_BYTES[..]).unwrap();
        assert_eq!(Repr::parse(&packet), Ok(repr()));
    }

    #[test]
    fn emit() {
        let mut bytes = [0xa5u8; 28];
        repr()
            .emit(&mut Packet::new_unchecked(&mut bytes[..]))
            .unwrap();
        assert_eq!(bytes[..], PACKET_BYTES[..28]);
        assert_eq!(repr().buffer_len(), 28);
        let mut short = [0u8; 27];
        assert_eq!(
            repr().emit(&mut Packet::new_unchecked(&mut short[..])),
            Err(DropReason::Truncated)
        );
        assert_eq!(short, [0; 27]);
    }

    #[test]
    fn truncated() {
        for len in 0..HEADER_LEN {
            let packet = Packet::new_unchecked(&PACKET_BYTES[..len]);
            assert_eq!(packet.check_len(), Err(DropReason::Truncated));
            assert_eq!(Repr::parse(&packet), Err(DropReason::Truncated));
        }
        assert!(Packet::new_checked(&PACKET_BYTES[..HEADER_LEN]).is_ok());
    }

    fn with(at: usize, value: u8) -> [u8; 30] {
        let mut bytes = PACKET_BYTES;
        bytes[at] = value;
        bytes
    }

    #[test]
    fn bad_hardware_type() {
        let bytes = with(1, 6); // IEEE 802
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(Repr::parse(&packet), Err(DropReason::BadArp));
    }

    #[test]
    fn bad_protocol_type() {
        let bytes = with(2, 0x86); // 0x8600
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(Repr::parse(&packet), Err(DropReason::BadArp));
    }

    #[test]
    fn bad_hardware_len() {
        let bytes = with(4, 8);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(Repr::parse(&packet), Err(DropReason::BadArp));
    }

    #[test]
    fn bad_protocol_len() {
        let bytes = with(5, 16);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(Repr::parse(&packet), Err(DropReason::BadArp));
    }

    #[test]
    fn bad_operation() {
        // Reply parses; RARP request (3) and the zero operation are ignored, not malformed.
        let bytes = with(7, 2);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(Repr::parse(&packet).unwrap().operation, Operation::Reply);
        for op in [0, 3, 8] {
            let bytes = with(7, op);
            let packet = Packet::new_checked(&bytes[..]).unwrap();
            assert_eq!(packet.operation(), Operation::Unknown(u16::from(op)));
            assert_eq!(Repr::parse(&packet), Err(DropReason::ArpIgnored));
        }
        let bytes = with(6, 1); // 0x0101
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(Repr::parse(&packet), Err(DropReason::ArpIgnored));
    }

    #[test]
    fn operations() {
        for (value, op) in [
            (1, Operation::Request),
            (2, Operation::Reply),
            (4, Operation::Unknown(4)),
        ] {
            assert_eq!(Operation::from(value), op);
            assert_eq!(u16::from(op), value);
        }
    }

    #[test]
    fn cross_check_etherparse() {
        let theirs = etherparse::ArpEthIpv4Packet {
            operation: etherparse::ArpOperation::REQUEST,
            sender_mac: SHA.0,
            sender_ipv4: [10, 0, 0, 2],
            target_mac: [0; 6],
            target_ipv4: [10, 0, 0, 1],
        };
        assert_eq!(theirs.to_bytes()[..], PACKET_BYTES[..28]);
    }
}
