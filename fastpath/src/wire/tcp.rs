//! TCP headers (RFC 9293).
//!
//! The view covers one segment: give it the IPv4 payload
//! ([`ipv4::Packet::payload`](super::ipv4::Packet::payload)), which ends at the IP total length;
//! the checksum covers exactly the segment and its length is the pseudo-header's.
//!
//! [`Packet::check_len`] checks the fixed header is there and the data offset is 5..=15 words
//! (20..=60 bytes) and within the segment; anything else is [`DropReason::BadL4Header`].
//! Deliberately not checked: the checksum (a separate [`Packet::verify_checksum`], which
//! stages call where they need it), flag combinations (SYN+FIN and the like are the connection
//! state machine's business), the option list (see below), ports.
//!
//! Options are read with [`Packet::options`], an iterator of [`TcpOption`]s that skips NOPs,
//! ends at End of Option List, and stops (without panicking or yielding garbage) at the first
//! malformed option: a missing length byte, a length below 2, or a length running past the
//! header, as Linux `tcp_parse_options` does. Each option carries its offset in the header, so
//! a stage can rewrite it in place, keeping the checksum right: [`Packet::set_mss`] for MSS
//! clamping, and for FULLNAT [`Packet::remove_timestamps`] (client SYNs) and
//! [`Packet::sub_sack_edges`] (the real server's SACK blocks). Kinds are in [`option_kind`], including TOA (254), the option FULLNAT
//! inserts to carry the client address.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::checksum;
use super::{
    field::Field, read_u16, read_u32, read_u8, write_bytes, write_u16, write_u32, write_u8,
};
use crate::verdict::DropReason;

/// TCP option kinds (IANA "TCP Option Kind Numbers").
pub mod option_kind {
    /// End of Option List (RFC 9293).
    pub const EOL: u8 = 0;
    /// No-Operation (RFC 9293).
    pub const NOP: u8 = 1;
    /// Maximum Segment Size (RFC 9293), length 4.
    pub const MSS: u8 = 2;
    /// Window Scale (RFC 7323), length 3.
    pub const WINDOW_SCALE: u8 = 3;
    /// SACK Permitted (RFC 2018), length 2.
    pub const SACK_PERMITTED: u8 = 4;
    /// SACK (RFC 2018), length 2 + 8n.
    pub const SACK: u8 = 5;
    /// Timestamps (RFC 7323), length 10.
    pub const TIMESTAMPS: u8 = 8;
    /// TCP Option Address (TOA): the client's port and IPv4 address, inserted by FULLNAT so
    /// the real server can see them; length 8. An experimental-range kind by convention of the
    /// LVS FULLNAT patches, not an IANA assignment.
    pub const TOA: u8 = 254;
}

/// Length of the MSS option: kind, length, 16-bit value.
pub const MSS_OPTION_LEN: usize = 4;
/// Length of the TOA option: kind, length, port (2), IPv4 address (4).
pub const TOA_OPTION_LEN: usize = 8;
/// Length of the Timestamps option: kind, length, TSval (4), TSecr (4).
pub const TIMESTAMPS_OPTION_LEN: usize = 10;
/// Length of one SACK block: left and right edge, 4 bytes each.
pub const SACK_BLOCK_LEN: usize = 8;

/// TCP control bits (RFC 9293 §3.1, RFC 3168 for ECE and CWR).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(u8);

impl Flags {
    pub const FIN: Flags = Flags(0x01);
    pub const SYN: Flags = Flags(0x02);
    pub const RST: Flags = Flags(0x04);
    pub const PSH: Flags = Flags(0x08);
    pub const ACK: Flags = Flags(0x10);
    pub const URG: Flags = Flags(0x20);
    pub const ECE: Flags = Flags(0x40);
    pub const CWR: Flags = Flags(0x80);

    /// Return the flags as the byte they occupy in the header.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Make flags from the header byte.
    pub const fn from_bits(bits: u8) -> Flags {
        Flags(bits)
    }

    /// Query whether every flag in `other` is set.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl core::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

mod field {
    use super::Field;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const SEQ_NUM: Field = 4..8;
    pub const ACK_NUM: Field = 8..12;
    /// Data offset (high nibble) and reserved bits (low nibble, incl. AE of RFC 9768).
    pub const DATA_OFFSET: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WIN_SIZE: Field = 14..16;
    pub const CHECKSUM: Field = 16..18;
    pub const URGENT: Field = 18..20;
}

/// Length of the fixed header (data offset 5).
pub const HEADER_LEN: usize = field::URGENT.end;
/// Largest header, options included (data offset 15).
pub const MAX_HEADER_LEN: usize = 60;

/// One TCP option, as [`Packet::options`] yields it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpOption<'a> {
    /// Offset of the kind byte from the start of the TCP header.
    pub offset: usize,
    /// The kind byte (see [`option_kind`]).
    pub kind: u8,
    /// The option's data, after the kind and length bytes.
    pub data: &'a [u8],
}

/// Iterator over the options of a TCP header; see the module documentation.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    /// The options area: the header bytes after the fixed 20.
    area: &'a [u8],
    /// Offset in `area` of the next option.
    pos: usize,
}

impl<'a> Iterator for Options<'a> {
    type Item = TcpOption<'a>;

    fn next(&mut self) -> Option<TcpOption<'a>> {
        loop {
            let start = self.pos;
            // Ending (at the end of the area, at EOL or on a malformed option) moves `pos`
            // past the area, so every later call returns None too.
            self.pos = self.area.len();
            let kind = *self.area.get(start)?;
            match kind {
                option_kind::EOL => return None,
                option_kind::NOP => {
                    self.pos = start.checked_add(1)?;
                }
                _ => {
                    let len = usize::from(*self.area.get(start.checked_add(1)?)?);
                    if len < 2 {
                        return None;
                    }
                    let end = start.checked_add(len)?;
                    let data = self.area.get(start.checked_add(2)?..end)?;
                    self.pos = end;
                    return Some(TcpOption {
                        offset: HEADER_LEN.checked_add(start)?,
                        kind,
                        data,
                    });
                }
            }
        }
    }
}

/// A read/write view of a TCP segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wrap a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wrap a received segment, checking its lengths with [`Packet::check_len`].
    pub fn new_checked(buffer: T) -> Result<Packet<T>, DropReason> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Check that the segment holds the fixed header and that the data offset is 20..=60
    /// bytes and within the segment.
    ///
    /// # Errors
    /// [`DropReason::BadL4Header`] otherwise.
    pub fn check_len(&self) -> Result<(), DropReason> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(DropReason::BadL4Header);
        }
        let header_len = self.header_len();
        if header_len < HEADER_LEN || header_len > len {
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

    /// Return the sequence number field.
    #[inline]
    pub fn seq_number(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::SEQ_NUM)
    }

    /// Return the acknowledgment number field.
    #[inline]
    pub fn ack_number(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::ACK_NUM)
    }

    /// Return the header length in bytes (the data offset field times 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(read_u8(self.buffer.as_ref(), field::DATA_OFFSET) >> 4) * 4
    }

    /// Return the control bits.
    #[inline]
    pub fn flags(&self) -> Flags {
        Flags(read_u8(self.buffer.as_ref(), field::FLAGS))
    }

    /// Return the window field.
    #[inline]
    pub fn window_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::WIN_SIZE)
    }

    /// Return the checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Return the urgent pointer field.
    #[inline]
    pub fn urgent_at(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::URGENT)
    }

    /// Return the options area: the header bytes after the fixed 20 (empty if the data offset
    /// is 5 or does not fit the buffer).
    #[inline]
    pub fn options_area(&self) -> &[u8] {
        self.buffer
            .as_ref()
            .get(HEADER_LEN..self.header_len())
            .unwrap_or(&[])
    }

    /// Return an iterator over the options (see the module documentation).
    #[inline]
    pub fn options(&self) -> Options<'_> {
        Options {
            area: self.options_area(),
            pos: 0,
        }
    }

    /// Return the value of the MSS option, if there is a well-formed one (length 4).
    pub fn mss(&self) -> Option<u16> {
        self.mss_option().map(|(_, mss)| mss)
    }

    /// Return the offset and value of the first well-formed MSS option.
    fn mss_option(&self) -> Option<(usize, u16)> {
        self.options()
            .filter(|option| option.kind == option_kind::MSS)
            .find_map(|option| {
                let value = <[u8; 2]>::try_from(option.data).ok()?;
                Some((option.offset, u16::from_be_bytes(value)))
            })
    }

    /// Return the payload: the bytes after the header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        self.buffer.as_ref().get(self.header_len()..).unwrap_or(&[])
    }

    /// Query whether the checksum verifies for a segment from `src_addr` to `dst_addr`.
    pub fn verify_checksum(&self, src_addr: Ipv4Addr, dst_addr: Ipv4Addr) -> bool {
        let data = self.buffer.as_ref();
        let pseudo = checksum::pseudo_header(src_addr, dst_addr, PROTOCOL, data.len());
        checksum::combine(&[pseudo, checksum::data(data)]) == 0xffff
    }

    /// Query whether the checksum verifies for a segment from `src_addr` to `dst_addr` over
    /// IPv6 (RFC 8200 §8.1 pseudo-header).
    pub fn verify_checksum_v6(&self, src_addr: &Ipv6Addr, dst_addr: &Ipv6Addr) -> bool {
        let data = self.buffer.as_ref();
        let pseudo = checksum::pseudo_header_v6(src_addr, dst_addr, PROTOCOL, data.len());
        checksum::combine(&[pseudo, checksum::data(data)]) == 0xffff
    }
}

/// The IP protocol number (IPv6 next header) of TCP, for the pseudo-header.
const PROTOCOL: u8 = 6;

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

    /// Set the sequence number field.
    #[inline]
    pub fn set_seq_number(&mut self, value: u32) {
        write_u32(self.buffer.as_mut(), field::SEQ_NUM, value);
    }

    /// Set the acknowledgment number field.
    #[inline]
    pub fn set_ack_number(&mut self, value: u32) {
        write_u32(self.buffer.as_mut(), field::ACK_NUM, value);
    }

    /// Set the data offset field from a header length in bytes (a multiple of 4, at most 60;
    /// a longer one is written as 60), keeping the reserved bits.
    #[inline]
    pub fn set_header_len(&mut self, value: usize) {
        let byte = read_u8(self.buffer.as_ref(), field::DATA_OFFSET);
        let words = u8::try_from(value.min(MAX_HEADER_LEN) / 4).unwrap_or(0x0f);
        write_u8(
            self.buffer.as_mut(),
            field::DATA_OFFSET,
            (byte & 0x0f) | (words << 4),
        );
    }

    /// Set the control bits.
    #[inline]
    pub fn set_flags(&mut self, value: Flags) {
        write_u8(self.buffer.as_mut(), field::FLAGS, value.0);
    }

    /// Set the window field.
    #[inline]
    pub fn set_window_len(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::WIN_SIZE, value);
    }

    /// Set the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, value);
    }

    /// Set the urgent pointer field.
    #[inline]
    pub fn set_urgent_at(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::URGENT, value);
    }

    /// Return the options area, mutably.
    #[inline]
    pub fn options_area_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        self.buffer
            .as_mut()
            .get_mut(HEADER_LEN..end)
            .unwrap_or(&mut [])
    }

    /// Return the payload, mutably.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        self.buffer.as_mut().get_mut(start..).unwrap_or(&mut [])
    }

    /// Rewrite the value of the first well-formed MSS option to `mss` and update the
    /// checksum field incrementally (RFC 1624), returning the old value; `None`, and nothing
    /// written, if there is no MSS option. The checksum field must hold a full checksum, not
    /// a TX-offload pseudo-header seed.
    pub fn set_mss(&mut self, mss: u16) -> Option<u16> {
        let (offset, old) = self.mss_option()?;
        let at = offset.checked_add(2)?;
        write_u16(self.buffer.as_mut(), at..at.checked_add(2)?, mss);
        // After a NOP the value sits at an odd offset, across two checksum words: update with
        // the byte-swapped values (RFC 1071 §2(B)).
        let (old_word, new_word) = if at & 1 == 0 {
            (old, mss)
        } else {
            (old.swap_bytes(), mss.swap_bytes())
        };
        let updated = checksum::update_u16(self.checksum(), old_word, new_word);
        self.set_checksum(updated);
        Some(old)
    }

    /// Overwrite the first well-formed Timestamps option (length 10) with ten NOPs and update
    /// the checksum field incrementally, as FULLNAT does on client SYNs (DPVS
    /// `tcp_in_remove_ts`); false, and nothing written, if there is none. The checksum field
    /// must hold a full checksum.
    pub fn remove_timestamps(&mut self) -> bool {
        let Some(offset) = self
            .options()
            .find(|option| {
                option.kind == option_kind::TIMESTAMPS
                    && option.data.len().checked_add(2) == Some(TIMESTAMPS_OPTION_LEN)
            })
            .map(|option| option.offset)
        else {
            return false;
        };
        let Some(end) = offset.checked_add(TIMESTAMPS_OPTION_LEN) else {
            return false;
        };
        let Some(old) = self
            .buffer
            .as_ref()
            .get(offset..end)
            .and_then(|bytes| <[u8; TIMESTAMPS_OPTION_LEN]>::try_from(bytes).ok())
        else {
            return false;
        };
        let nops = [option_kind::NOP; TIMESTAMPS_OPTION_LEN];
        write_bytes(self.buffer.as_mut(), offset..end, nops);
        let updated = checksum::update_bytes(self.checksum(), offset, &old, &nops);
        self.set_checksum(updated);
        true
    }

    /// Subtract `delta` (wrapping) from both edges of every block of every well-formed SACK
    /// option (length 2 + 8n, n ≥ 1), updating the checksum field incrementally, as FULLNAT
    /// does on the real server's acknowledgments (DPVS `tcp_out_adjust_seq`); return the
    /// number of blocks changed. A SACK option of another length is left alone. The checksum
    /// field must hold a full checksum.
    pub fn sub_sack_edges(&mut self, delta: u32) -> usize {
        self.map_sack_edges(|edge| edge.wrapping_sub(delta))
    }

    /// Replace both edges of every block of every well-formed SACK option with `map` of
    /// their value, as [`Packet::sub_sack_edges`] does (which is this with a subtraction).
    pub fn map_sack_edges(&mut self, map: impl Fn(u32) -> u32) -> usize {
        // The options are read from a copy so that the buffer can be written while walking.
        let mut area = [0u8; MAX_HEADER_LEN - HEADER_LEN];
        let source = self.options_area();
        let len = source.len();
        match area.get_mut(..len) {
            Some(copy) => copy.copy_from_slice(source),
            None => return 0,
        }
        let options = Options {
            area: area.get(..len).unwrap_or(&[]),
            pos: 0,
        };
        let mut blocks = 0usize;
        for option in options.filter(|option| option.kind == option_kind::SACK) {
            if option.data.is_empty() || option.data.len() % SACK_BLOCK_LEN != 0 {
                continue;
            }
            let mut at = option.offset.saturating_add(2);
            for edge in option.data.chunks_exact(4) {
                let Ok(old) = <[u8; 4]>::try_from(edge) else {
                    continue;
                };
                let new = map(u32::from_be_bytes(old)).to_be_bytes();
                let end = at.saturating_add(4);
                write_bytes(self.buffer.as_mut(), at..end, new);
                let updated = checksum::update_bytes(self.checksum(), at, &old, &new);
                self.set_checksum(updated);
                at = end;
            }
            blocks = blocks.saturating_add(option.data.len() / SACK_BLOCK_LEN);
        }
        blocks
    }

    /// Compute the checksum for a segment from `src_addr` to `dst_addr` and store it.
    pub fn fill_checksum(&mut self, src_addr: Ipv4Addr, dst_addr: Ipv4Addr) {
        self.set_checksum(0);
        let data = self.buffer.as_ref();
        let pseudo = checksum::pseudo_header(src_addr, dst_addr, PROTOCOL, data.len());
        let sum = checksum::combine(&[pseudo, checksum::data(data)]);
        self.set_checksum(checksum::finish(sum));
    }

    /// Compute the checksum for a segment from `src_addr` to `dst_addr` over IPv6 and store
    /// it.
    pub fn fill_checksum_v6(&mut self, src_addr: &Ipv6Addr, dst_addr: &Ipv6Addr) {
        self.set_checksum(0);
        let data = self.buffer.as_ref();
        let pseudo = checksum::pseudo_header_v6(src_addr, dst_addr, PROTOCOL, data.len());
        let sum = checksum::combine(&[pseudo, checksum::data(data)]);
        self.set_checksum(checksum::finish(sum));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(10, 200, 1, 1);

    /// A SYN 192.168.1.1:31337 -> 10.200.1.1:80 with MSS 1460, SACK-permitted, timestamps,
    /// NOP, window scale 7 (Linux's layout), and a 4-byte payload.
    static PACKET_BYTES: [u8; 44] = [
        0x7a, 0x69, 0x00, 0x50, // ports 31337 -> 80
        0x01, 0x02, 0x03, 0x04, // sequence number
        0x00, 0x00, 0x00, 0x00, // acknowledgment number
        0xa0, 0x02, 0xfa, 0xf0, // data offset 10 (40 bytes), SYN, window 64240
        0x63, 0x3b, 0x00, 0x00, // checksum 0x633b, urgent pointer 0
        0x02, 0x04, 0x05, 0xb4, // MSS 1460
        0x04, 0x02, // SACK permitted
        0x08, 0x0a, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, // timestamps 1, 0
        0x01, // NOP
        0x03, 0x03, 0x07, // window scale 7
        0xde, 0xad, 0xbe, 0xef, // payload
    ];

    #[test]
    fn deconstruct() {
        let packet = Packet::new_checked(&PACKET_BYTES[..]).unwrap();
        assert_eq!(packet.src_port(), 31337);
        assert_eq!(packet.dst_port(), 80);
        assert_eq!(packet.seq_number(), 0x0102_0304);
        assert_eq!(packet.ack_number(), 0);
        assert_eq!(packet.header_len(), 40);
        assert_eq!(packet.flags(), Flags::SYN);
        assert!(packet.flags().contains(Flags::SYN));
        assert!(!packet.flags().contains(Flags::SYN | Flags::ACK));
        assert_eq!(packet.window_len(), 64240);
        assert_eq!(packet.checksum(), 0x633b);
        assert_eq!(packet.urgent_at(), 0);
        assert_eq!(packet.options_area(), &PACKET_BYTES[20..40]);
        assert_eq!(packet.payload(), &[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(packet.mss(), Some(1460));
        assert!(packet.verify_checksum(SRC, DST));
        assert!(!packet.verify_checksum(SRC, Ipv4Addr::new(10, 200, 1, 2)));
        // Cross-check with an independent implementation.
        let (theirs, payload) = etherparse::TcpHeader::from_slice(&PACKET_BYTES).unwrap();
        assert_eq!(
            theirs.calc_checksum_ipv4_raw(SRC.octets(), DST.octets(), payload),
            Ok(0x633b)
        );
    }

    #[test]
    fn options() {
        let packet = Packet::new_checked(&PACKET_BYTES[..]).unwrap();
        let options: Vec<_> = packet.options().collect();
        assert_eq!(
            options,
            [
                TcpOption {
                    offset: 20,
                    kind: option_kind::MSS,
                    data: &[0x05, 0xb4]
                },
                TcpOption {
                    offset: 24,
                    kind: option_kind::SACK_PERMITTED,
                    data: &[]
                },
                TcpOption {
                    offset: 26,
                    kind: option_kind::TIMESTAMPS,
                    data: &[0, 0, 0, 1, 0, 0, 0, 0]
                },
                TcpOption {
                    offset: 37,
                    kind: option_kind::WINDOW_SCALE,
                    data: &[7]
                },
            ]
        );
    }

    /// A segment whose options area is `area` (a multiple of 4 bytes, at most 40).
    fn with_options(area: &[u8]) -> Vec<u8> {
        let mut bytes = PACKET_BYTES[..20].to_vec();
        bytes[12] = u8::try_from((20 + area.len()) / 4).unwrap() << 4;
        bytes.extend_from_slice(area);
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.fill_checksum(SRC, DST);
        bytes
    }

    fn kinds(bytes: &[u8]) -> Vec<(usize, u8, Vec<u8>)> {
        Packet::new_checked(bytes)
            .unwrap()
            .options()
            .map(|o| (o.offset, o.kind, o.data.to_vec()))
            .collect()
    }

    #[test]
    fn options_sack_toa_unknown() {
        // NOP NOP SACK(1 block) | TOA(port 4660, 10.0.0.9) | kind 30 len 4 | EOL + garbage.
        let bytes = with_options(&[
            0x01, 0x01, 0x05, 0x0a, 0, 0, 0, 1, 0, 0, 0, 2, // SACK 1..2
            0xfe, 0x08, 0x12, 0x34, 10, 0, 0, 9, // TOA
            0x1e, 0x04, 0xaa, 0xbb, // unknown kind 30
            0x00, 0x02, 0x04, 0x05, // EOL, then bytes that must not be read as MSS
        ]);
        assert_eq!(
            kinds(&bytes),
            [
                (22, option_kind::SACK, vec![0, 0, 0, 1, 0, 0, 0, 2]),
                (32, option_kind::TOA, vec![0x12, 0x34, 10, 0, 0, 9]),
                (40, 30, vec![0xaa, 0xbb]),
            ]
        );
        assert_eq!(Packet::new_unchecked(&bytes[..]).mss(), None);
    }

    #[test]
    fn bad_options() {
        // Length 0 and 1 stop the walk (they would loop or underflow).
        assert_eq!(kinds(&with_options(&[0x01, 0x03, 0x00, 0x07])), []);
        assert_eq!(
            kinds(&with_options(&[0x04, 0x02, 0x08, 0x01])),
            [(20, option_kind::SACK_PERMITTED, vec![])]
        );
        // A length running past the header stops the walk.
        assert_eq!(kinds(&with_options(&[0x02, 0x08, 0x05, 0xb4])), []);
        // A kind with no room for its length byte.
        assert_eq!(kinds(&with_options(&[0x01, 0x01, 0x01, 0x02])), []);
        // An MSS of the wrong length is not an MSS.
        let bytes = with_options(&[0x02, 0x03, 0x05, 0x01]);
        assert_eq!(kinds(&bytes), [(20, option_kind::MSS, vec![0x05])]);
        assert_eq!(Packet::new_unchecked(&bytes[..]).mss(), None);
        // The iterator is fused: after stopping it keeps returning None.
        let bytes = with_options(&[0x02, 0x01, 0x05, 0xb4]);
        let packet = Packet::new_unchecked(&bytes[..]);
        let mut options = packet.options();
        assert_eq!(options.next(), None);
        assert_eq!(options.next(), None);
    }

    #[test]
    fn construct() {
        let mut bytes = [0xa5u8; 44];
        bytes[20..].copy_from_slice(&PACKET_BYTES[20..]);
        bytes[12] = 0; // set_header_len keeps the reserved bits: start them at zero
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_src_port(31337);
        packet.set_dst_port(80);
        packet.set_seq_number(0x0102_0304);
        packet.set_ack_number(0);
        packet.set_header_len(40);
        packet.set_flags(Flags::SYN);
        packet.set_window_len(64240);
        packet.set_urgent_at(0);
        packet.fill_checksum(SRC, DST);
        assert_eq!(bytes, PACKET_BYTES);
    }

    #[test]
    fn header_len_setter() {
        let mut bytes = PACKET_BYTES;
        bytes[12] = 0x0f; // reserved bits set
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_header_len(24);
        assert_eq!(packet.header_len(), 24);
        packet.set_header_len(64);
        assert_eq!(packet.header_len(), 60);
        assert_eq!(bytes[12], 0xff);
    }

    #[test]
    fn flags() {
        let all = Flags::FIN
            | Flags::SYN
            | Flags::RST
            | Flags::PSH
            | Flags::ACK
            | Flags::URG
            | Flags::ECE
            | Flags::CWR;
        assert_eq!(all.bits(), 0xff);
        assert_eq!(Flags::from_bits(0x12), Flags::SYN | Flags::ACK);
        let mut bytes = PACKET_BYTES;
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_flags(Flags::FIN | Flags::ACK);
        assert_eq!(bytes[13], 0x11);
    }

    #[test]
    fn truncated() {
        for len in 0..40 {
            assert_eq!(
                Packet::new_checked(&PACKET_BYTES[..len]),
                Err(DropReason::BadL4Header),
                "len {len}"
            );
        }
        assert!(Packet::new_checked(&PACKET_BYTES[..40]).is_ok());
        // An unchecked short view reads zeros and no options, and never panics.
        let packet = Packet::new_unchecked(&PACKET_BYTES[..30]);
        assert_eq!(packet.options().count(), 0);
        assert_eq!(packet.payload(), &[] as &[u8]);
        let packet = Packet::new_unchecked(&PACKET_BYTES[..3]);
        assert_eq!(packet.dst_port(), 0);
    }

    #[test]
    fn bad_data_offset() {
        for offset in 0..5u8 {
            let mut bytes = PACKET_BYTES;
            bytes[12] = offset << 4;
            assert_eq!(
                Packet::new_checked(&bytes[..]),
                Err(DropReason::BadL4Header)
            );
        }
        // 15 words = 60 bytes > 44.
        let mut bytes = PACKET_BYTES;
        bytes[12] = 0xf0;
        assert_eq!(
            Packet::new_checked(&bytes[..]),
            Err(DropReason::BadL4Header)
        );
        // 11 words = 44 bytes = the whole segment: valid, empty payload.
        bytes[12] = 0xb0;
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.payload(), &[] as &[u8]);
    }

    #[test]
    fn bad_checksum() {
        for at in 0..PACKET_BYTES.len() {
            let mut bytes = PACKET_BYTES;
            bytes[at] ^= 0x01;
            assert!(!Packet::new_unchecked(&bytes[..]).verify_checksum(SRC, DST));
        }
    }

    #[test]
    fn set_mss_even_offset() {
        let mut bytes = PACKET_BYTES;
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        assert_eq!(packet.set_mss(1400), Some(1460));
        assert_eq!(packet.mss(), Some(1400));
        assert!(packet.verify_checksum(SRC, DST));
        let mut expected = PACKET_BYTES;
        expected[22..24].copy_from_slice(&1400u16.to_be_bytes());
        Packet::new_unchecked(&mut expected[..]).fill_checksum(SRC, DST);
        assert_eq!(bytes, expected);
    }

    #[test]
    fn set_mss_odd_offset() {
        // NOP, MSS 1460, NOP, NOP, NOP: the MSS value sits at odd offset 23.
        let mut bytes = with_options(&[0x01, 0x02, 0x04, 0x05, 0xb4, 0x01, 0x01, 0x01]);
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        assert_eq!(packet.set_mss(1360), Some(1460));
        assert_eq!(packet.mss(), Some(1360));
        assert!(packet.verify_checksum(SRC, DST));
        let mut expected = with_options(&[0x01, 0x02, 0x04, 0x05, 0x50, 0x01, 0x01, 0x01]);
        Packet::new_unchecked(&mut expected[..]).fill_checksum(SRC, DST);
        assert_eq!(bytes, expected);
        // No MSS option: nothing changes.
        let mut bytes = with_options(&[0x01, 0x01, 0x01, 0x00]);
        let before = bytes.clone();
        assert_eq!(Packet::new_unchecked(&mut bytes[..]).set_mss(1360), None);
        assert_eq!(bytes, before);
    }

    /// The segment `bytes` with its checksum recomputed by etherparse (independent of
    /// `fill_checksum`).
    fn etherparse_checksummed(mut bytes: Vec<u8>) -> Vec<u8> {
        let (header, payload) = etherparse::TcpHeader::from_slice(&bytes).unwrap();
        let sum = header
            .calc_checksum_ipv4_raw(SRC.octets(), DST.octets(), payload)
            .unwrap();
        bytes[16..18].copy_from_slice(&sum.to_be_bytes());
        bytes
    }

    #[test]
    fn remove_timestamps() {
        // Linux's SYN layout: the option at even offset 26.
        let mut bytes = PACKET_BYTES;
        assert!(Packet::new_unchecked(&mut bytes[..]).remove_timestamps());
        let mut expected = PACKET_BYTES.to_vec();
        expected[26..36].copy_from_slice(&[1; 10]);
        assert_eq!(bytes.to_vec(), etherparse_checksummed(expected));
        // Odd offset 21, after one NOP; a second Timestamps option is left alone.
        let ts = [0x08, 0x0a, 1, 2, 3, 4, 5, 6, 7, 8];
        let mut area = vec![0x01];
        area.extend_from_slice(&ts);
        area.extend_from_slice(&ts);
        area.push(0x00);
        let mut bytes = with_options(&area);
        assert!(Packet::new_unchecked(&mut bytes[..]).remove_timestamps());
        let mut expected = with_options(&area);
        expected[21..31].copy_from_slice(&[1; 10]);
        assert_eq!(bytes, etherparse_checksummed(expected));
        // None, or one of the wrong length: nothing written.
        for area in [
            &[0x02, 0x04, 0x05, 0xb4][..],
            &[0x08, 0x08, 1, 2, 3, 4, 5, 6][..],
        ] {
            let mut bytes = with_options(area);
            let before = bytes.clone();
            assert!(!Packet::new_unchecked(&mut bytes[..]).remove_timestamps());
            assert_eq!(bytes, before);
        }
    }

    #[test]
    fn sub_sack_edges() {
        // NOP NOP SACK with two blocks (even offset 22), then an odd-offset one-block SACK
        // after a NOP, then EOL.
        let area = [
            0x01, 0x01, 0x05, 0x12, // SACK, length 18
            0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x20, // 16..32
            0xff, 0xff, 0xff, 0xf0, 0x00, 0x00, 0x00, 0x05, // wraps: -16..5
            0x01, 0x05, 0x0a, // NOP, SACK, length 10 (kind at odd offset 41)
            0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, //
            0x00, // EOL
        ];
        let mut bytes = with_options(&area);
        assert_eq!(
            Packet::new_unchecked(&mut bytes[..]).sub_sack_edges(0x20),
            3
        );
        let edges = [
            0xffff_fff0u32,
            0x0000,
            0xffff_ffd0,
            0xffff_ffe5,
            0x1234_5658,
            0x9abc_ded0,
        ];
        let mut expected_area = area.to_vec();
        for (i, edge) in edges[..4].iter().enumerate() {
            let at = 4 + 4 * i;
            expected_area[at..at + 4].copy_from_slice(&edge.to_be_bytes());
        }
        expected_area[23..27].copy_from_slice(&edges[4].to_be_bytes());
        expected_area[27..31].copy_from_slice(&edges[5].to_be_bytes());
        let expected = etherparse_checksummed(with_options(&expected_area));
        assert_eq!(bytes, expected);
        // Malformed SACK lengths (not 2 + 8n, or no block) are left alone.
        for area in [
            &[0x05, 0x06, 0, 0, 0, 1, 0x01, 0x01][..],
            &[0x05, 0x02, 0x01, 0x01][..],
        ] {
            let mut bytes = with_options(area);
            let before = bytes.clone();
            assert_eq!(Packet::new_unchecked(&mut bytes[..]).sub_sack_edges(7), 0);
            assert_eq!(bytes, before);
        }
    }

    proptest! {
        /// NAT's rewrites (addresses in the pseudo-header, ports, sequence numbers): the
        /// incremental checksum equals a full recompute.
        #[test]
        fn incremental_checksum(
            new_src in any::<u32>(),
            new_dst in any::<u32>(),
            new_sport in any::<u16>(),
            new_dport in any::<u16>(),
            new_seq in any::<u32>(),
        ) {
            let mut bytes = PACKET_BYTES;
            let mut packet = Packet::new_unchecked(&mut bytes[..]);
            let mut csum = packet.checksum();
            csum = checksum::update_u32(csum, SRC.to_bits(), new_src);
            csum = checksum::update_u32(csum, DST.to_bits(), new_dst);
            csum = checksum::update_u16(csum, packet.src_port(), new_sport);
            csum = checksum::update_u16(csum, packet.dst_port(), new_dport);
            csum = checksum::update_u32(csum, packet.seq_number(), new_seq);
            packet.set_src_port(new_sport);
            packet.set_dst_port(new_dport);
            packet.set_seq_number(new_seq);
            packet.fill_checksum(new_src.into(), new_dst.into());
            prop_assert_eq!(csum, packet.checksum());
        }

        /// MSS rewrite at any option position keeps the checksum right.
        #[test]
        fn set_mss_any_offset(nops in 0usize..4, old in any::<u16>(), new in any::<u16>()) {
            let mut area = vec![0x01; nops];
            area.extend_from_slice(&[0x02, 0x04]);
            area.extend_from_slice(&old.to_be_bytes());
            area.resize(8, 0x01);
            let mut bytes = with_options(&area);
            let mut packet = Packet::new_unchecked(&mut bytes[..]);
            prop_assert_eq!(packet.set_mss(new), Some(old));
            prop_assert_eq!(packet.mss(), Some(new));
            let incremental = packet.checksum();
            packet.fill_checksum(SRC, DST);
            prop_assert_eq!(incremental, packet.checksum());
        }

        /// Arbitrary option bytes: the walk never panics, never yields an option outside the
        /// area, and always terminates.
        #[test]
        fn arbitrary_options(area in proptest::collection::vec(any::<u8>(), 0..=40)) {
            let mut area = area;
            area.truncate(area.len() / 4 * 4);
            let bytes = with_options(&area);
            let packet = Packet::new_checked(&bytes[..]).unwrap();
            for option in packet.options() {
                prop_assert!(option.offset >= 20);
                prop_assert!(option.offset + 2 + option.data.len() <= packet.header_len());
            }
            prop_assert!(packet.options().count() <= 20);
            let _ = packet.mss();
        }

        /// Arbitrary bytes never panic.
        #[test]
        fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let packet = Packet::new_unchecked(&bytes[..]);
            if packet.check_len().is_ok() {
                prop_assert!(packet.header_len() >= 20 && packet.header_len() <= bytes.len());
            }
            let _ = (packet.options().count(), packet.payload(), packet.mss());
            let _ = packet.verify_checksum(SRC, DST);
        }
    }
}
