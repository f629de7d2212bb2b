//! IPv4 headers (RFC 791).
//!
//! [`Packet::validate`] is the gate every received IPv4 packet passes before any other stage
//! reads it. It checks, in this order:
//!
//! - the buffer holds the 20-byte fixed header (else [`DropReason::Truncated`]);
//! - version is 4 (else [`DropReason::BadIpv4Header`]);
//! - IHL ≥ 5 (else `BadIpv4Header`) and the header fits the buffer (else `Truncated`);
//! - total length ≥ the header length (else `BadIpv4Header`) and ≤ the buffer (else
//!   `Truncated`). A buffer *longer* than the total length is accepted: it is Ethernet padding
//!   (or trailing garbage), and [`Packet::payload`] ends at the total length, so callers must
//!   take the packet's end from `total_len()`, never from the frame length;
//! - the header checksum verifies (else `BadIpv4Header`);
//! - the options, if any, are well formed (else `BadIpv4Header`): a list of End of List (0),
//!   No Operation (1) and type-length-value options whose length is at least 2 and stays
//!   within the header, as the structural part of Linux's `ip_options_compile`, whose
//!   failure makes `ip_rcv_finish` drop the packet before IPVS sees it. The content of known
//!   options (pointers of route and timestamp options) is not checked;
//! - the packet is not a fragment: MF clear and fragment offset 0 (else
//!   [`DropReason::Fragment`], checked last, so a fragment is otherwise valid: the pipeline
//!   forwards TCP and UDP fragments without reassembly, `pipeline::fragment`).
//!
//! Deliberately not checked: TTL (DR and TUN do not route, NAT stages check it themselves),
//! the reserved flag bit, DSCP/ECN, the addresses (martian filtering is policy for the caller),
//! the protocol.
//!
//! **Options** (IHL > 5) are accepted by the view: [`Packet::header_len`] covers them and
//! [`Packet::payload`] starts after them. A stage that rewrites only fixed fields (addresses,
//! TTL) may forward them unchanged, adjusting no length. A stage whose correctness depends on
//! them must drop packets that carry any, with a counted reason: source routes (LSRR/SSRR) and
//! record route name addresses NAT does not rewrite, and an echo reply would have to update
//! them (RFC 1122 §3.2.2.6); the ICMP responder therefore drops echo requests with options.
//! [`Repr`] does not represent options: rvs builds only 20-byte headers.

use std::net::Ipv4Addr;

use super::checksum;
use super::{field::Field, read_bytes, read_u16, read_u8, write_bytes, write_u16, write_u8};
use crate::verdict::DropReason;

/// The IPv4 protocol field (IANA "Assigned Internet Protocol Numbers").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// ICMP, 1.
    Icmp,
    /// IP in IP (RFC 2003), 4: the LVS TUN forwarding method.
    IpIp,
    /// TCP, 6.
    Tcp,
    /// UDP, 17.
    Udp,
    /// GRE (RFC 2784), 47: the kernel's `--tun-type gre`.
    Gre,
    /// Any other protocol.
    Unknown(u8),
}

impl From<u8> for Protocol {
    fn from(value: u8) -> Self {
        match value {
            1 => Protocol::Icmp,
            4 => Protocol::IpIp,
            6 => Protocol::Tcp,
            17 => Protocol::Udp,
            47 => Protocol::Gre,
            other => Protocol::Unknown(other),
        }
    }
}

impl Protocol {
    /// The balanced transport protocol this is, if it is one (TCP or UDP).
    pub const fn l4(self) -> Option<conf::Proto> {
        match self {
            Protocol::Tcp => Some(conf::Proto::Tcp),
            Protocol::Udp => Some(conf::Proto::Udp),
            _ => None,
        }
    }
}

impl From<Protocol> for u8 {
    fn from(value: Protocol) -> Self {
        match value {
            Protocol::Icmp => 1,
            Protocol::IpIp => 4,
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Gre => 47,
            Protocol::Unknown(other) => other,
        }
    }
}

mod field {
    use super::Field;
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: Field = 2..4;
    pub const IDENT: Field = 4..6;
    pub const FLG_OFF: Field = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Field = 10..12;
    pub const SRC_ADDR: Field = 12..16;
    pub const DST_ADDR: Field = 16..20;
}

/// Length of the fixed header (IHL 5).
pub const HEADER_LEN: usize = field::DST_ADDR.end;
/// Largest header, options included (IHL 15).
pub const MAX_HEADER_LEN: usize = 60;

/// Don't Fragment, in the flags/fragment offset word.
const FLAG_DF: u16 = 0x4000;
/// More Fragments, in the flags/fragment offset word.
const FLAG_MF: u16 = 0x2000;
/// The fragment offset bits of the flags/fragment offset word.
const FRAG_OFFSET_MASK: u16 = 0x1fff;

/// A read/write view of an IPv4 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wrap a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wrap a received buffer, checking its lengths with [`Packet::check_len`]. Use
    /// [`Packet::validate`] before trusting the header.
    pub fn new_checked(buffer: T) -> Result<Packet<T>, DropReason> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Check the lengths the accessors rely on: fixed header, IHL, total length.
    ///
    /// # Errors
    /// [`DropReason::Truncated`] if the buffer is shorter than 20 bytes, the header length or
    /// the total length; [`DropReason::BadIpv4Header`] if IHL < 5 or the total length is
    /// shorter than the header.
    pub fn check_len(&self) -> Result<(), DropReason> {
        self.check_len_within(self.buffer.as_ref().len())
    }

    /// [`Packet::check_len`] for a view over at least the header, of a buffer of `len` bytes.
    #[inline]
    fn check_len_within(&self, len: usize) -> Result<(), DropReason> {
        if len < HEADER_LEN {
            return Err(DropReason::Truncated);
        }
        let header_len = self.header_len();
        if header_len < HEADER_LEN {
            return Err(DropReason::BadIpv4Header);
        }
        if header_len > len {
            return Err(DropReason::Truncated);
        }
        let total_len = usize::from(self.total_len());
        if total_len < header_len {
            return Err(DropReason::BadIpv4Header);
        }
        if total_len > len {
            return Err(DropReason::Truncated);
        }
        Ok(())
    }

    /// Validate a received header: lengths, version, checksum, no fragment (see the module
    /// documentation for the order and what is deliberately not checked).
    ///
    /// # Errors
    /// [`DropReason::Truncated`], [`DropReason::BadIpv4Header`] or [`DropReason::Fragment`].
    pub fn validate(&self) -> Result<(), DropReason> {
        let buffer = self.buffer.as_ref();
        match buffer.first_chunk::<HEADER_LEN>() {
            // The usual header, without options, read through a view of known size (no
            // bounds to check again); the lengths are checked against the whole buffer.
            Some(fixed) if read_u8(fixed, field::VER_IHL) & 0x0f == 5 => {
                Packet::new_unchecked(fixed).validate_within(buffer.len())
            }
            _ => self.validate_within(buffer.len()),
        }
    }

    /// [`Packet::validate`] for a view over at least the header, of a buffer of `len` bytes.
    #[inline]
    fn validate_within(&self, len: usize) -> Result<(), DropReason> {
        if len < HEADER_LEN {
            return Err(DropReason::Truncated);
        }
        // Version 4 is expected: an IPv6 packet under the IPv4 EtherType is malformed.
        if self.version() != 4 {
            return Err(DropReason::BadIpv4Header);
        }
        self.check_len_within(len)?;
        // Valid checksum is expected: rvs does not rely on RX checksum offload here.
        if !self.verify_checksum() {
            return Err(DropReason::BadIpv4Header);
        }
        // Malformed options: Linux drops the packet (ip_options_compile).
        if !options_well_formed(self.options()) {
            return Err(DropReason::BadIpv4Header);
        }
        // Fragments are not reassembled.
        if self.is_fragment() {
            return Err(DropReason::Fragment);
        }
        Ok(())
    }

    /// Consume the view, returning the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Return the version field.
    #[inline]
    pub fn version(&self) -> u8 {
        read_u8(self.buffer.as_ref(), field::VER_IHL) >> 4
    }

    /// Return the header length in bytes (the IHL field times 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(read_u8(self.buffer.as_ref(), field::VER_IHL) & 0x0f) * 4
    }

    /// Return the Differentiated Services Code Point (RFC 2474).
    #[inline]
    pub fn dscp(&self) -> u8 {
        read_u8(self.buffer.as_ref(), field::DSCP_ECN) >> 2
    }

    /// Return the Explicit Congestion Notification field (RFC 3168).
    #[inline]
    pub fn ecn(&self) -> u8 {
        read_u8(self.buffer.as_ref(), field::DSCP_ECN) & 0x03
    }

    /// Return the total length field.
    #[inline]
    pub fn total_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Return the identification field.
    #[inline]
    pub fn ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::IDENT)
    }

    /// Return the Don't Fragment flag.
    #[inline]
    pub fn dont_frag(&self) -> bool {
        read_u16(self.buffer.as_ref(), field::FLG_OFF) & FLAG_DF != 0
    }

    /// Return the More Fragments flag.
    #[inline]
    pub fn more_frags(&self) -> bool {
        read_u16(self.buffer.as_ref(), field::FLG_OFF) & FLAG_MF != 0
    }

    /// Return the fragment offset field, in units of 8 octets.
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::FLG_OFF) & FRAG_OFFSET_MASK
    }

    /// Query whether this is a fragment: MF set or a non-zero fragment offset.
    #[inline]
    pub fn is_fragment(&self) -> bool {
        read_u16(self.buffer.as_ref(), field::FLG_OFF) & (FLAG_MF | FRAG_OFFSET_MASK) != 0
    }

    /// Return the time to live field.
    #[inline]
    pub fn ttl(&self) -> u8 {
        read_u8(self.buffer.as_ref(), field::TTL)
    }

    /// Return the protocol field.
    #[inline]
    pub fn protocol(&self) -> Protocol {
        Protocol::from(self.protocol_number())
    }

    /// Return the protocol field as its number (a compare, where [`Packet::protocol`]'s
    /// conversion is a table lookup).
    #[inline]
    pub fn protocol_number(&self) -> u8 {
        read_u8(self.buffer.as_ref(), field::PROTOCOL)
    }

    /// Return the header checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Return the source address field.
    #[inline]
    pub fn src_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(read_bytes::<4>(self.buffer.as_ref(), field::SRC_ADDR))
    }

    /// Return the destination address field.
    #[inline]
    pub fn dst_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(read_bytes::<4>(self.buffer.as_ref(), field::DST_ADDR))
    }

    /// Return the whole header, options included (empty if the buffer is shorter).
    #[inline]
    pub fn header(&self) -> &[u8] {
        self.buffer.as_ref().get(..self.header_len()).unwrap_or(&[])
    }

    /// Return the options: the header bytes after the fixed 20 (empty if IHL is 5).
    #[inline]
    pub fn options(&self) -> &[u8] {
        self.header().get(HEADER_LEN..).unwrap_or(&[])
    }

    /// Return the payload: from the end of the header to the total length, so Ethernet
    /// padding is excluded. Empty if the lengths do not fit the buffer (see `check_len`).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let range = self.header_len()..usize::from(self.total_len());
        self.buffer.as_ref().get(range).unwrap_or(&[])
    }

    /// Query whether the header checksum verifies (the sum over the header is `0xffff`).
    /// False if the header does not fit the buffer.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        match <&[u8; HEADER_LEN]>::try_from(self.header()) {
            Ok(fixed) => checksum::ipv4_header_verifies(fixed),
            Err(_) => header_sum(self.header()) == Some(0xffff),
        }
    }
}

/// The one's-complement sum over `header` (options included), `None` if it is shorter than
/// the fixed header. A 20-byte header, the common case, takes the loop-free sum.
#[inline]
fn header_sum(header: &[u8]) -> Option<u16> {
    match <&[u8; HEADER_LEN]>::try_from(header) {
        Ok(fixed) => Some(checksum::ipv4_header(fixed)),
        Err(_) if header.len() > HEADER_LEN => Some(checksum::data(header)),
        Err(_) => None,
    }
}

/// Option kinds with no length byte (RFC 791).
const OPTION_END: u8 = 0;
const OPTION_NOP: u8 = 1;

/// Query whether `options` is a well-formed option list: End of List (the rest is ignored),
/// No Operation, or kind, length ≥ 2, and that many bytes within the list.
fn options_well_formed(mut options: &[u8]) -> bool {
    loop {
        match options {
            [] | [OPTION_END, ..] => return true,
            [OPTION_NOP, rest @ ..] => options = rest,
            [_, len, ..] if *len >= 2 => match options.get(usize::from(*len)..) {
                Some(rest) => options = rest,
                None => return false,
            },
            _ => return false,
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Set the version field.
    #[inline]
    pub fn set_version(&mut self, value: u8) {
        let byte = read_u8(self.buffer.as_ref(), field::VER_IHL);
        write_u8(
            self.buffer.as_mut(),
            field::VER_IHL,
            (byte & 0x0f) | (value << 4),
        );
    }

    /// Set the IHL field from a header length in bytes (a multiple of 4, at most 60; a
    /// longer one is written as 60).
    #[inline]
    pub fn set_header_len(&mut self, value: usize) {
        let byte = read_u8(self.buffer.as_ref(), field::VER_IHL);
        let ihl = u8::try_from(value.min(MAX_HEADER_LEN) / 4).unwrap_or(0x0f);
        write_u8(self.buffer.as_mut(), field::VER_IHL, (byte & 0xf0) | ihl);
    }

    /// Set the Differentiated Services Code Point.
    #[inline]
    pub fn set_dscp(&mut self, value: u8) {
        let byte = read_u8(self.buffer.as_ref(), field::DSCP_ECN);
        write_u8(
            self.buffer.as_mut(),
            field::DSCP_ECN,
            (byte & 0x03) | (value << 2),
        );
    }

    /// Set the Explicit Congestion Notification field.
    #[inline]
    pub fn set_ecn(&mut self, value: u8) {
        let byte = read_u8(self.buffer.as_ref(), field::DSCP_ECN);
        write_u8(
            self.buffer.as_mut(),
            field::DSCP_ECN,
            (byte & 0xfc) | (value & 0x03),
        );
    }

    /// Set the total length field.
    #[inline]
    pub fn set_total_len(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::LENGTH, value);
    }

    /// Set the identification field.
    #[inline]
    pub fn set_ident(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::IDENT, value);
    }

    /// Set the Don't Fragment flag.
    #[inline]
    pub fn set_dont_frag(&mut self, value: bool) {
        self.set_flag(FLAG_DF, value);
    }

    /// Set the More Fragments flag.
    #[inline]
    pub fn set_more_frags(&mut self, value: bool) {
        self.set_flag(FLAG_MF, value);
    }

    /// Clear the three flag bits (reserved, DF, MF), keeping the fragment offset.
    #[inline]
    pub fn clear_flags(&mut self) {
        let word = read_u16(self.buffer.as_ref(), field::FLG_OFF);
        write_u16(
            self.buffer.as_mut(),
            field::FLG_OFF,
            word & FRAG_OFFSET_MASK,
        );
    }

    fn set_flag(&mut self, flag: u16, value: bool) {
        let word = read_u16(self.buffer.as_ref(), field::FLG_OFF);
        let word = if value { word | flag } else { word & !flag };
        write_u16(self.buffer.as_mut(), field::FLG_OFF, word);
    }

    /// Set the fragment offset field, in units of 8 octets.
    #[inline]
    pub fn set_frag_offset(&mut self, value: u16) {
        let word = read_u16(self.buffer.as_ref(), field::FLG_OFF);
        let word = (word & !FRAG_OFFSET_MASK) | (value & FRAG_OFFSET_MASK);
        write_u16(self.buffer.as_mut(), field::FLG_OFF, word);
    }

    /// Set the time to live field.
    #[inline]
    pub fn set_ttl(&mut self, value: u8) {
        write_u8(self.buffer.as_mut(), field::TTL, value);
    }

    /// Set the protocol field.
    #[inline]
    pub fn set_protocol(&mut self, value: Protocol) {
        write_u8(self.buffer.as_mut(), field::PROTOCOL, value.into());
    }

    /// Set the header checksum field.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, value);
    }

    /// Set the source address field.
    #[inline]
    pub fn set_src_addr(&mut self, value: Ipv4Addr) {
        write_bytes(self.buffer.as_mut(), field::SRC_ADDR, value.octets());
    }

    /// Set the destination address field.
    #[inline]
    pub fn set_dst_addr(&mut self, value: Ipv4Addr) {
        write_bytes(self.buffer.as_mut(), field::DST_ADDR, value.octets());
    }

    /// Compute the header checksum over the header (options included) and store it.
    /// Does nothing if the header does not fit the buffer.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        if let Some(sum) = header_sum(self.header()) {
            self.set_checksum(checksum::finish(sum));
        }
    }

    /// Return the payload, mutably: from the end of the header to the total length.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let range = self.header_len()..usize::from(self.total_len());
        self.buffer.as_mut().get_mut(range).unwrap_or(&mut [])
    }
}

/// A high-level representation of a 20-byte IPv4 header, as rvs builds them (IP-in-IP
/// encapsulation, ICMP errors): no options, never a fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub src_addr: Ipv4Addr,
    pub dst_addr: Ipv4Addr,
    pub protocol: Protocol,
    /// Length of what follows the header; the total length is 20 more.
    pub payload_len: usize,
    pub ttl: u8,
    /// Differentiated Services Code Point, 6 bits.
    pub dscp: u8,
    /// Explicit Congestion Notification, 2 bits.
    pub ecn: u8,
    pub ident: u16,
    pub dont_frag: bool,
}

impl Repr {
    /// Parse a validated header. Options are not represented: `payload_len` counts from the
    /// end of the options.
    ///
    /// # Errors
    /// Those of [`Packet::validate`].
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr, DropReason> {
        packet.validate()?;
        Ok(Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            protocol: packet.protocol(),
            payload_len: packet.payload().len(),
            ttl: packet.ttl(),
            dscp: packet.dscp(),
            ecn: packet.ecn(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
        })
    }

    /// Return the length of the header this emits.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Write a 20-byte header, checksum included, into the start of `packet`. The payload is
    /// the caller's to write after it.
    ///
    /// # Errors
    /// [`DropReason::Truncated`] if the buffer is shorter than 20 bytes, and
    /// [`DropReason::BadIpv4Header`] if the total length would exceed 65535; nothing is
    /// written.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
    ) -> Result<(), DropReason> {
        if packet.buffer.as_ref().len() < HEADER_LEN {
            return Err(DropReason::Truncated);
        }
        let total_len = HEADER_LEN
            .checked_add(self.payload_len)
            .and_then(|len| u16::try_from(len).ok())
            .ok_or(DropReason::BadIpv4Header)?;
        packet.set_version(4);
        packet.set_header_len(HEADER_LEN);
        packet.set_dscp(self.dscp);
        packet.set_ecn(self.ecn);
        packet.set_total_len(total_len);
        packet.set_ident(self.ident);
        packet.clear_flags();
        packet.set_frag_offset(0);
        packet.set_dont_frag(self.dont_frag);
        packet.set_ttl(self.ttl);
        packet.set_protocol(self.protocol);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        packet.fill_checksum();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// 10.0.0.1 -> 10.0.0.2, UDP, total length 24, ident 0x1234, DF, TTL 64, a 4-byte payload,
    /// then 2 bytes of Ethernet padding that are not part of the packet.
    static PACKET_BYTES: [u8; 26] = [
        0x45, 0x00, 0x00, 0x18, // version 4, IHL 5, DSCP/ECN 0, total length 24
        0x12, 0x34, 0x40, 0x00, // ident 0x1234, DF, offset 0
        0x40, 0x11, 0x14, 0x9f, // TTL 64, UDP, checksum 0x149f
        0x0a, 0x00, 0x00, 0x01, // source 10.0.0.1
        0x0a, 0x00, 0x00, 0x02, // destination 10.0.0.2
        0xaa, 0xbb, 0xcc, 0xdd, // payload
        0x00, 0x00, // padding
    ];

    const SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    fn repr() -> Repr {
        Repr {
            src_addr: SRC,
            dst_addr: DST,
            protocol: Protocol::Udp,
            payload_len: 4,
            ttl: 64,
            dscp: 0,
            ecn: 0,
            ident: 0x1234,
            dont_frag: true,
        }
    }

    #[test]
    fn deconstruct() {
        let packet = Packet::new_checked(&PACKET_BYTES[..]).unwrap();
        assert_eq!(packet.validate(), Ok(()));
        assert_eq!(packet.version(), 4);
        assert_eq!(packet.header_len(), 20);
        assert_eq!(packet.dscp(), 0);
        assert_eq!(packet.ecn(), 0);
        assert_eq!(packet.total_len(), 24);
        assert_eq!(packet.ident(), 0x1234);
        assert!(packet.dont_frag());
        assert!(!packet.more_frags());
        assert_eq!(packet.frag_offset(), 0);
        assert!(!packet.is_fragment());
        assert_eq!(packet.ttl(), 64);
        assert_eq!(packet.protocol(), Protocol::Udp);
        assert_eq!(packet.checksum(), 0x149f);
        assert_eq!(packet.src_addr(), SRC);
        assert_eq!(packet.dst_addr(), DST);
        assert_eq!(packet.header(), &PACKET_BYTES[..20]);
        assert_eq!(packet.options(), &[] as &[u8]);
        // The payload ends at the total length: the padding is not part of it.
        assert_eq!(packet.payload(), &[0xaa, 0xbb, 0xcc, 0xdd]);
        assert!(packet.verify_checksum());
        // Cross-check with an independent implementation.
        let (theirs, _) = etherparse::Ipv4Header::from_slice(&PACKET_BYTES).unwrap();
        assert_eq!(theirs.calc_header_checksum(), 0x149f);
        assert_eq!(theirs.identification, 0x1234);
    }

    #[test]
    fn construct() {
        let mut bytes = [0xa5u8; 26];
        bytes[20..].copy_from_slice(&PACKET_BYTES[20..]);
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_version(4);
        packet.set_header_len(20);
        packet.set_dscp(0);
        packet.set_ecn(0);
        packet.set_total_len(24);
        packet.set_ident(0x1234);
        packet.clear_flags();
        packet.set_frag_offset(0);
        packet.set_more_frags(true);
        assert!(packet.more_frags());
        packet.set_more_frags(false);
        packet.set_dont_frag(true);
        packet.set_ttl(64);
        packet.set_protocol(Protocol::Udp);
        packet.set_src_addr(SRC);
        packet.set_dst_addr(DST);
        packet.fill_checksum();
        packet
            .payload_mut()
            .copy_from_slice(&[0xaa, 0xbb, 0xcc, 0xdd]);
        assert_eq!(bytes, PACKET_BYTES);
    }

    #[test]
    fn parse() {
        let packet = Packet::new_checked(&PACKET_BYTES[..]).unwrap();
        assert_eq!(Repr::parse(&packet), Ok(repr()));
    }

    #[test]
    fn emit() {
        let mut bytes = [0xa5u8; 26];
        bytes[20..].copy_from_slice(&PACKET_BYTES[20..]);
        repr()
            .emit(&mut Packet::new_unchecked(&mut bytes[..]))
            .unwrap();
        assert_eq!(bytes, PACKET_BYTES);
        assert_eq!(repr().buffer_len(), 20);
    }

    #[test]
    fn emit_matches_etherparse() {
        let repr = Repr {
            src_addr: Ipv4Addr::new(172, 16, 104, 123),
            dst_addr: Ipv4Addr::new(10, 0, 0, 3),
            protocol: Protocol::IpIp,
            payload_len: 52,
            ttl: 64,
            dscp: 46,
            ecn: 2,
            ident: 0xbeef,
            dont_frag: false,
        };
        let mut ours = [0u8; 20];
        repr.emit(&mut Packet::new_unchecked(&mut ours[..]))
            .unwrap();
        let mut theirs = etherparse::Ipv4Header::new(
            52,
            64,
            etherparse::IpNumber::IPV4,
            [172, 16, 104, 123],
            [10, 0, 0, 3],
        )
        .unwrap();
        theirs.identification = 0xbeef;
        theirs.dont_fragment = false;
        theirs.dscp = etherparse::IpDscp::try_new(46).unwrap();
        theirs.ecn = etherparse::IpEcn::try_new(2).unwrap();
        theirs.header_checksum = theirs.calc_header_checksum();
        assert_eq!(ours[..], theirs.to_bytes()[..]);
    }

    #[test]
    fn emit_errors() {
        let mut short = [0u8; 19];
        assert_eq!(
            repr().emit(&mut Packet::new_unchecked(&mut short[..])),
            Err(DropReason::Truncated)
        );
        assert_eq!(short, [0; 19]);
        let mut bytes = [0u8; 20];
        let too_long = Repr {
            payload_len: 65516,
            ..repr()
        };
        assert_eq!(
            too_long.emit(&mut Packet::new_unchecked(&mut bytes[..])),
            Err(DropReason::BadIpv4Header)
        );
        assert_eq!(bytes, [0; 20]);
        let longest = Repr {
            payload_len: 65515,
            ..repr()
        };
        longest
            .emit(&mut Packet::new_unchecked(&mut bytes[..]))
            .unwrap();
        assert_eq!(Packet::new_unchecked(&bytes[..]).total_len(), 65535);
        let too_long = Repr {
            payload_len: usize::MAX,
            ..repr()
        };
        assert_eq!(
            too_long.emit(&mut Packet::new_unchecked(&mut bytes[..])),
            Err(DropReason::BadIpv4Header)
        );
    }

    #[test]
    fn truncated() {
        // Shorter than the fixed header or than the total length.
        for len in 0..24 {
            let packet = Packet::new_unchecked(&PACKET_BYTES[..len]);
            assert_eq!(packet.check_len(), Err(DropReason::Truncated), "len {len}");
            assert_eq!(packet.validate(), Err(DropReason::Truncated), "len {len}");
        }
        // Exactly the total length, and with padding.
        for len in 24..=26 {
            assert_eq!(
                Packet::new_unchecked(&PACKET_BYTES[..len]).validate(),
                Ok(())
            );
        }
        // An unchecked view never panics: it reads zeros and an empty payload.
        let packet = Packet::new_unchecked(&PACKET_BYTES[..3]);
        assert_eq!(packet.total_len(), 0);
        assert_eq!(packet.src_addr(), Ipv4Addr::UNSPECIFIED);
        assert_eq!(packet.payload(), &[] as &[u8]);
        assert!(!packet.verify_checksum());
    }

    /// PACKET_BYTES with `bytes[at] = value` and the checksum recomputed.
    fn with(at: usize, value: u8) -> [u8; 26] {
        let mut bytes = PACKET_BYTES;
        bytes[at] = value;
        Packet::new_unchecked(&mut bytes[..]).fill_checksum();
        bytes
    }

    #[test]
    fn bad_version() {
        let bytes = with(0, 0x65);
        assert_eq!(
            Packet::new_unchecked(&bytes[..]).validate(),
            Err(DropReason::BadIpv4Header)
        );
    }

    #[test]
    fn bad_header_len() {
        for ihl in 0..5 {
            let mut bytes = PACKET_BYTES;
            bytes[0] = 0x40 | ihl;
            let packet = Packet::new_unchecked(&bytes[..]);
            assert_eq!(packet.check_len(), Err(DropReason::BadIpv4Header));
            assert_eq!(packet.validate(), Err(DropReason::BadIpv4Header));
        }
        // IHL 6 (24 bytes) exceeds a total length of 20: bad header.
        let mut bytes = with(0, 0x46);
        bytes[3] = 20;
        Packet::new_unchecked(&mut bytes[..]).fill_checksum();
        assert_eq!(
            Packet::new_unchecked(&bytes[..]).validate(),
            Err(DropReason::BadIpv4Header)
        );
        // IHL 15 (60 bytes) exceeds the 26-byte buffer: truncated.
        let bytes = with(0, 0x4f);
        assert_eq!(
            Packet::new_unchecked(&bytes[..]).validate(),
            Err(DropReason::Truncated)
        );
    }

    #[test]
    fn bad_total_len() {
        // Total length 19 < header 20.
        let bytes = with(3, 19);
        assert_eq!(
            Packet::new_unchecked(&bytes[..]).validate(),
            Err(DropReason::BadIpv4Header)
        );
        // Total length 27 > the 26-byte buffer.
        let bytes = with(3, 27);
        assert_eq!(
            Packet::new_unchecked(&bytes[..]).validate(),
            Err(DropReason::Truncated)
        );
        // Total length 26 covers the padding: valid, and the payload grows.
        let bytes = with(3, 26);
        let packet = Packet::new_unchecked(&bytes[..]);
        assert_eq!(packet.validate(), Ok(()));
        assert_eq!(packet.payload().len(), 6);
    }

    #[test]
    fn bad_checksum() {
        let mut bytes = PACKET_BYTES;
        bytes[11] ^= 0x01;
        let packet = Packet::new_unchecked(&bytes[..]);
        assert!(!packet.verify_checksum());
        assert_eq!(packet.validate(), Err(DropReason::BadIpv4Header));
        // A change anywhere in the header is caught.
        let mut bytes = PACKET_BYTES;
        bytes[15] = 9;
        assert_eq!(
            Packet::new_unchecked(&bytes[..]).validate(),
            Err(DropReason::BadIpv4Header)
        );
        // The payload is not covered.
        let mut bytes = PACKET_BYTES;
        bytes[21] = 0;
        assert_eq!(Packet::new_unchecked(&bytes[..]).validate(), Ok(()));
    }

    #[test]
    fn bad_fragment() {
        // MF set.
        let bytes = with(6, 0x20);
        let packet = Packet::new_unchecked(&bytes[..]);
        assert!(packet.more_frags());
        assert_eq!(packet.validate(), Err(DropReason::Fragment));
        // Offset 1 (8 bytes), last fragment.
        let bytes = with(7, 0x01);
        let packet = Packet::new_unchecked(&bytes[..]);
        assert_eq!(packet.frag_offset(), 1);
        assert_eq!(packet.validate(), Err(DropReason::Fragment));
        // Highest offset bit.
        let bytes = with(6, 0x50);
        let packet = Packet::new_unchecked(&bytes[..]);
        assert_eq!(packet.frag_offset(), 0x1000);
        assert!(packet.dont_frag());
        assert_eq!(packet.validate(), Err(DropReason::Fragment));
        // DF alone and the reserved bit are not fragments.
        let bytes = with(6, 0xc0);
        assert_eq!(Packet::new_unchecked(&bytes[..]).validate(), Ok(()));
    }

    #[test]
    fn options() {
        // IHL 6 with a 4-byte option (NOP, NOP, NOP, EOL), total length 28.
        let mut bytes = [0u8; 28];
        bytes[..4].copy_from_slice(&[0x46, 0x00, 0x00, 0x1c]);
        bytes[4..20].copy_from_slice(&PACKET_BYTES[4..20]);
        bytes[20..24].copy_from_slice(&[0x01, 0x01, 0x01, 0x00]);
        bytes[24..].copy_from_slice(&PACKET_BYTES[20..24]);
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.fill_checksum();
        assert_eq!(packet.validate(), Ok(()));
        assert_eq!(packet.header_len(), 24);
        assert_eq!(packet.options(), &[0x01, 0x01, 0x01, 0x00]);
        assert_eq!(packet.payload(), &[0xaa, 0xbb, 0xcc, 0xdd]);
        let (theirs, _) = etherparse::Ipv4Header::from_slice(&bytes).unwrap();
        assert_eq!(theirs.header_checksum, theirs.calc_header_checksum());
        // Repr leaves the options out.
        let repr = Repr::parse(&Packet::new_unchecked(&bytes[..])).unwrap();
        assert_eq!(repr.payload_len, 4);
    }

    #[test]
    fn malformed_options_are_refused() {
        // IHL 7 (8 bytes of options), total length 28, no payload.
        let with_options = |options: [u8; 8]| {
            let mut bytes = [0u8; 28];
            bytes[..4].copy_from_slice(&[0x47, 0x00, 0x00, 0x1c]);
            bytes[4..20].copy_from_slice(&PACKET_BYTES[4..20]);
            bytes[20..].copy_from_slice(&options);
            Packet::new_unchecked(&mut bytes[..]).fill_checksum();
            Packet::new_unchecked(bytes).validate()
        };
        for ok in [
            [0, 0, 0, 0, 0, 0, 0, 0],             // End of List
            [1, 1, 1, 1, 1, 1, 1, 0],             // NOPs, End
            [0x94, 4, 0, 0, 1, 1, 1, 1],          // Router Alert, NOPs
            [0x94, 4, 0, 0, 0, 0xff, 0xff, 0xff], // anything after End is ignored
            [0x44, 8, 5, 0, 0, 0, 0, 0],          // a whole 8-byte option
            [7, 7, 4, 0, 0, 0, 0, 0],             // Record Route, then End
        ] {
            assert_eq!(with_options(ok), Ok(()), "{ok:?}");
        }
        for bad in [
            [0x44, 0, 5, 0, 0, 0, 0, 0],    // length 0
            [0x94, 1, 0, 0, 0, 0, 0, 0],    // length 1
            [0x94, 9, 0, 0, 0, 0, 0, 0],    // longer than the list
            [1, 1, 1, 1, 1, 1, 1, 0x94],    // kind without its length byte
            [0x94, 4, 0, 0, 0x07, 5, 4, 0], // second option runs past the end
        ] {
            assert_eq!(with_options(bad), Err(DropReason::BadIpv4Header), "{bad:?}");
        }
    }

    #[test]
    fn header_len_setter() {
        let mut bytes = PACKET_BYTES;
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_header_len(24);
        assert_eq!(packet.header_len(), 24);
        assert_eq!(packet.version(), 4);
        packet.set_header_len(64);
        assert_eq!(packet.header_len(), 60);
        assert_eq!(bytes[0], 0x4f);
    }

    #[test]
    fn protocols() {
        for (value, protocol) in [
            (1, Protocol::Icmp),
            (4, Protocol::IpIp),
            (6, Protocol::Tcp),
            (17, Protocol::Udp),
            (47, Protocol::Gre),
            (50, Protocol::Unknown(50)),
        ] {
            assert_eq!(Protocol::from(value), protocol);
            assert_eq!(u8::from(protocol), value);
        }
    }

    proptest! {
        /// emit then parse gives the same Repr, and the header verifies.
        #[test]
        fn emit_parse_round_trip(
            src in any::<u32>(),
            dst in any::<u32>(),
            protocol in any::<u8>(),
            payload_len in 0usize..1480,
            ttl in any::<u8>(),
            dscp in 0u8..64,
            ecn in 0u8..4,
            ident in any::<u16>(),
            dont_frag in any::<bool>(),
        ) {
            let repr = Repr {
                src_addr: Ipv4Addr::from(src),
                dst_addr: Ipv4Addr::from(dst),
                protocol: Protocol::from(protocol),
                payload_len,
                ttl,
                dscp,
                ecn,
                ident,
                dont_frag,
            };
            let mut bytes = vec![0u8; 20 + payload_len];
            repr.emit(&mut Packet::new_unchecked(&mut bytes[..])).unwrap();
            let packet = Packet::new_checked(&bytes[..]).unwrap();
            prop_assert_eq!(Repr::parse(&packet), Ok(repr));
            let (theirs, _) = etherparse::Ipv4Header::from_slice(&bytes).unwrap();
            prop_assert_eq!(theirs.header_checksum, theirs.calc_header_checksum());
        }

        /// Incremental updates of the header checksum (NAT's address and TTL rewrites) equal
        /// a full recompute.
        #[test]
        fn incremental_checksum(new_src in any::<u32>(), new_dst in any::<u32>(), ttl in any::<u8>()) {
            let mut bytes = PACKET_BYTES;
            let mut packet = Packet::new_unchecked(&mut bytes[..]);
            let mut csum = packet.checksum();
            csum = checksum::update_u32(csum, u32::from(packet.src_addr()), new_src);
            csum = checksum::update_u32(csum, u32::from(packet.dst_addr()), new_dst);
            let old_word = u16::from_be_bytes([packet.ttl(), u8::from(packet.protocol())]);
            let new_word = u16::from_be_bytes([ttl, u8::from(packet.protocol())]);
            csum = checksum::update_u16(csum, old_word, new_word);
            packet.set_src_addr(Ipv4Addr::from(new_src));
            packet.set_dst_addr(Ipv4Addr::from(new_dst));
            packet.set_ttl(ttl);
            packet.fill_checksum();
            prop_assert_eq!(csum, packet.checksum());
            prop_assert_eq!(packet.validate(), Ok(()));
        }

        /// Arbitrary bytes never panic, and whatever validates has consistent lengths.
        #[test]
        fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let packet = Packet::new_unchecked(&bytes[..]);
            if packet.validate().is_ok() {
                prop_assert!(packet.header_len() >= 20);
                prop_assert!(usize::from(packet.total_len()) <= bytes.len());
                prop_assert_eq!(
                    packet.payload().len(),
                    usize::from(packet.total_len()) - packet.header_len()
                );
            }
            let _ = (packet.options(), packet.payload(), packet.verify_checksum());
        }
    }
}
