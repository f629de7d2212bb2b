//! Zero-copy packet views: the only place that knows where a field sits in a header.
//!
//! One file per header, in the style of smoltcp's `wire`: [`ether`], [`arp`], [`ipv4`], [`ipv6`],
//! [`icmp`], [`icmpv6`], [`tcp`], [`udp`], plus the [`checksum`] arithmetic they share.
//!
//! Each header has a view `Packet<T: AsRef<[u8]>>` over a byte buffer:
//!
//! - `Packet::new_unchecked(buffer)` wraps without looking at the bytes;
//! - `Packet::check_len()` checks that the buffer holds every field the view reads, including
//!   lengths read from the header itself (IHL, total length, data offset, UDP length);
//! - `Packet::new_checked(buffer)` is both, and is what to use on received (untrusted) bytes.
//!   It is *not* for emission: a buffer about to be written holds no valid lengths yet.
//!
//! Getters are named after the RFC field; `set_<field>` exists only when `T: AsMut<[u8]>`, so a
//! read-only buffer cannot be written. Parse failures are the counted
//! [`DropReason`](crate::verdict::DropReason)s, not a unit error: every packet the data plane
//! refuses is accounted for by name. The IPv6 views ([`ipv6`], [`icmpv6`]) return typed errors
//! of their own ([`ipv6::Error`], [`icmpv6::Error`], with stable `as_str` names) until the
//! pipeline carries IPv6 and maps them to drop reasons.
//!
//! **No accessor panics, ever.** After `check_len()` every getter returns the field and every
//! setter writes it. On a buffer too short for a field (a view that skipped `check_len()`), a
//! getter returns zero (an empty slice for payloads) and a setter does nothing. The data plane
//! runs with `panic = "abort"`, so a malformed packet must never be able to reach a panic.
//!
//! Building a header works the other way round: `Repr` (for the headers rvs builds) holds only
//! supported values, `Repr::emit` writes it into a buffer of at least `Repr::buffer_len()`
//! bytes, and `Repr::parse(&Packet::new_checked(bytes)?)` reads it back.
//!
//! ```
//! use std::net::Ipv4Addr;
//! use fastpath::wire::ipv4;
//!
//! let repr = ipv4::Repr {
//!     src_addr: Ipv4Addr::new(10, 0, 0, 1),
//!     dst_addr: Ipv4Addr::new(10, 0, 0, 2),
//!     protocol: ipv4::Protocol::Udp,
//!     payload_len: 0,
//!     ttl: 64,
//!     dscp: 0,
//!     ecn: 0,
//!     ident: 0x1234,
//!     dont_frag: true,
//! };
//! let mut bytes = [0u8; ipv4::HEADER_LEN];
//! repr.emit(&mut ipv4::Packet::new_unchecked(&mut bytes[..])).unwrap();
//! let packet = ipv4::Packet::new_checked(&bytes[..]).unwrap();
//! packet.validate().unwrap();
//! assert_eq!(ipv4::Repr::parse(&packet).unwrap(), repr);
//! ```
//!
//! Numeric offsets appear only in each file's private `mod field`; code outside `wire/`
//! names fields through the views.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

pub mod arp;
pub mod checksum;
pub mod ether;
pub mod icmp;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod tcp;
pub mod udp;

#[cfg(test)]
pub(crate) mod golden_v6;

pub use ether::EthernetAddress;

/// Byte ranges of header fields, as used by each header's private `mod field`.
mod field {
    /// A fixed-size field: `start..end`.
    pub type Field = core::ops::Range<usize>;
    /// Everything from an offset on (a payload).
    pub type Rest = core::ops::RangeFrom<usize>;
}

/// Read the byte at `at`, or 0 if the buffer is too short.
#[inline]
fn read_u8(buf: &[u8], at: usize) -> u8 {
    buf.get(at).copied().unwrap_or(0)
}

/// Read the `N` bytes of `field`, or zeros if the buffer is too short.
#[inline]
fn read_bytes<const N: usize>(buf: &[u8], field: field::Field) -> [u8; N] {
    buf.get(field)
        .and_then(|bytes| <[u8; N]>::try_from(bytes).ok())
        .unwrap_or([0; N])
}

/// Read a big-endian `u16` field, or 0 if the buffer is too short.
#[inline]
fn read_u16(buf: &[u8], field: field::Field) -> u16 {
    u16::from_be_bytes(read_bytes(buf, field))
}

/// Read a big-endian `u32` field, or 0 if the buffer is too short.
#[inline]
fn read_u32(buf: &[u8], field: field::Field) -> u32 {
    u32::from_be_bytes(read_bytes(buf, field))
}

/// Write the byte at `at`; nothing if the buffer is too short.
#[inline]
fn write_u8(buf: &mut [u8], at: usize, value: u8) {
    if let Some(byte) = buf.get_mut(at) {
        *byte = value;
    }
}

/// Write the `N` bytes of `field`; nothing if the buffer is too short.
#[inline]
fn write_bytes<const N: usize>(buf: &mut [u8], field: field::Field, value: [u8; N]) {
    if let Some(bytes) = buf
        .get_mut(field)
        .and_then(|bytes| <&mut [u8; N]>::try_from(bytes).ok())
    {
        *bytes = value;
    }
}

/// Write a big-endian `u16` field; nothing if the buffer is too short.
#[inline]
fn write_u16(buf: &mut [u8], field: field::Field, value: u16) {
    write_bytes(buf, field, value.to_be_bytes());
}

/// Write a big-endian `u32` field; nothing if the buffer is too short.
#[inline]
fn write_u32(buf: &mut [u8], field: field::Field, value: u32) {
    write_bytes(buf, field, value.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_buffer_reads_zero_and_writes_nothing() {
        let mut buf = [0xabu8; 3];
        assert_eq!(read_u8(&buf, 3), 0);
        assert_eq!(read_u16(&buf, 2..4), 0);
        assert_eq!(read_u32(&buf, 0..4), 0);
        assert_eq!(read_u16(&buf, 1..3), 0xabab);
        write_u8(&mut buf, 3, 1);
        write_u16(&mut buf, 2..4, 0x0102);
        write_u32(&mut buf, 0..4, 0x0102_0304);
        assert_eq!(buf, [0xab; 3]);
        write_u16(&mut buf, 1..3, 0x0102);
        assert_eq!(buf, [0xab, 0x01, 0x02]);
    }
}
