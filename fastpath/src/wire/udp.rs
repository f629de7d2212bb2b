//! UDP headers (RFC 768).
//!
//! The view covers one datagram inside the IPv4 payload
//! ([`ipv4::Packet::payload`](super::ipv4::Packet::payload)). [`Packet::check_len`] checks the
//! 8-byte header is there and that the length field is ≥ 8 and ≤ the IPv4 payload (else
//! [`DropReason::BadL4Header`]). A length field *shorter* than the IPv4 payload is accepted, as
//! Linux `udp_rcv` does (it trims): [`Packet::payload`] and the checksum end at the length
//! field, and the bytes after it are not part of the datagram.
//!
//! Checksums (RFC 768): a checksum field of 0 means the sender computed none, and
//! [`Packet::verify_checksum`] accepts it; [`Packet::fill_checksum`] sends a computed 0 as
//! `0xffff`. Incremental updates for NAT are [`checksum::udp_update_u16`] and
//! [`checksum::udp_update_u32`], which keep "no checksum" as 0.
//!
//! Over IPv6 a checksum of 0 is invalid (RFC 8200 §8.1): [`Packet::verify_checksum_v6`]
//! refuses it, as Linux `udp6_csum_init` does, and [`Packet::fill_checksum_v6`] sends a
//! computed 0 as `0xffff`.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::checksum;
use super::{field::Field, read_u16, write_u16};
use crate::verdict::DropReason;

mod field {
    use super::Field;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const LENGTH: Field = 4..6;
    pub const CHECKSUM: Field = 6..8;
}

/// Length of the UDP header.
pub const HEADER_LEN: usize = field::CHECKSUM.end;

/// The IP protocol number (IPv6 next header) of UDP, for the pseudo-header.
const PROTOCOL: u8 = 17;

/// A read/write view of a UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wrap a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wrap a received datagram (the IPv4 payload), checking its lengths.
    pub fn new_checked(buffer: T) -> Result<Packet<T>, DropReason> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Check that the buffer holds the header and the length field is 8..=buffer length.
    ///
    /// # Errors
    /// [`DropReason::BadL4Header`] otherwise.
    pub fn check_len(&self) -> Result<(), DropReason> {
        let buffer_len = self.buffer.as_ref().len();
        let len = usize::from(self.length());
        if buffer_len < HEADER_LEN || len < HEADER_LEN || len > buffer_len {
            return Err(DropReason::BadL4Header);
        }
        Ok(())
    }

    /// Consume the view, returning the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Return the source port field.
    #[inline]
    pub fn src_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::SRC_PORT)
    }

    /// Return the destination port field.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// Return the length field: header and data.
    #[inline]
    pub fn length(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Return the checksum field (0: none).
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Return the datagram: header and data, up to the length field (empty if the length
    /// does not fit the buffer).
    #[inline]
    fn datagram(&self) -> &[u8] {
        self.buffer
            .as_ref()
            .get(..usize::from(self.length()))
            .unwrap_or(&[])
    }

    /// Return the payload: from the end of the header to the length field.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        self.datagram().get(HEADER_LEN..).unwrap_or(&[])
    }

    /// Query whether the checksum verifies for a datagram from `src_addr` to `dst_addr`; a
    /// checksum of 0 (none) verifies. False if the length does not fit the buffer.
    pub fn verify_checksum(&self, src_addr: Ipv4Addr, dst_addr: Ipv4Addr) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let datagram = self.datagram();
        if datagram.len() < HEADER_LEN {
            return false;
        }
        let pseudo = checksum::pseudo_header(src_addr, dst_addr, PROTOCOL, datagram.len());
        checksum::combine(&[pseudo, checksum::data(datagram)]) == 0xffff
    }

    /// Query whether the checksum verifies for a datagram from `src_addr` to `dst_addr` over
    /// IPv6; a checksum field of 0 does not (RFC 8200 §8.1).
    pub fn verify_checksum_v6(&self, src_addr: &Ipv6Addr, dst_addr: &Ipv6Addr) -> bool {
        if self.checksum() == 0 {
            return false;
        }
        let datagram = self.datagram();
        if datagram.len() < HEADER_LEN {
            return false;
        }
        let pseudo = checksum::pseudo_header_v6(src_addr, dst_addr, PROTOCOL, datagram.len());
        checksum::combine(&[pseudo, checksum::data(datagram)]) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Set the source port field.
    #[inline]
    pub fn set_src_port(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::SRC_PORT, value);
    }

    /// Set the destination port field.
    #[inline]
    pub fn set_dst_port(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::DST_PORT, value);
    }

    /// Set the length field.
    #[inline]
    pub fn set_length(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::LENGTH, value);
    }

    /// Set the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, value);
    }

    /// Return the payload, mutably.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.length());
        self.buffer
            .as_mut()
            .get_mut(HEADER_LEN..end)
            .unwrap_or(&mut [])
    }

    /// Compute the checksum over the datagram (up to the length field) for `src_addr` to
    /// `dst_addr` and store it, a computed 0 as `0xffff`. Stores 0 (none) if the length does
    /// not fit the buffer.
    pub fn fill_checksum(&mut self, src_addr: Ipv4Addr, dst_addr: Ipv4Addr) {
        self.set_checksum(0);
        let datagram = self.datagram();
        if datagram.len() < HEADER_LEN {
            return;
        }
        let pseudo = checksum::pseudo_header(src_addr, dst_addr, PROTOCOL, datagram.len());
        let sum = checksum::combine(&[pseudo, checksum::data(datagram)]);
        self.set_checksum(checksum::udp_nonzero(checksum::finish(sum)));
    }

    /// Compute the checksum for a datagram from `src_addr` to `dst_addr` over IPv6 and store
    /// it (a computed 0 as `0xffff`: 0 is not allowed over IPv6).
    pub fn fill_checksum_v6(&mut self, src_addr: &Ipv6Addr, dst_addr: &Ipv6Addr) {
        self.set_checksum(0);
        let datagram = self.datagram();
        if datagram.len() < HEADER_LEN {
            return;
        }
        let pseudo = checksum::pseudo_header_v6(src_addr, dst_addr, PROTOCOL, datagram.len());
        let sum = checksum::combine(&[pseudo, checksum::data(datagram)]);
        self.set_checksum(checksum::udp_nonzero(checksum::finish(sum)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(10, 200, 1, 1);

    /// 192.168.1.1:4660 -> 10.200.1.1:53, length 12, payload "dns?" (then 2 bytes the IP
    /// payload holds beyond the UDP length).
    static PACKET_BYTES: [u8; 14] = [
        0x12, 0x34, 0x00, 0x35, // ports 4660 -> 53
        0x00, 0x0c, 0x48, 0x4d, // length 12, checksum 0x484d
        0x64, 0x6e, 0x73, 0x3f, // "dns?"
        0xee, 0xee, // not part of the datagram
    ];

    #[test]
    fn deconstruct() {
        let packet = Packet::new_checked(&PACKET_BYTES[..]).unwrap();
        assert_eq!(packet.src_port(), 4660);
        assert_eq!(packet.dst_port(), 53);
        assert_eq!(packet.length(), 12);
        assert_eq!(packet.checksum(), 0x484d);
        assert_eq!(packet.payload(), b"dns?");
        assert!(packet.verify_checksum(SRC, DST));
        // Cross-check with an independent implementation.
        let (theirs, _) = etherparse::UdpHeader::from_slice(&PACKET_BYTES).unwrap();
        assert_eq!(
            theirs.calc_checksum_ipv4_raw(SRC.octets(), DST.octets(), b"dns?"),
            Ok(0x484d)
        );
    }

    #[test]
    fn construct() {
        let mut bytes = [0xa5u8; 14];
        bytes[8..].copy_from_slice(&PACKET_BYTES[8..]);
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_src_port(4660);
        packet.set_dst_port(53);
        packet.set_length(12);
        packet.fill_checksum(SRC, DST);
        assert_eq!(bytes, PACKET_BYTES);
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.payload_mut().copy_from_slice(b"DNS!");
        assert_eq!(&bytes[8..14], b"DNS!\xee\xee");
    }

    #[test]
    fn zero_checksum() {
        // No checksum verifies, whatever the data.
        let mut bytes = PACKET_BYTES;
        bytes[6..8].copy_from_slice(&[0, 0]);
        bytes[9] = 0;
        assert!(Packet::new_unchecked(&bytes[..]).verify_checksum(SRC, DST));
        // A datagram whose checksum computes to 0 is sent with 0xffff, which verifies: choose
        // the first payload word so that the sum over everything else is exactly 0xffff.
        let mut bytes = PACKET_BYTES;
        bytes[6..10].copy_from_slice(&[0, 0, 0, 0]);
        let rest = checksum::combine(&[
            checksum::pseudo_header(SRC, DST, 17, 12),
            checksum::data(&bytes[..12]),
        ]);
        bytes[8..10].copy_from_slice(&(0xffff - rest).to_be_bytes());
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.fill_checksum(SRC, DST);
        assert_eq!(packet.checksum(), 0xffff);
        assert!(packet.verify_checksum(SRC, DST));
    }

    #[test]
    fn truncated() {
        let bytes = PACKET_BYTES;
        for len in 0..12 {
            assert_eq!(
                Packet::new_checked(&bytes[..len]),
                Err(DropReason::BadL4Header),
                "len {len}"
            );
        }
        for len in 12..=14 {
            assert!(Packet::new_checked(&bytes[..len]).is_ok());
        }
        let packet = Packet::new_unchecked(&bytes[..10]);
        assert_eq!(packet.payload(), &[] as &[u8]);
        assert!(!packet.verify_checksum(SRC, DST));
    }

    #[test]
    fn bad_len() {
        for len in [0u16, 7, 15, 0xffff] {
            let mut bytes = PACKET_BYTES;
            bytes[4..6].copy_from_slice(&len.to_be_bytes());
            assert_eq!(
                Packet::new_checked(&bytes[..]),
                Err(DropReason::BadL4Header),
                "len {len}"
            );
        }
        // 8: header only, empty payload.
        let mut bytes = PACKET_BYTES;
        bytes[4..6].copy_from_slice(&8u16.to_be_bytes());
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.payload(), &[] as &[u8]);
    }

    #[test]
    fn bad_checksum() {
        for at in 0..12 {
            let mut bytes = PACKET_BYTES;
            bytes[at] ^= 0x01;
            let packet = Packet::new_unchecked(&bytes[..]);
            assert!(!packet.verify_checksum(SRC, DST), "byte {at}");
        }
        // Bytes after the UDP length are not covered.
        let mut bytes = PACKET_BYTES;
        bytes[13] = 0;
        assert!(Packet::new_unchecked(&bytes[..]).verify_checksum(SRC, DST));
    }

    proptest! {
        /// NAT's rewrites: the incremental UDP checksum equals a full recompute (with the
        /// zero-as-0xffff rule), and a datagram without a checksum keeps none.
        #[test]
        fn incremental_checksum(
            payload in proptest::collection::vec(any::<u8>(), 0..64),
            new_src in any::<u32>(),
            new_dst in any::<u32>(),
            new_sport in any::<u16>(),
            new_dport in any::<u16>(),
        ) {
            let len = 8 + payload.len();
            let mut bytes = vec![0u8; len];
            bytes[8..].copy_from_slice(&payload);
            let mut packet = Packet::new_unchecked(&mut bytes[..]);
            packet.set_src_port(4660);
            packet.set_dst_port(53);
            packet.set_length(u16::try_from(len).unwrap());
            packet.fill_checksum(SRC, DST);
            let full = packet.checksum();
            let update = |csum: u16| {
                let csum = checksum::udp_update_u32(csum, SRC.to_bits(), new_src);
                let csum = checksum::udp_update_u32(csum, DST.to_bits(), new_dst);
                let csum = checksum::udp_update_u16(csum, 4660, new_sport);
                checksum::udp_update_u16(csum, 53, new_dport)
            };
            prop_assert_eq!(update(0), 0);
            let mut packet = Packet::new_unchecked(&mut bytes[..]);
            packet.set_src_port(new_sport);
            packet.set_dst_port(new_dport);
            packet.fill_checksum(new_src.into(), new_dst.into());
            prop_assert_eq!(update(full), packet.checksum());
            prop_assert!(packet.verify_checksum(new_src.into(), new_dst.into()));
        }

        /// Arbitrary bytes never panic, and what passes check_len has a consistent length.
        #[test]
        fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let packet = Packet::new_unchecked(&bytes[..]);
            if packet.check_len().is_ok() {
                prop_assert_eq!(packet.payload().len() + 8, usize::from(packet.length()));
            }
            let _ = packet.verify_checksum(SRC, DST);
        }
    }
}
