//! ICMPv4 messages (RFC 792).
//!
//! The view covers one ICMP message: give it the IPv4 payload
//! ([`ipv4::Packet::payload`](super::ipv4::Packet::payload)), which ends at the IP total length,
//! never the rest of the frame, since the checksum covers exactly the message.
//!
//! Every message starts with type, code and checksum, then four bytes whose meaning depends on
//! the type: identifier and sequence number for echo (RFC 792 "Echo or Echo Reply Message"),
//! the next-hop MTU for "fragmentation needed" (RFC 1191 §4), unused for the other errors.
//!
//! The error messages rvs relays to connections, as LVS does (`ip_vs_in_icmp`), are destination
//! unreachable (3), source quench (4) and time exceeded (11). They carry the original
//! datagram's IP header and at least its first 8 bytes (RFC 792; RFC 1812 §4.3.2.3 allows
//! more): [`Packet::embedded`] checks that much and splits it into an IPv4 header view and the
//! bytes after it (the TCP/UDP ports). The embedded header's total length is the original
//! datagram's, which is longer than what is embedded, and its checksum is not verified: use the
//! embedded view's fixed fields, not its `check_len`, `validate` or `payload`.

use super::checksum;
use super::ipv4;
use super::{
    field::Field, field::Rest, read_u16, read_u32, read_u8, write_u16, write_u32, write_u8,
};
use crate::verdict::DropReason;

/// The ICMP type field (IANA "ICMP Type Numbers").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Message {
    /// Echo reply, 0.
    EchoReply,
    /// Destination unreachable, 3.
    DstUnreachable,
    /// Source quench, 4 (deprecated by RFC 6633, still relayed).
    SourceQuench,
    /// Redirect, 5.
    Redirect,
    /// Echo request, 8.
    EchoRequest,
    /// Time exceeded, 11.
    TimeExceeded,
    /// Parameter problem, 12.
    ParamProblem,
    /// Any other type.
    Unknown(u8),
}

impl Message {
    /// Query whether this is an error message that rvs relays to the connection it concerns
    /// (types 3, 4 and 11, those `ip_vs_in_icmp` handles).
    pub const fn is_error(self) -> bool {
        matches!(
            self,
            Message::DstUnreachable | Message::SourceQuench | Message::TimeExceeded
        )
    }
}

impl From<u8> for Message {
    fn from(value: u8) -> Self {
        match value {
            0 => Message::EchoReply,
            3 => Message::DstUnreachable,
            4 => Message::SourceQuench,
            5 => Message::Redirect,
            8 => Message::EchoRequest,
            11 => Message::TimeExceeded,
            12 => Message::ParamProblem,
            other => Message::Unknown(other),
        }
    }
}

impl From<Message> for u8 {
    fn from(value: Message) -> Self {
        match value {
            Message::EchoReply => 0,
            Message::DstUnreachable => 3,
            Message::SourceQuench => 4,
            Message::Redirect => 5,
            Message::EchoRequest => 8,
            Message::TimeExceeded => 11,
            Message::ParamProblem => 12,
            Message::Unknown(other) => other,
        }
    }
}

/// Code of a destination unreachable message meaning "fragmentation needed and DF set"
/// (RFC 792), which carries the next-hop MTU (RFC 1191).
pub const CODE_FRAG_NEEDED: u8 = 4;

mod field {
    use super::{Field, Rest};
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    pub const REST_OF_HEADER: Field = 4..8;
    pub const ECHO_IDENT: Field = 4..6;
    pub const ECHO_SEQNO: Field = 6..8;
    pub const NEXT_HOP_MTU: Field = 6..8;
    pub const DATA: Rest = 8..;
}

/// Length of the ICMP header: type, code, checksum and the four type-specific bytes.
pub const HEADER_LEN: usize = field::DATA.start;

/// Smallest embedded datagram in an error message: an IPv4 header and 8 bytes of its data.
const EMBEDDED_DATA_LEN: usize = 8;

/// The original datagram embedded in an ICMP error message: its IPv4 header (exactly the
/// header, options included) and the bytes after it (at least 8: the TCP/UDP ports).
#[derive(Debug, PartialEq, Eq)]
pub struct Embedded<T: AsRef<[u8]>> {
    /// The embedded IPv4 header. Its total length and checksum are the original's: see the
    /// module documentation.
    pub header: ipv4::Packet<T>,
    /// What follows the embedded header, at least 8 bytes.
    pub data: T,
}

/// A read/write view of an ICMPv4 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wrap a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wrap a received message, checking that it holds the 8-byte header.
    pub fn new_checked(buffer: T) -> Result<Packet<T>, DropReason> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Check that the buffer holds the 8-byte header.
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

    /// Return the type field.
    #[inline]
    pub fn msg_type(&self) -> Message {
        Message::from(read_u8(self.buffer.as_ref(), field::TYPE))
    }

    /// Return the code field.
    #[inline]
    pub fn msg_code(&self) -> u8 {
        read_u8(self.buffer.as_ref(), field::CODE)
    }

    /// Return the checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Return the identifier field of an echo request or reply.
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_IDENT)
    }

    /// Return the sequence number field of an echo request or reply.
    #[inline]
    pub fn echo_seq_no(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_SEQNO)
    }

    /// Return the four type-specific bytes after the checksum as one big-endian word
    /// ("rest of header": identifier and sequence number, unused and next-hop MTU, ...).
    #[inline]
    pub fn rest_of_header(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::REST_OF_HEADER)
    }

    /// Return the next-hop MTU field of a "fragmentation needed" message (RFC 1191).
    #[inline]
    pub fn next_hop_mtu(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::NEXT_HOP_MTU)
    }

    /// Return the data after the 8-byte header: echo payload, or an error's embedded datagram.
    #[inline]
    pub fn data(&self) -> &[u8] {
        self.buffer.as_ref().get(field::DATA).unwrap_or(&[])
    }

    /// Query whether the checksum over the whole message verifies.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::data(self.buffer.as_ref()) == 0xffff
    }

    /// Return the length of the embedded IPv4 header, after checking the message is an error
    /// message (3, 4, 11) that embeds a whole IPv4 header and 8 bytes after it.
    fn embedded_header_len(&self) -> Result<usize, DropReason> {
        if !self.msg_type().is_error() {
            return Err(DropReason::IcmpIgnored);
        }
        let data = self.data();
        if data.len() < ipv4::HEADER_LEN {
            return Err(DropReason::Truncated);
        }
        let header = ipv4::Packet::new_unchecked(data);
        if header.version() != 4 || header.header_len() < ipv4::HEADER_LEN {
            return Err(DropReason::BadIpv4Header);
        }
        let header_len = header.header_len();
        match header_len.checked_add(EMBEDDED_DATA_LEN) {
            Some(needed) if needed <= data.len() => Ok(header_len),
            _ => Err(DropReason::Truncated),
        }
    }

    /// Return the datagram embedded in an error message.
    ///
    /// # Errors
    /// - [`DropReason::IcmpIgnored`]: not an error message rvs relays (types 3, 4, 11);
    /// - [`DropReason::Truncated`]: the data is shorter than the embedded IPv4 header plus 8;
    /// - [`DropReason::BadIpv4Header`]: the embedded header's version is not 4 or IHL < 5.
    pub fn embedded(&self) -> Result<Embedded<&[u8]>, DropReason> {
        let header_len = self.embedded_header_len()?;
        let (header, data) = self
            .data()
            .split_at_checked(header_len)
            .ok_or(DropReason::Truncated)?;
        Ok(Embedded {
            header: ipv4::Packet::new_unchecked(header),
            data,
        })
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Set the type field.
    #[inline]
    pub fn set_msg_type(&mut self, value: Message) {
        write_u8(self.buffer.as_mut(), field::TYPE, value.into());
    }

    /// Set the code field.
    #[inline]
    pub fn set_msg_code(&mut self, value: u8) {
        write_u8(self.buffer.as_mut(), field::CODE, value);
    }

    /// Set the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, value);
    }

    /// Set the identifier field of an echo request or reply.
    #[inline]
    pub fn set_echo_ident(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::ECHO_IDENT, value);
    }

    /// Set the sequence number field of an echo request or reply.
    #[inline]
    pub fn set_echo_seq_no(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::ECHO_SEQNO, value);
    }

    /// Set the four type-specific bytes after the checksum (0 for the "unused" field of an
    /// error message).
    #[inline]
    pub fn set_rest_of_header(&mut self, value: u32) {
        write_u32(self.buffer.as_mut(), field::REST_OF_HEADER, value);
    }

    /// Set the next-hop MTU field of a "fragmentation needed" message.
    #[inline]
    pub fn set_next_hop_mtu(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::NEXT_HOP_MTU, value);
    }

    /// Return the data after the header, mutably.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut().get_mut(field::DATA).unwrap_or(&mut [])
    }

    /// Compute the checksum over the whole message and store it.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let sum = checksum::data(self.buffer.as_ref());
        self.set_checksum(checksum::finish(sum));
    }

    /// Return the datagram embedded in an error message, mutably (for NAT, which rewrites
    /// the embedded addresses and ports). Errors as for [`Packet::embedded`].
    pub fn embedded_mut(&mut self) -> Result<Embedded<&mut [u8]>, DropReason> {
        let header_len = self.embedded_header_len()?;
        let (header, data) = self
            .data_mut()
            .split_at_mut_checked(header_len)
            .ok_or(DropReason::Truncated)?;
        Ok(Embedded {
            header: ipv4::Packet::new_unchecked(header),
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    /// An echo request, identifier 0x1234, sequence 1, payload "abcd".
    static PACKET_BYTES: [u8; 12] = [
        0x08, 0x00, 0x21, 0x04, // type 8, code 0, checksum 0x2104
        0x12, 0x34, 0x00, 0x01, // identifier 0x1234, sequence 1
        0x61, 0x62, 0x63, 0x64, // "abcd"
    ];

    /// Destination unreachable (port unreachable) about a UDP datagram 10.0.0.2:4660 ->
    /// 10.0.0.1:53 whose IP header is embedded, with the first 8 bytes of its UDP header.
    static ERROR_BYTES: [u8; 36] = [
        0x03, 0x03, 0x00, 0x00, // type 3, code 3 (port unreachable), checksum (filled below)
        0x00, 0x00, 0x00, 0x00, // unused
        0x45, 0x00, 0x00, 0x24, // embedded IPv4: total length 36 (longer than embedded)
        0x00, 0x01, 0x00, 0x00, //
        0x40, 0x11, 0x00, 0x00, // TTL 64, UDP, checksum not verified
        0x0a, 0x00, 0x00, 0x02, // 10.0.0.2
        0x0a, 0x00, 0x00, 0x01, // 10.0.0.1
        0x12, 0x34, 0x00, 0x35, // UDP ports 4660 -> 53
        0x00, 0x10, 0xab, 0xcd, // length, checksum
    ];

    #[test]
    fn deconstruct() {
        let packet = Packet::new_checked(&PACKET_BYTES[..]).unwrap();
        assert_eq!(packet.msg_type(), Message::EchoRequest);
        assert_eq!(packet.msg_code(), 0);
        assert_eq!(packet.checksum(), 0x2104);
        assert_eq!(packet.echo_ident(), 0x1234);
        assert_eq!(packet.echo_seq_no(), 1);
        assert_eq!(packet.data(), b"abcd");
        assert!(packet.verify_checksum());
        assert_eq!(packet.embedded(), Err(DropReason::IcmpIgnored));
        // Cross-check with an independent implementation.
        let (theirs, _) = etherparse::Icmpv4Header::from_slice(&PACKET_BYTES).unwrap();
        assert_eq!(theirs.checksum, 0x2104);
        assert_eq!(theirs.icmp_type.calc_checksum(&PACKET_BYTES[8..]), 0x2104);
    }

    #[test]
    fn construct() {
        let mut bytes = [0xa5u8; 12];
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_msg_type(Message::EchoRequest);
        packet.set_msg_code(0);
        packet.set_echo_ident(0x1234);
        packet.set_echo_seq_no(1);
        packet.data_mut().copy_from_slice(b"abcd");
        packet.fill_checksum();
        assert_eq!(bytes, PACKET_BYTES);
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
        assert_eq!(packet.data(), &[] as &[u8]);
        let packet = Packet::new_unchecked(&PACKET_BYTES[..3]);
        assert_eq!(packet.checksum(), 0);
        assert_eq!(packet.echo_seq_no(), 0);
    }

    #[test]
    fn bad_checksum() {
        for at in 0..PACKET_BYTES.len() {
            let mut bytes = PACKET_BYTES;
            bytes[at] ^= 0x10;
            assert!(
                !Packet::new_unchecked(&bytes[..]).verify_checksum(),
                "byte {at}"
            );
        }
    }

    #[test]
    fn embedded() {
        let mut bytes = ERROR_BYTES;
        let mut packet = Packet::new_checked(&mut bytes[..]).unwrap();
        packet.fill_checksum();
        assert!(packet.verify_checksum());
        assert_eq!(packet.msg_type(), Message::DstUnreachable);
        assert!(packet.msg_type().is_error());
        assert_eq!(packet.msg_code(), 3);
        let embedded = packet.embedded().unwrap();
        assert_eq!(embedded.header.header_len(), 20);
        assert_eq!(embedded.header.src_addr(), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(embedded.header.dst_addr(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(embedded.header.protocol(), ipv4::Protocol::Udp);
        assert_eq!(embedded.header.total_len(), 36);
        assert_eq!(embedded.data, &ERROR_BYTES[28..36]);
        // NAT rewrites the embedded destination port through the mutable view.
        let embedded = packet.embedded_mut().unwrap();
        embedded.data[2..4].copy_from_slice(&8053u16.to_be_bytes());
        assert_eq!(&bytes[30..32], &8053u16.to_be_bytes());
    }

    #[test]
    fn bad_embedded() {
        // Every error type is accepted; other types are not errors.
        for (ty, ok) in [
            (3, true),
            (4, true),
            (11, true),
            (0, false),
            (5, false),
            (12, false),
        ] {
            let mut bytes = ERROR_BYTES;
            bytes[0] = ty;
            let result = Packet::new_unchecked(&bytes[..]).embedded().map(|_| ());
            assert_eq!(
                result,
                if ok {
                    Ok(())
                } else {
                    Err(DropReason::IcmpIgnored)
                }
            );
        }
        // Every truncation of the embedded datagram below header + 8 bytes.
        for len in HEADER_LEN..ERROR_BYTES.len() {
            assert_eq!(
                Packet::new_unchecked(&ERROR_BYTES[..len]).embedded(),
                Err(DropReason::Truncated),
                "len {len}"
            );
        }
        // Embedded version 6, or IHL 4.
        for first in [0x65, 0x44] {
            let mut bytes = ERROR_BYTES;
            bytes[8] = first;
            assert_eq!(
                Packet::new_unchecked(&bytes[..]).embedded(),
                Err(DropReason::BadIpv4Header)
            );
        }
        // Embedded IHL 6 needs 24 + 8 bytes; only 28 are there.
        let mut bytes = ERROR_BYTES;
        bytes[8] = 0x46;
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        assert_eq!(packet.embedded(), Err(DropReason::Truncated));
        assert_eq!(
            packet.embedded_mut().map(|_| ()),
            Err(DropReason::Truncated)
        );
    }

    #[test]
    fn frag_needed() {
        let mut bytes = ERROR_BYTES;
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_msg_code(CODE_FRAG_NEEDED);
        packet.set_next_hop_mtu(1480);
        packet.fill_checksum();
        assert_eq!(
            &bytes[..8],
            &[0x03, 0x04, 0x9f, 0xb3, 0x00, 0x00, 0x05, 0xc8]
        );
        let packet = Packet::new_unchecked(&bytes[..]);
        assert_eq!(packet.next_hop_mtu(), 1480);
        assert_eq!(packet.rest_of_header(), 1480);
        assert!(packet.verify_checksum());
        // The whole type-specific word: "unused" cleared, MTU set.
        let mut bytes = PACKET_BYTES;
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        assert_eq!(packet.rest_of_header(), 0x1234_0001);
        packet.set_rest_of_header(0x0000_05c8);
        assert_eq!(&bytes[4..8], &[0x00, 0x00, 0x05, 0xc8]);
        assert_eq!(Packet::new_unchecked(&bytes[..3]).rest_of_header(), 0);
    }

    #[test]
    fn messages() {
        for (value, message) in [
            (0, Message::EchoReply),
            (3, Message::DstUnreachable),
            (4, Message::SourceQuench),
            (5, Message::Redirect),
            (8, Message::EchoRequest),
            (11, Message::TimeExceeded),
            (12, Message::ParamProblem),
            (13, Message::Unknown(13)),
        ] {
            assert_eq!(Message::from(value), message);
            assert_eq!(u8::from(message), value);
        }
    }
}
