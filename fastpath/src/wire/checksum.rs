//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! Sums are one's-complement sums of big-endian 16-bit words, folded to 16 bits and *not*
//! complemented; the checksum field holds the complement. A checksum verifies when the sum over
//! the covered bytes, checksum field included, is `0xffff`.
//!
//! NAT rewrites addresses and ports and must not touch the rest of the packet, so it updates
//! checksums incrementally with RFC 1624 eqn. 3, `HC' = ~(~HC + ~m + m')`, which unlike
//! eqn. 2 never produces the `0xffff`-for-`0x0000` error RFC 1624 §3 describes: for any packet
//! whose covered bytes are not all zero it yields exactly the full recomputation.
//!
//! The updates work on 16-bit words aligned to the start of the checksummed data. Every field
//! NAT changes (addresses, ports, the ICMP type/code word) is aligned; a 16-bit value at an odd
//! offset (a TCP option after a NOP) is passed byte-swapped, since the one's-complement sum is
//! byte-order independent (RFC 1071 §2(B)).
//!
//! UDP (RFC 768): a checksum field of 0 means "no checksum". [`udp_update_u16`] and
//! [`udp_update_u32`] keep 0 as 0 and send a computed 0 as `0xffff`; the full computation in
//! [`udp::Packet::fill_checksum`](super::udp::Packet::fill_checksum) does the same.
//!
//! IPv6 (RFC 8200 §8.1): TCP, UDP and ICMPv6 checksums cover a pseudo-header of source and
//! destination address, upper-layer packet length (32 bits) and next header
//! ([`pseudo_header_v6`]; the addresses are those of the final destination, not of a routing
//! header's intermediate hops). ICMPv6 is covered too, unlike ICMPv4. A UDP checksum of 0 is
//! *invalid* over IPv6 (RFC 8200 §8.1; the RFC 6935/6936 tunnel exception is not supported):
//! [`udp_v6_update_ipv6`] updates it as any other value, so a received 0 stays invalid, while a
//! computed 0 is still sent as `0xffff`. NAT66 changes 128-bit addresses: [`update_ipv6`] and
//! [`Delta::ipv6`] are RFC 1624 eqn. 3 over the eight words.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Fold a wide one's-complement sum to 16 bits with end-around carry.
#[inline]
const fn fold(mut sum: u64) -> u16 {
    // Two steps fold any sum below 2^32 (every incremental update) without a loop; the loop
    // finishes wider ones.
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// Return the folded one's-complement sum of `bytes` as big-endian 16-bit words.
///
/// An odd trailing byte is padded with a zero byte (RFC 1071 §4.1), so only the last of several
/// slices summed separately and [`combine`]d may have an odd length.
pub fn data(bytes: &[u8]) -> u16 {
    // Eight bytes at a time: a big-endian u64 is four 16-bit words, and 2^64 ≡ 1 (mod 0xffff),
    // so a 64-bit sum with end-around carry folds to the same 16-bit sum.
    let mut sum: u64 = 0;
    let mut words = bytes.chunks_exact(8);
    for chunk in &mut words {
        if let Ok(word) = <[u8; 8]>::try_from(chunk) {
            let (s, carry) = sum.overflowing_add(u64::from_be_bytes(word));
            sum = s + u64::from(carry);
        }
    }
    let mut rest = words.remainder().chunks_exact(2);
    let mut tail: u64 = 0;
    for chunk in &mut rest {
        if let Ok(word) = <[u8; 2]>::try_from(chunk) {
            tail += u64::from(u16::from_be_bytes(word));
        }
    }
    if let Some(&last) = rest.remainder().first() {
        tail += u64::from(last) << 8;
    }
    // `sum` is a folded u64 and `tail` at most four words: fold `sum` once before adding.
    fold(u64::from(fold(sum)) + tail)
}

/// Return the folded one's-complement sum of a 20-byte IPv4 header (IHL 5, the header of
/// nearly every packet): [`data`] without its loop, five big-endian 32-bit words added in a
/// `u64` (2^32 ≡ 1 mod 0xffff, so a 32-bit word sums as its two 16-bit halves).
#[inline]
pub fn ipv4_header(header: &[u8; 20]) -> u16 {
    let [a0, a1, a2, a3, b0, b1, b2, b3, c0, c1, c2, c3, d0, d1, d2, d3, e0, e1, e2, e3] = *header;
    let word = |bytes: [u8; 4]| u64::from(u32::from_be_bytes(bytes));
    fold(
        word([a0, a1, a2, a3])
            + word([b0, b1, b2, b3])
            + word([c0, c1, c2, c3])
            + word([d0, d1, d2, d3])
            + word([e0, e1, e2, e3]),
    )
}

/// Whether a 20-byte IPv4 header's checksum verifies ([`ipv4_header`] is `0xffff`), without
/// byte swaps: the words are summed in native order, since the one's-complement sum is
/// byte-order independent (RFC 1071 §2(B)) and `0xffff` is its own swap.
#[inline]
pub fn ipv4_header_verifies(header: &[u8; 20]) -> bool {
    let [a0, a1, a2, a3, b0, b1, b2, b3, c0, c1, c2, c3, d0, d1, d2, d3, e0, e1, e2, e3] = *header;
    let word = |bytes: [u8; 4]| u64::from(u32::from_ne_bytes(bytes));
    let sum = fold(
        word([a0, a1, a2, a3])
            + word([b0, b1, b2, b3])
            + word([c0, c1, c2, c3])
            + word([d0, d1, d2, d3])
            + word([e0, e1, e2, e3]),
    );
    sum == 0xffff
}

/// Return the one's-complement sum of several partial sums.
pub fn combine(sums: &[u16]) -> u16 {
    fold(sums.iter().map(|&s| u64::from(s)).sum())
}

/// Return the sum of the IPv4 pseudo-header (RFC 793 §3.1, RFC 768) for a TCP or UDP checksum:
/// source and destination address, protocol, and the length of the TCP segment or UDP datagram.
pub fn pseudo_header(src_addr: Ipv4Addr, dst_addr: Ipv4Addr, protocol: u8, length: usize) -> u16 {
    let src = u32::from(src_addr);
    let dst = u32::from(dst_addr);
    fold(
        u64::from(src >> 16)
            + u64::from(src & 0xffff)
            + u64::from(dst >> 16)
            + u64::from(dst & 0xffff)
            + u64::from(protocol)
            // A usize always fits a u64 on the targets DPDK supports (64-bit only).
            + length as u64,
    )
}

/// Return the checksum for data whose sum is `sum`: its complement.
#[inline]
pub const fn finish(sum: u16) -> u16 {
    !sum
}

/// Return checksum `checksum` updated for an aligned 16-bit word changed from `old` to `new`
/// (RFC 1624 eqn. 3).
#[inline]
pub const fn update_u16(checksum: u16, old: u16, new: u16) -> u16 {
    !fold((!checksum) as u64 + (!old) as u64 + new as u64)
}

/// Return checksum `checksum` updated for an aligned 32-bit field (an IPv4 address, a TCP
/// sequence number) changed from `old` to `new` (RFC 1624 eqn. 3, over its two words).
#[inline]
pub const fn update_u32(checksum: u16, old: u32, new: u32) -> u16 {
    !fold(
        (!checksum) as u64
            + (!(old >> 16) & 0xffff) as u64
            + (!old & 0xffff) as u64
            + (new >> 16) as u64
            + (new & 0xffff) as u64,
    )
}

/// Several changed words at once, for RFC 1624 eqn. 3 `HC' = ~(~HC + Σ(~m + m'))`: the sum
/// of `~m + m'` over the changes, applied to every checksum that covers them (an address is in
/// the IPv4 header and in the TCP/UDP pseudo-header). Applying it gives exactly what the
/// same [`update_u16`]/[`update_u32`] calls one after the other give, with one fold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delta(u64);

impl Delta {
    /// The changes so far plus an aligned 16-bit word changed from `old` to `new`.
    #[inline]
    #[must_use]
    pub const fn u16(self, old: u16, new: u16) -> Delta {
        // At most a few dozen words are ever added: no overflow.
        Delta(self.0 + (!old) as u64 + new as u64)
    }

    /// The changes so far plus an aligned 32-bit field changed from `old` to `new`.
    #[inline]
    #[must_use]
    pub const fn u32(self, old: u32, new: u32) -> Delta {
        // Both words at once, unsplit: 2^16 ≡ 1 (mod 0xffff), so a 32-bit value adds up as
        // its two 16-bit halves, and the fold of `apply` takes the wider sum.
        Delta(self.0 + (!old) as u64 + new as u64)
    }

    /// The changes of both.
    #[inline]
    #[must_use]
    pub const fn plus(self, other: Delta) -> Delta {
        Delta(self.0 + other.0)
    }

    /// Return `checksum` updated for the changes.
    #[inline]
    pub const fn apply(self, checksum: u16) -> u16 {
        !fold((!checksum) as u64 + self.0)
    }
}

/// Return checksum `checksum` updated for the bytes at `offset` (counted from the start of the
/// checksummed data) changed from `old` to `new`, at any alignment: a run that starts at an
/// odd offset adds its bytes to the other halves of the words, which is its sum byte-swapped
/// (RFC 1071 §2(B)). The lengths may differ (a run of options replaced by a shorter or longer
/// one) as long as everything after the run keeps its alignment (moves by an even number of
/// bytes); otherwise that part must be accounted for separately.
#[inline]
pub fn update_bytes(checksum: u16, offset: usize, old: &[u8], new: &[u8]) -> u16 {
    let (old, new) = (data(old), data(new));
    if offset & 1 == 0 {
        update_u16(checksum, old, new)
    } else {
        update_u16(checksum, old.swap_bytes(), new.swap_bytes())
    }
}

/// Map a UDP checksum computed as 0 to `0xffff`: 0 on the wire means "no checksum"
/// (RFC 768), and `0xffff` is the same value in one's complement.
#[inline]
pub const fn udp_nonzero(checksum: u16) -> u16 {
    if checksum == 0 {
        0xffff
    } else {
        checksum
    }
}

/// [`update_u16`] for a UDP checksum: a datagram sent without a checksum (0) keeps none, and an
/// updated checksum of 0 is sent as `0xffff` (RFC 768).
#[inline]
pub const fn udp_update_u16(checksum: u16, old: u16, new: u16) -> u16 {
    if checksum == 0 {
        0
    } else {
        udp_nonzero(update_u16(checksum, old, new))
    }
}

/// [`update_u32`] for a UDP checksum, with the rules of [`udp_update_u16`].
#[inline]
pub const fn udp_update_u32(checksum: u16, old: u32, new: u32) -> u16 {
    if checksum == 0 {
        0
    } else {
        udp_nonzero(update_u32(checksum, old, new))
    }
}

/// Return the sum of the IPv6 pseudo-header (RFC 8200 §8.1) for a TCP, UDP or ICMPv6
/// checksum: source and destination address, the upper-layer packet length (of the TCP
/// segment, UDP datagram or ICMPv6 message, as a 32-bit value) and the next header value of
/// the upper-layer protocol (6, 17 or 58, whatever extension headers precede it).
pub fn pseudo_header_v6(
    src_addr: &Ipv6Addr,
    dst_addr: &Ipv6Addr,
    next_header: u8,
    length: usize,
) -> u16 {
    let src = u128::from_be_bytes(src_addr.octets());
    let dst = u128::from_be_bytes(dst_addr.octets());
    fold(
        u128_sum(src)
            + u128_sum(dst)
            + u64::from(next_header)
            // A usize always fits a u64 on the targets DPDK supports (64-bit only); the
            // length word is 32 bits, summed as its two 16-bit halves by the fold.
            + length as u64,
    )
}

/// The one's-complement sum of a 128-bit value's eight 16-bit words, as the two folded sums
/// of its 64-bit halves (a 64-bit value folds like its four words, 2^16 ≡ 1 mod 0xffff): at
/// most 0x1fffe, so many of them add up in a u64 without overflow.
#[inline]
const fn u128_sum(value: u128) -> u64 {
    fold((value >> 64) as u64) as u64 + fold(value as u64) as u64
}

/// Return checksum `checksum` updated for an IPv6 address (eight aligned words, in the
/// pseudo-header of TCP, UDP and ICMPv6) changed from `old` to `new` (RFC 1624 eqn. 3).
#[inline]
pub const fn update_ipv6(checksum: u16, old: &Ipv6Addr, new: &Ipv6Addr) -> u16 {
    Delta(0).ipv6(old, new).apply(checksum)
}

/// [`update_ipv6`] for a UDP checksum over IPv6: 0 is not "no checksum" there (RFC 8200
/// §8.1) but an invalid value, updated as any other, so a receiver still refuses it; an
/// updated checksum of 0 is sent as `0xffff`, as RFC 768 sends a computed 0.
#[inline]
pub const fn udp_v6_update_ipv6(checksum: u16, old: &Ipv6Addr, new: &Ipv6Addr) -> u16 {
    if checksum == 0 {
        0
    } else {
        udp_nonzero(update_ipv6(checksum, old, new))
    }
}

impl Delta {
    /// The changes so far plus an IPv6 address (eight aligned words) changed from `old` to
    /// `new`.
    #[inline]
    #[must_use]
    pub const fn ipv6(self, old: &Ipv6Addr, new: &Ipv6Addr) -> Delta {
        let old = u128::from_be_bytes(old.octets());
        let new = u128::from_be_bytes(new.octets());
        // ~m over the 128 bits is the complement of every word; each 64-bit half is folded
        // first so a dozen addresses still cannot overflow the u64.
        Delta(self.0 + u128_sum(!old) + u128_sum(new))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 1071 §4.1, word by word: the reference the fast sum is checked against.
    fn reference(bytes: &[u8]) -> u16 {
        let mut sum: u32 = 0;
        for pair in bytes.chunks(2) {
            let word = u32::from(pair[0]) << 8 | u32::from(*pair.get(1).unwrap_or(&0));
            sum += word;
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum as u16
    }

    /// An IPv4 header from RFC 1071's era of examples, checksum 0xb861 (Wikipedia's worked
    /// example, checked with `etherparse` below).
    static PACKET_BYTES: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, // version, IHL, TOS, total length 115
        0x00, 0x00, 0x40, 0x00, // ident 0, DF
        0x40, 0x11, 0xb8, 0x61, // TTL 64, UDP, checksum 0xb861
        0xc0, 0xa8, 0x00, 0x01, // 192.168.0.1
        0xc0, 0xa8, 0x00, 0xc7, // 192.168.0.199
    ];

    #[test]
    fn deconstruct() {
        assert_eq!(data(&PACKET_BYTES), 0xffff);
        let mut zeroed = PACKET_BYTES;
        zeroed[10] = 0;
        zeroed[11] = 0;
        assert_eq!(finish(data(&zeroed)), 0xb861);
        let (header, _) = etherparse::Ipv4Header::from_slice(&PACKET_BYTES).unwrap();
        assert_eq!(header.calc_header_checksum(), 0xb861);
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: the bytes 00 01 f2 03 f4 f5 f6 f7 sum to 0xddf2.
        let bytes = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(data(&bytes), 0xddf2);
        assert_eq!(data(&bytes[..7]), reference(&bytes[..7]));
        assert_eq!(data(&[]), 0);
        assert_eq!(data(&[0xab]), 0xab00);
    }

    #[test]
    fn combine_and_pseudo_header() {
        // 192.168.0.1 -> 192.168.0.199, UDP, length 95:
        // c0a8 + 0001 + c0a8 + 00c7 + 0011 + 005f = 0x18288 -> 0x8289.
        let src = Ipv4Addr::new(192, 168, 0, 1);
        let dst = Ipv4Addr::new(192, 168, 0, 199);
        assert_eq!(pseudo_header(src, dst, 17, 95), 0x8289);
        assert_eq!(combine(&[0xffff, 0x0001]), 0x0001);
        assert_eq!(combine(&[0x8000, 0x8000]), 0x0001);
        assert_eq!(combine(&[]), 0);
    }

    #[test]
    fn update_rfc1624_example() {
        // RFC 1624 §4: HC = 0xdd2f, m = 0x5555 -> m' = 0x3285 gives HC' = 0x0000.
        assert_eq!(update_u16(0xdd2f, 0x5555, 0x3285), 0x0000);
        // Eqn. 3 keeps 0x0000 (eqn. 2 would give 0xffff), and UDP sends it as 0xffff.
        assert_eq!(udp_update_u16(0xdd2f, 0x5555, 0x3285), 0xffff);
        assert_eq!(udp_update_u16(0, 0x5555, 0x3285), 0);
        assert_eq!(udp_update_u32(0, 0x5555_0000, 0x3285_0000), 0);
        assert_eq!(udp_update_u32(0xdd2f, 0x5555_0000, 0x3285_0000), 0xffff);
        assert_eq!(udp_nonzero(0), 0xffff);
        assert_eq!(udp_nonzero(0x1234), 0x1234);
    }

    /// The 16-bit word of `bytes` at `at`, as the sum sees it (an odd offset straddles words).
    fn word_at(bytes: &[u8], at: usize) -> u16 {
        u16::from_be_bytes([bytes[at], bytes[at + 1]])
    }

    /// Checksum over `bytes` with the field at `csum` zeroed.
    fn full(bytes: &[u8], csum: usize) -> u16 {
        let mut copy = bytes.to_vec();
        copy[csum] = 0;
        copy[csum + 1] = 0;
        finish(data(&copy))
    }

    proptest! {
        #[test]
        fn fast_sum_matches_reference(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            prop_assert_eq!(data(&bytes), reference(&bytes));
        }

        #[test]
        fn delta_matches_chained_updates(
            checksum: u16,
            words in proptest::collection::vec((any::<u16>(), any::<u16>()), 0..6),
            addr in (any::<u32>(), any::<u32>()),
        ) {
            let mut delta = Delta::default().u32(addr.0, addr.1);
            let mut chained = update_u32(checksum, addr.0, addr.1);
            for &(old, new) in &words {
                delta = delta.u16(old, new);
                chained = update_u16(chained, old, new);
            }
            prop_assert_eq!(delta.apply(checksum), chained);
        }

        #[test]
        fn ipv4_header_sum_matches_data(bytes in proptest::array::uniform20(any::<u8>())) {
            prop_assert_eq!(ipv4_header(&bytes), data(&bytes));
        }

        #[test]
        fn ipv4_header_verifies_as_its_sum_says(
            mut bytes in proptest::array::uniform20(any::<u8>()),
            fill in any::<bool>(),
        ) {
            if fill {
                // A correct checksum (half of the cases), so that both answers are tested.
                bytes[10..12].copy_from_slice(&[0, 0]);
                let sum = !ipv4_header(&bytes);
                bytes[10..12].copy_from_slice(&sum.to_be_bytes());
            }
            prop_assert_eq!(ipv4_header_verifies(&bytes), ipv4_header(&bytes) == 0xffff);
        }

        #[test]
        fn split_sums_combine(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
            cut in 0usize..100,
        ) {
            let cut = (cut * 2).min(bytes.len() & !1);
            let (head, tail) = bytes.split_at(cut);
            prop_assert_eq!(combine(&[data(head), data(tail)]), data(&bytes));
        }

        /// A changed 16-bit word anywhere in a packet: incremental == full recompute, exactly.
        /// Byte 0 is kept non-zero (as in any real header), the one case eqn. 3 and a full
        /// recomputation may legitimately differ (0x0000 vs 0xffff) being all-zero data.
        #[test]
        fn update_u16_matches_full(
            mut bytes in proptest::collection::vec(any::<u8>(), 24..120),
            first in 1u8..,
            word in 0usize..60,
            new in any::<u16>(),
        ) {
            bytes[0] = first;
            let len = bytes.len() & !1;
            let bytes = &mut bytes[..len];
            let csum = 2; // the checksum field: bytes 2..4
            let old_csum = full(bytes, csum);
            bytes[csum..csum + 2].copy_from_slice(&old_csum.to_be_bytes());
            let at = 4 + (word * 2) % (len - 4);
            let old = word_at(bytes, at);
            bytes[at..at + 2].copy_from_slice(&new.to_be_bytes());
            let expected = full(bytes, csum);
            prop_assert_eq!(update_u16(old_csum, old, new), expected);
            // And the updated packet verifies.
            bytes[csum..csum + 2].copy_from_slice(&expected.to_be_bytes());
            prop_assert_eq!(data(bytes), 0xffff);
        }

        /// A changed 16-bit value at an odd offset: update with the byte-swapped words.
        #[test]
        fn update_u16_odd_offset_swapped(
            mut bytes in proptest::collection::vec(any::<u8>(), 24..120),
            first in 1u8..,
            word in 0usize..60,
            new in any::<u16>(),
        ) {
            bytes[0] = first;
            let len = bytes.len() & !1;
            let bytes = &mut bytes[..len];
            let old_csum = full(bytes, 2);
            bytes[2..4].copy_from_slice(&old_csum.to_be_bytes());
            let at = 5 + (word * 2) % (len - 6);
            let old = word_at(bytes, at);
            bytes[at..at + 2].copy_from_slice(&new.to_be_bytes());
            prop_assert_eq!(
                update_u16(old_csum, old.swap_bytes(), new.swap_bytes()),
                full(bytes, 2)
            );
        }

        /// A changed aligned 32-bit field (an address): incremental == full recompute.
        #[test]
        fn update_u32_matches_full(
            mut bytes in proptest::collection::vec(any::<u8>(), 24..120),
            first in 1u8..,
            word in 0usize..60,
            new in any::<u32>(),
        ) {
            bytes[0] = first;
            let len = bytes.len() & !1;
            let bytes = &mut bytes[..len];
            let old_csum = full(bytes, 2);
            bytes[2..4].copy_from_slice(&old_csum.to_be_bytes());
            let at = 4 + (word * 2) % (len - 6);
            let old = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
            bytes[at..at + 4].copy_from_slice(&new.to_be_bytes());
            let expected = full(bytes, 2);
            prop_assert_eq!(update_u32(old_csum, old, new), expected);
            // Two 16-bit updates give the same.
            let twice = update_u16(
                update_u16(old_csum, (old >> 16) as u16, (new >> 16) as u16),
                old as u16,
                new as u16,
            );
            prop_assert_eq!(twice, expected);
        }

        /// UDP: the update matches a full recompute with the zero-as-0xffff rule, and a
        /// datagram without a checksum keeps none.
        #[test]
        fn udp_update_matches_full(
            mut bytes in proptest::collection::vec(any::<u8>(), 24..120),
            first in 1u8..,
            word in 0usize..60,
            new in any::<u32>(),
        ) {
            bytes[0] = first;
            let len = bytes.len() & !1;
            let bytes = &mut bytes[..len];
            let old_csum = udp_nonzero(full(bytes, 6));
            bytes[6..8].copy_from_slice(&old_csum.to_be_bytes());
            let at = 8 + (word * 2) % (len - 10);
            let old = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
            bytes[at..at + 4].copy_from_slice(&new.to_be_bytes());
            prop_assert_eq!(udp_update_u32(old_csum, old, new), udp_nonzero(full(bytes, 6)));
            prop_assert_eq!(udp_update_u32(0, old, new), 0);
        }

        /// A run of bytes of any length replaced at any offset, odd ones included:
        /// incremental == full recompute.
        #[test]
        fn update_bytes_matches_full(
            mut bytes in proptest::collection::vec(any::<u8>(), 24..120),
            first in 1u8..,
            at in 4usize..100,
            new in proptest::collection::vec(any::<u8>(), 0..20),
        ) {
            bytes[0] = first;
            let at = at.min(bytes.len() - 1);
            let end = (at + new.len()).min(bytes.len());
            let new = &new[..end - at];
            let old_csum = full(&bytes, 2);
            bytes[2..4].copy_from_slice(&old_csum.to_be_bytes());
            let old = bytes[at..end].to_vec();
            bytes[at..end].copy_from_slice(new);
            prop_assert_eq!(update_bytes(old_csum, at, &old, new), full(&bytes, 2));
        }

        /// A run replaced by a longer or shorter one whose tail moves by an even amount.
        #[test]
        fn update_bytes_resized(
            mut bytes in proptest::collection::vec(any::<u8>(), 8..60),
            first in 1u8..,
            old_words in 0usize..10,
            new in proptest::collection::vec(any::<u16>(), 0..10),
            tail in proptest::collection::vec(any::<u8>(), 0..20),
        ) {
            bytes[0] = first;
            let at = 4;
            let old_len = (old_words * 2).min((bytes.len() - at) & !1);
            let mut before = bytes[..at + old_len].to_vec();
            before.extend_from_slice(&tail);
            let old_csum = full(&before, 2);
            before[2..4].copy_from_slice(&old_csum.to_be_bytes());
            let new: Vec<u8> = new.iter().flat_map(|w| w.to_be_bytes()).collect();
            let mut after = before[..at].to_vec();
            after.extend_from_slice(&new);
            after.extend_from_slice(&tail);
            prop_assert_eq!(
                update_bytes(old_csum, at, &before[at..at + old_len], &new),
                full(&after, 2)
            );
        }
    }
}

#[cfg(test)]
mod tests_v6 {
    use super::*;
    use crate::wire::{ether, golden_v6, icmpv6, ipv6, tcp, udp};
    use proptest::prelude::*;

    /// The pseudo-header of RFC 8200 §8.1 as bytes: source, destination, 32-bit upper-layer
    /// length, three zero bytes, next header.
    fn pseudo_bytes(src: &Ipv6Addr, dst: &Ipv6Addr, next: u8, len: u32) -> Vec<u8> {
        let mut bytes = src.octets().to_vec();
        bytes.extend_from_slice(&dst.octets());
        bytes.extend_from_slice(&len.to_be_bytes());
        bytes.extend_from_slice(&[0, 0, 0, next]);
        bytes
    }

    /// The IPv6 header and upper-layer bytes of a captured frame without extension headers.
    fn split(frame: &[u8]) -> (ipv6::Packet<&[u8]>, &[u8]) {
        let ip = ipv6::Packet::new_checked(&frame[ether::HEADER_LEN..]).unwrap();
        (ip, &frame[ether::HEADER_LEN + ipv6::HEADER_LEN..])
    }

    #[test]
    fn pseudo_header_of_a_known_packet() {
        let a: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let b: Ipv6Addr = "2001:db8::2".parse().unwrap();
        // 2001 + 0db8 + 0001 + 2001 + 0db8 + 0002 + 0000 + 000d + 0011 = 0x5b93: what Linux
        // leaves in the checksum field of this datagram (UDP_HELLO) for the NIC to finish when
        // transmit checksum offload is on, as a capture with offload on shows.
        assert_eq!(pseudo_header_v6(&a, &b, 17, 13), 0x5b93);
        assert_eq!(
            pseudo_header_v6(&a, &b, 17, 13),
            data(&pseudo_bytes(&a, &b, 17, 13))
        );
        // All ones: eight 0xffff words per address fold to 0xffff.
        let ones = Ipv6Addr::from(u128::MAX);
        assert_eq!(pseudo_header_v6(&ones, &ones, 0, 0), 0xffff);
        assert_eq!(
            pseudo_header_v6(&Ipv6Addr::UNSPECIFIED, &Ipv6Addr::UNSPECIFIED, 0, 0),
            0
        );
    }

    #[test]
    fn captured_tcp_and_udp_checksums() {
        for frame in [&golden_v6::TCP_SYN[..], &golden_v6::TCP_RST[..]] {
            let (ip, segment) = split(frame);
            let (src, dst) = (ip.src_addr(), ip.dst_addr());
            assert!(tcp::Packet::new_checked(segment)
                .unwrap()
                .verify_checksum_v6(&src, &dst));
            let mut bytes = segment.to_vec();
            let mut packet = tcp::Packet::new_unchecked(&mut bytes[..]);
            packet.set_checksum(0x1234);
            packet.fill_checksum_v6(&src, &dst);
            assert_eq!(bytes, segment);
            let (theirs, payload) = etherparse::TcpHeader::from_slice(segment).unwrap();
            assert_eq!(
                theirs.calc_checksum_ipv6_raw(src.octets(), dst.octets(), payload),
                Ok(theirs.checksum)
            );
        }
        // Odd (13), even (10) and header-only (8) datagrams.
        for frame in [
            &golden_v6::UDP_HELLO[..],
            &golden_v6::UDP_FFFF[..],
            &golden_v6::UDP_EMPTY[..],
        ] {
            let (ip, datagram) = split(frame);
            let (src, dst) = (ip.src_addr(), ip.dst_addr());
            let packet = udp::Packet::new_checked(datagram).unwrap();
            assert!(packet.verify_checksum_v6(&src, &dst));
            let mut bytes = datagram.to_vec();
            udp::Packet::new_unchecked(&mut bytes[..]).fill_checksum_v6(&src, &dst);
            assert_eq!(bytes, datagram);
            let (theirs, payload) = etherparse::UdpHeader::from_slice(datagram).unwrap();
            assert_eq!(
                theirs.calc_checksum_ipv6_raw(src.octets(), dst.octets(), payload),
                Ok(theirs.checksum)
            );
            // The v4 pseudo-header gives another sum.
            assert!(!packet
                .verify_checksum(Ipv4Addr::new(32, 1, 13, 184), Ipv4Addr::new(32, 1, 13, 184)));
        }
    }

    #[test]
    fn udp_checksum_zero_is_invalid_over_ipv6() {
        let (ip, datagram) = split(&golden_v6::UDP_HELLO);
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        let mut bytes = datagram.to_vec();
        let mut packet = udp::Packet::new_unchecked(&mut bytes[..]);
        packet.set_checksum(0);
        // "No checksum" over IPv4, refused over IPv6.
        assert!(packet.verify_checksum(Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST));
        assert!(!packet.verify_checksum_v6(&src, &dst));
        // NAT keeps a received 0 as 0 (still refused downstream), never makes it valid.
        let new: Ipv6Addr = "2001:db8:1::11".parse().unwrap();
        assert_eq!(udp_v6_update_ipv6(0, &dst, &new), 0);
    }

    #[test]
    fn udp_computed_zero_is_sent_as_ffff() {
        let src: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let old_dst: Ipv6Addr = "2001:db8::100".parse().unwrap();
        let dst: Ipv6Addr = "2001:db8:1::11".parse().unwrap();
        // A two-byte payload chosen so that the whole sum is 0xffff: the checksum computes
        // to 0, which UDP sends as 0xffff.
        let mut bytes = [0x12, 0x34, 0x1f, 0x90, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x00];
        let partial = combine(&[pseudo_header_v6(&src, &dst, 17, 10), data(&bytes)]);
        bytes[8..].copy_from_slice(&(0xffff - partial).to_be_bytes());
        assert_eq!(
            combine(&[pseudo_header_v6(&src, &dst, 17, 10), data(&bytes)]),
            0xffff
        );
        let mut packet = udp::Packet::new_unchecked(&mut bytes[..]);
        packet.fill_checksum_v6(&src, &dst);
        assert_eq!(packet.checksum(), 0xffff);
        assert!(packet.verify_checksum_v6(&src, &dst));
        // The same datagram to the VIP, rewritten to that real server by NAT66: the
        // incremental update lands on 0xffff too.
        let mut before = bytes;
        let mut packet = udp::Packet::new_unchecked(&mut before[..]);
        packet.fill_checksum_v6(&src, &old_dst);
        assert_ne!(packet.checksum(), 0xffff);
        assert_eq!(
            udp_v6_update_ipv6(packet.checksum(), &old_dst, &dst),
            0xffff
        );
    }

    #[test]
    fn unchanged_address_keeps_the_checksum() {
        let a: Ipv6Addr = "2001:db8::1".parse().unwrap();
        for checksum in [0x0000, 0x0001, 0x8000, 0xfffe, 0xffff] {
            // 0xffff and 0 are the same one's-complement value; eqn. 3 keeps either as is
            // except 0xffff, which no full computation produces for nonzero data.
            let updated = update_ipv6(checksum, &a, &a);
            assert_eq!(
                updated,
                if checksum == 0xffff { 0 } else { checksum },
                "{checksum:#x}"
            );
        }
    }

    /// A message of protocol `next` (6, 17 or 58) from `src` to `dst` with `payload`, its
    /// checksum filled by the full computation.
    fn message(
        next: u8,
        src: &Ipv6Addr,
        dst: &Ipv6Addr,
        sport: u16,
        dport: u16,
        payload: &[u8],
    ) -> Vec<u8> {
        match next {
            6 => {
                let mut bytes = vec![0u8; tcp::HEADER_LEN];
                bytes[..4].copy_from_slice(&[
                    (sport >> 8) as u8,
                    sport as u8,
                    (dport >> 8) as u8,
                    dport as u8,
                ]);
                bytes[12] = 0x50;
                bytes.extend_from_slice(payload);
                tcp::Packet::new_unchecked(&mut bytes[..]).fill_checksum_v6(src, dst);
                bytes
            }
            17 => {
                let mut bytes = vec![0u8; udp::HEADER_LEN];
                bytes[..4].copy_from_slice(&[
                    (sport >> 8) as u8,
                    sport as u8,
                    (dport >> 8) as u8,
                    dport as u8,
                ]);
                bytes.extend_from_slice(payload);
                let len = u16::try_from(bytes.len()).unwrap();
                let mut packet = udp::Packet::new_unchecked(&mut bytes[..]);
                packet.set_length(len);
                packet.fill_checksum_v6(src, dst);
                bytes
            }
            _ => {
                // An echo request; the identifier plays the port.
                let repr = icmpv6::Repr::EchoRequest {
                    ident: sport,
                    seq_no: dport,
                    data: payload,
                };
                let mut bytes = vec![0u8; repr.buffer_len()];
                repr.emit(&mut icmpv6::Packet::new_unchecked(&mut bytes[..]), src, dst)
                    .unwrap();
                bytes
            }
        }
    }

    proptest! {
        /// The pseudo-header sum equals the RFC 1071 sum of its RFC 8200 layout.
        #[test]
        fn pseudo_header_matches_its_bytes(
            src in any::<u128>(),
            dst in any::<u128>(),
            next in any::<u8>(),
            len in any::<u32>(),
        ) {
            let (src, dst) = (Ipv6Addr::from(src), Ipv6Addr::from(dst));
            prop_assert_eq!(
                pseudo_header_v6(&src, &dst, next, len as usize),
                data(&pseudo_bytes(&src, &dst, next, len))
            );
        }

        /// NAT66 over random TCP, UDP and ICMPv6 packets: both addresses and both ports (the
        /// ICMPv6 identifier) rewritten incrementally give exactly the full recomputation.
        #[test]
        fn incremental_equals_full(
            next in prop_oneof![Just(6u8), Just(17u8), Just(58u8)],
            src in any::<u128>(),
            dst in any::<u128>(),
            new_src in any::<u128>(),
            new_dst in any::<u128>(),
            sport in any::<u16>(),
            dport in any::<u16>(),
            new_sport in any::<u16>(),
            new_dport in any::<u16>(),
            payload in proptest::collection::vec(any::<u8>(), 0..70),
        ) {
            let (src, dst) = (Ipv6Addr::from(src), Ipv6Addr::from(dst));
            let (new_src, new_dst) = (Ipv6Addr::from(new_src), Ipv6Addr::from(new_dst));
            let before = message(next, &src, &dst, sport, dport, &payload);
            let after = message(next, &new_src, &new_dst, new_sport, new_dport, &payload);
            let old = u16::from_be_bytes([before[2], before[3]]);
            let new = u16::from_be_bytes([after[2], after[3]]);
            // ICMPv6 checksum sits at 2..4, TCP at 16..18, UDP at 6..8.
            let at = match next { 6 => 16, 17 => 6, _ => 2 };
            let old_csum = u16::from_be_bytes([before[at], before[at + 1]]);
            let full = u16::from_be_bytes([after[at], after[at + 1]]);
            let ports = Delta::default().u16(u16::from_be_bytes([before[0], before[1]]), u16::from_be_bytes([after[0], after[1]]));
            let ports = if next == 58 {
                // The identifier is at 4..6 and the sequence at 6..8.
                Delta::default()
                    .u16(u16::from_be_bytes([before[4], before[5]]), u16::from_be_bytes([after[4], after[5]]))
                    .u16(u16::from_be_bytes([before[6], before[7]]), u16::from_be_bytes([after[6], after[7]]))
            } else {
                ports.u16(old, new)
            };
            let delta = ports.ipv6(&src, &new_src).ipv6(&dst, &new_dst);
            let incremental = if next == 17 { udp_nonzero(delta.apply(old_csum)) } else { delta.apply(old_csum) };
            prop_assert_eq!(incremental, full);
            // One address at a time, through the single-change helpers.
            let mut stepwise = ports.apply(old_csum);
            if next == 17 {
                stepwise = udp_nonzero(stepwise);
                stepwise = udp_v6_update_ipv6(stepwise, &src, &new_src);
                stepwise = udp_v6_update_ipv6(stepwise, &dst, &new_dst);
            } else {
                stepwise = update_ipv6(stepwise, &src, &new_src);
                stepwise = update_ipv6(stepwise, &dst, &new_dst);
            }
            prop_assert_eq!(stepwise, full);
        }
    }
}
