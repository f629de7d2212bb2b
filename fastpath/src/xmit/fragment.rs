//! IPv4 fragmentation (RFC 791 §2.3, §3.2): a packet larger than the egress MTU that may be
//! fragmented leaves as several frames, as Linux's `ip_do_fragment` sends a forwarded packet
//! (IPVS hands every packet it may not answer with "fragmentation needed" to IP output,
//! which fragments it: `ensure_mtu_is_adequate` in `ip_vs_xmit.c`, then `ip_fragment`).
//!
//! Fragmentation turns one frame into several, so it needs buffers the pipeline does not
//! have: the pipeline says [`Verdict::Fragment`](crate::verdict::Verdict::Fragment) with the
//! MTU, and the worker allocates one buffer per fragment and has [`write`] fill it from the
//! frame, which it then frees.
//!
//! ## The fragments ([`plan`], [`write`])
//!
//! The packet's data (what follows its IPv4 header, up to its total length) is cut into
//! pieces, in order, each as large as the MTU allows after its fragment's header and, but for
//! the last, a multiple of 8 bytes (the fragment offset counts 8-byte units). Fragment `k`:
//!
//! - Ethernet: the frame's header, unchanged (the egress stage wrote the link's);
//! - IPv4: the packet's header, with: total length = header + piece; fragment offset = the
//!   packet's + the piece's start / 8; More Fragments set on every fragment but the last,
//!   and on the last too if the packet was itself a fragment that was not the last; Don't
//!   Fragment and the reserved bit clear (Linux writes only the offset and MF into the
//!   fragments of a forwarded packet); header checksum recomputed; identification, TOS, TTL,
//!   protocol and addresses kept;
//! - options: all of them in the first fragment; in the others only the options whose
//!   "copied" flag (the high bit of the type: security, source routes, router alert) is
//!   set, in their order, followed by End of Option List up to a multiple of 4 bytes, as
//!   RFC 791 asks ("copied into all fragments on fragmentation") and BSD's `ip_optcopy`
//!   does. (Linux keeps the first header's length and overwrites the other options with No
//!   Operation: the same options arrive, in a longer header.)
//! - the piece.
//!
//! A TCP or UDP checksum covers the whole datagram and is left as it is: the receiver checks
//! it after reassembly.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::arithmetic_side_effects
    )
)]

use crate::verdict::DropReason;
use crate::wire::ether::{self, EtherType};
use crate::wire::ipv4;

/// Longest IPv4 option list.
const MAX_OPTIONS_LEN: usize = ipv4::MAX_HEADER_LEN - ipv4::HEADER_LEN;
/// Option types without a length byte (RFC 791).
const OPTION_END: u8 = 0;
const OPTION_NOP: u8 = 1;
/// The "copied" flag of an option type.
const OPTION_COPIED: u8 = 0x80;
/// Largest fragment offset, in 8-byte units (13 bits).
const MAX_OFFSET: u16 = 0x1fff;

/// How a packet is cut for an MTU: what [`plan`] found out once, for [`write`] to produce
/// each fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// The packet's IPv4 header length: the first fragment's.
    header_len: usize,
    /// The options of the later fragments (the copied ones, padded); `copied_len` bytes.
    copied: [u8; MAX_OPTIONS_LEN],
    copied_len: usize,
    /// The packet's data bytes (total length − header).
    data_len: usize,
    /// Data bytes in the first fragment, and in each later one but the last.
    first: usize,
    rest: usize,
    /// Number of fragments.
    count: usize,
    /// The packet's own fragment offset (8-byte units) and More Fragments flag.
    offset: u16,
    more: bool,
}

/// Where fragment `k`'s piece is and how long its header is.
struct Piece {
    /// Offset of the piece in the packet's data.
    start: usize,
    len: usize,
    header_len: usize,
    last: bool,
}

impl Plan {
    /// Number of fragments: at least 1 (a packet that fits gives one, itself).
    pub fn count(&self) -> usize {
        self.count
    }

    /// The length of fragment `k`'s frame (Ethernet header included); `None` if there is no
    /// fragment `k`.
    pub fn frame_len(&self, k: usize) -> Option<usize> {
        let piece = self.piece(k)?;
        ether::HEADER_LEN
            .checked_add(piece.header_len)?
            .checked_add(piece.len)
    }

    fn piece(&self, k: usize) -> Option<Piece> {
        let (start, cap, header_len) = match k.checked_sub(1) {
            None => (0, self.first, self.header_len),
            Some(later) => (
                self.first.checked_add(later.checked_mul(self.rest)?)?,
                self.rest,
                ipv4::HEADER_LEN.checked_add(self.copied_len)?,
            ),
        };
        let left = self.data_len.checked_sub(start)?;
        if k >= self.count {
            return None;
        }
        Some(Piece {
            start,
            len: left.min(cap),
            header_len,
            last: k.checked_add(1) == Some(self.count),
        })
    }
}

/// How the IPv4 packet in `frame` (an Ethernet frame; nothing after the packet's total
/// length is used) is cut into fragments of at most `mtu` bytes of IPv4 each; see the module
/// documentation.
///
/// # Errors
/// - [`DropReason::Truncated`], [`DropReason::VlanTagged`],
///   [`DropReason::UnsupportedEthertype`], [`DropReason::BadIpv4Header`]: not an Ethernet
///   frame holding a whole IPv4 packet with well-formed options;
/// - [`DropReason::TooBig`]: `mtu` cannot carry a header and 8 bytes of data (below 68,
///   the IPv4 minimum, with the longest header), or the last fragment's offset would not fit.
pub fn plan(frame: &[u8], mtu: u16) -> Result<Plan, DropReason> {
    let eth = ether::Packet::new_checked(frame)?;
    match eth.ethertype() {
        EtherType::Ipv4 => {}
        ethertype if ethertype.is_vlan() => return Err(DropReason::VlanTagged),
        _ => return Err(DropReason::UnsupportedEthertype),
    }
    let ip = ipv4::Packet::new_checked(eth.payload())?;
    if ip.version() != 4 {
        return Err(DropReason::BadIpv4Header);
    }
    let header_len = ip.header_len();
    let (copied, copied_len) = copied_options(ip.options()).ok_or(DropReason::BadIpv4Header)?;
    let data_len = ip.payload().len();
    let mtu = usize::from(mtu);
    let room = |header: usize| {
        mtu.checked_sub(header)
            .map(|room| room & !7)
            .filter(|&room| room > 0)
            .ok_or(DropReason::TooBig)
    };
    let first = room(header_len)?;
    let rest = room(ipv4::HEADER_LEN.saturating_add(copied_len))?;
    let count = match data_len.checked_sub(first) {
        Some(left) if left > 0 => left.div_ceil(rest).saturating_add(1),
        _ => 1,
    };
    let plan = Plan {
        header_len,
        copied,
        copied_len,
        data_len,
        first,
        rest,
        count,
        offset: ip.frag_offset(),
        more: ip.more_frags(),
    };
    // The last fragment's offset must fit the field (it does for any packet that is not
    // itself a fragment, whose data ends before 65535).
    let last = plan
        .piece(count.saturating_sub(1))
        .ok_or(DropReason::TooBig)?;
    fragment_offset(plan.offset, last.start).ok_or(DropReason::TooBig)?;
    Ok(plan)
}

/// Writes fragment `k` of the packet in `frame`, cut as `plan` says (`plan` must come from
/// [`plan`] on this frame), into the start of `out`; returns its length
/// ([`Plan::frame_len`]). See the module documentation for every field.
///
/// # Errors
/// [`DropReason::Truncated`] if there is no fragment `k`, `out` is shorter than it, or the
/// frame is not the one planned for; nothing is written then.
pub fn write(frame: &[u8], plan: &Plan, k: usize, out: &mut [u8]) -> Result<usize, DropReason> {
    let piece = plan.piece(k).ok_or(DropReason::Truncated)?;
    let total_len = piece
        .header_len
        .checked_add(piece.len)
        .and_then(|len| u16::try_from(len).ok())
        .ok_or(DropReason::Truncated)?;
    let len = ether::HEADER_LEN
        .checked_add(usize::from(total_len))
        .ok_or(DropReason::Truncated)?;
    let data_at = ether::HEADER_LEN
        .checked_add(plan.header_len)
        .and_then(|at| at.checked_add(piece.start))
        .ok_or(DropReason::Truncated)?;
    let data = data_at
        .checked_add(piece.len)
        .and_then(|end| frame.get(data_at..end))
        .ok_or(DropReason::Truncated)?;
    let first_header_end = ether::HEADER_LEN
        .checked_add(plan.header_len)
        .ok_or(DropReason::Truncated)?;
    let header = if k == 0 {
        frame.get(..first_header_end)
    } else {
        frame.get(..ether::HEADER_LEN.saturating_add(ipv4::HEADER_LEN))
    }
    .ok_or(DropReason::Truncated)?;
    let options = plan
        .copied
        .get(..plan.copied_len)
        .ok_or(DropReason::Truncated)?;
    let offset = fragment_offset(plan.offset, piece.start).ok_or(DropReason::Truncated)?;
    let out = out.get_mut(..len).ok_or(DropReason::Truncated)?;

    let (head, rest) = out.split_at_mut(header.len());
    head.copy_from_slice(header);
    let (opts, payload) = if k == 0 {
        rest.split_at_mut(0)
    } else {
        rest.split_at_mut(options.len())
    };
    if k != 0 {
        opts.copy_from_slice(options);
    }
    payload.copy_from_slice(data);

    let mut ip = ipv4::Packet::new_unchecked(out.get_mut(ether::HEADER_LEN..).unwrap_or_default());
    ip.set_header_len(piece.header_len);
    ip.set_total_len(total_len);
    ip.clear_flags();
    ip.set_frag_offset(offset);
    ip.set_more_frags(!piece.last || plan.more);
    ip.fill_checksum();
    Ok(len)
}

/// The offset field of a piece starting `start` data bytes into a packet whose own offset is
/// `offset`; `None` if it does not fit 13 bits.
fn fragment_offset(offset: u16, start: usize) -> Option<u16> {
    u16::try_from(start / 8)
        .ok()
        .and_then(|units| offset.checked_add(units))
        .filter(|&o| o <= MAX_OFFSET)
}

/// The options of the fragments after the first: those of `options` whose copied flag is
/// set, in order, then End of Option List up to a multiple of 4 bytes; and their length.
/// `None` if the list is malformed.
fn copied_options(mut options: &[u8]) -> Option<([u8; MAX_OPTIONS_LEN], usize)> {
    let mut copied = [OPTION_END; MAX_OPTIONS_LEN];
    let mut len: usize = 0;
    loop {
        match options {
            [] | [OPTION_END, ..] => break,
            [OPTION_NOP, rest @ ..] => options = rest,
            [kind, option_len, ..] if *option_len >= 2 => {
                let (option, rest) = options.split_at_checked(usize::from(*option_len))?;
                if kind & OPTION_COPIED != 0 {
                    let end = len.checked_add(option.len())?;
                    copied.get_mut(len..end)?.copy_from_slice(option);
                    len = end;
                }
                options = rest;
            }
            _ => return None,
        }
    }
    Some((copied, len.next_multiple_of(4)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xmit::testing::{frame, tcp_header, Ip, CLIENT, PORT_MAC, REAL, REAL_MAC};
    use etherparse::{IpFragOffset, IpNumber, Ipv4Header};
    use proptest::prelude::*;

    /// Every fragment of `received` for `mtu`, as the worker makes them.
    fn fragments(received: &[u8], mtu: u16) -> Result<Vec<Vec<u8>>, DropReason> {
        let plan = plan(received, mtu)?;
        (0..plan.count())
            .map(|k| {
                let mut out = vec![0xee; plan.frame_len(k).unwrap() + 3];
                let len = write(received, &plan, k, &mut out)?;
                assert_eq!(Some(len), plan.frame_len(k));
                assert!(
                    out[len..].iter().all(|&b| b == 0xee),
                    "writes only its length"
                );
                out.truncate(len);
                Ok(out)
            })
            .collect()
    }

    /// A UDP datagram of `len` bytes of IPv4 from the client to the real server, with `ip`'s
    /// DF, options, in a frame.
    fn datagram(ip: &Ip, len: usize) -> Vec<u8> {
        let header = 20 + ip.options.len() + 8;
        let payload: Vec<u8> = (0..len - header).map(|i| i as u8).collect();
        frame(
            PORT_MAC,
            REAL_MAC,
            &ip.udp(CLIENT.port(), REAL.port(), &payload, true),
            &[],
        )
    }

    /// What fragment `k` must be, built with etherparse: `header` (the original's fields)
    /// with `options`, offset `offset` bytes, MF `more`, DF clear, carrying `data`.
    fn expected(
        original: &[u8],
        options: &[u8],
        offset: usize,
        more: bool,
        data: &[u8],
    ) -> Vec<u8> {
        let (mut header, _) = Ipv4Header::from_slice(&original[14..]).unwrap();
        header.options = options.try_into().unwrap();
        header.dont_fragment = false;
        header.more_fragments = more;
        header.fragment_offset = IpFragOffset::try_new((offset / 8) as u16).unwrap();
        header.set_payload_len(data.len()).unwrap();
        header.header_checksum = header.calc_header_checksum();
        let mut f = original[..14].to_vec();
        f.extend_from_slice(&header.to_bytes());
        f.extend_from_slice(data);
        f
    }

    #[test]
    fn a_1500_byte_datagram_for_mtu_1280_is_two_fragments() {
        let mut ip = Ip::new(*CLIENT.ip(), *REAL.ip());
        ip.dont_frag = false;
        let received = datagram(&ip, 1500);
        let got = fragments(&received, 1280).unwrap();
        let data = &received[34..];
        // 1280 − 20 = 1260, cut to 1256 (a multiple of 8); the rest, 1480 − 1256 = 224.
        assert_eq!(
            got,
            vec![
                expected(&received, &[], 0, true, &data[..1256]),
                expected(&received, &[], 1256, false, &data[1256..]),
            ]
        );
        assert_eq!(got[0].len(), 14 + 1276);
        assert_eq!(got[1].len(), 14 + 244);
    }

    /// The same two fragments byte for byte as written out by hand: a 60-byte datagram for
    /// MTU 44 (24 data bytes, then 16).
    #[test]
    fn hand_built_fragments() {
        let mut ip = Ip::new(*CLIENT.ip(), *REAL.ip());
        ip.dont_frag = false;
        ip.ident = 0xabcd;
        ip.ttl = 64;
        let received = datagram(&ip, 60);
        let got = fragments(&received, 44).unwrap();
        let eth = &received[..14];
        let mut first = eth.to_vec();
        first.extend_from_slice(&[
            0x45, 0x00, 0x00, 0x2c, // total length 44
            0xab, 0xcd, 0x20, 0x00, // ident, MF, offset 0
            0x40, 0x11, 0x00, 0x00, // TTL 64, UDP, checksum (below)
            198, 51, 100, 7, 10, 1, 0, 3,
        ]);
        first.extend_from_slice(&received[34..58]);
        let mut second = eth.to_vec();
        second.extend_from_slice(&[
            0x45, 0x00, 0x00, 0x24, // total length 36
            0xab, 0xcd, 0x00, 0x03, // ident, offset 3 (24 bytes)
            0x40, 0x11, 0x00, 0x00, //
            198, 51, 100, 7, 10, 1, 0, 3,
        ]);
        second.extend_from_slice(&received[58..74]);
        for f in [&mut first, &mut second] {
            let sum = !crate::xmit::testing::sum(&f[14..34]);
            f[24..26].copy_from_slice(&sum.to_be_bytes());
        }
        assert_eq!(got, vec![first, second]);
    }

    #[test]
    fn options_copied_per_their_flag() {
        let mut ip = Ip::new(*CLIENT.ip(), *REAL.ip());
        ip.dont_frag = false;
        // Record route (7, not copied), NOP, router alert (148, copied), security-like
        // option 130 (copied), length 3, then End of Option List.
        ip.options = vec![
            7, 7, 4, 0, 0, 0, 0, // record route, one empty slot
            1, // NOP
            148, 4, 0, 0, // router alert
            130, 3, 0x55, // copied, odd length
            0,    // end
        ];
        let received = datagram(&ip, 200);
        let got = fragments(&received, 100).unwrap();
        let data = &received[14 + 36..];
        // First: all 16 bytes of options, 100 − 36 = 64 data bytes. Later: 7 copied bytes
        // padded to 8, 100 − 28 = 72 bytes each: 200 − 36 = 164 = 64 + 72 + 28.
        let copied = [148, 4, 0, 0, 130, 3, 0x55, 0];
        assert_eq!(
            got,
            vec![
                expected(&received, &ip.options, 0, true, &data[..64]),
                expected(&received, &copied, 64, true, &data[64..136]),
                expected(&received, &copied, 136, false, &data[136..]),
            ]
        );
    }

    #[test]
    fn a_fragment_is_cut_again_keeping_its_offset_and_more_fragments() {
        let mut ip = Ip::new(*CLIENT.ip(), *REAL.ip());
        ip.dont_frag = false;
        let mut received = datagram(&ip, 100);
        // Offset 5 (40 bytes), MF: the middle of a larger datagram.
        received[20..22].copy_from_slice(&0x2005u16.to_be_bytes());
        let got = fragments(&received, 60).unwrap();
        let data = &received[34..];
        assert_eq!(
            got,
            vec![
                expected(&received, &[], 40, true, &data[..40]),
                expected(&received, &[], 80, true, &data[40..]),
            ]
        );
    }

    #[test]
    fn a_packet_that_fits_is_one_fragment_with_df_clear() {
        let ip = Ip::new(*CLIENT.ip(), *REAL.ip());
        let received = datagram(&ip, 100);
        let got = fragments(&received, 1500).unwrap();
        assert_eq!(
            got,
            vec![expected(&received, &[], 0, false, &received[34..])]
        );
    }

    #[test]
    fn refusals() {
        let mut ip = Ip::new(*CLIENT.ip(), *REAL.ip());
        ip.dont_frag = false;
        let received = datagram(&ip, 100);
        assert_eq!(plan(&received, 27).err(), Some(DropReason::TooBig));
        assert_eq!(plan(&received, 28).map(|p| p.count()), Ok(10));
        assert_eq!(plan(&received[..50], 28).err(), Some(DropReason::Truncated));
        let mut vlan = received.clone();
        vlan[12..14].copy_from_slice(&[0x81, 0x00]);
        assert_eq!(plan(&vlan, 68).err(), Some(DropReason::VlanTagged));
        let mut bad_options = received.clone();
        bad_options[14] = 0x46;
        bad_options[34..38].copy_from_slice(&[7, 9, 0, 0]);
        assert_eq!(
            plan(&bad_options, 68).err(),
            Some(DropReason::BadIpv4Header)
        );
        // The last offset past 13 bits.
        let mut late = received.clone();
        late[20..22].copy_from_slice(&0x3ffeu16.to_be_bytes());
        assert_eq!(plan(&late, 68).err(), Some(DropReason::TooBig));
        let plan = plan(&received, 68).unwrap();
        assert_eq!(plan.frame_len(plan.count()), None);
        let mut short = vec![0; plan.frame_len(0).unwrap() - 1];
        assert_eq!(
            write(&received, &plan, 0, &mut short),
            Err(DropReason::Truncated)
        );
        assert!(short.iter().all(|&b| b == 0));
        assert_eq!(
            write(&received, &plan, 9, &mut [0; 2000]),
            Err(DropReason::Truncated)
        );
    }

    proptest! {
        /// Whatever the size, options and MTU: every fragment fits, offsets are in order and
        /// 8-aligned, MF is set on all but the last, headers verify, and the pieces put
        /// together are the packet's data.
        #[test]
        fn fragments_reassemble(
            len in 100usize..3000,
            mtu in 68u16..1600,
            options in prop::sample::select(vec![vec![], vec![148, 4, 0, 0], vec![7, 7, 4, 0, 0, 0, 0, 0]]),
            tcp in any::<bool>(),
        ) {
            let mut ip = Ip::new(*CLIENT.ip(), *REAL.ip());
            ip.dont_frag = false;
            ip.options = options;
            let received = if tcp {
                let header = 20 + ip.options.len() + 20;
                let payload = vec![0x5a; len.max(header) - header];
                frame(PORT_MAC, REAL_MAC, &ip.tcp(1, 2, &tcp_header(false, true, false, false, true), &payload), &[])
            } else {
                datagram(&ip, len.max(20 + ip.options.len() + 8))
            };
            let got = fragments(&received, mtu).unwrap();
            let (original, rest) = Ipv4Header::from_slice(&received[14..]).unwrap();
            let mut data = Vec::new();
            for (k, f) in got.iter().enumerate() {
                prop_assert!(f.len() - 14 <= usize::from(mtu));
                prop_assert_eq!(&f[..14], &received[..14]);
                let (h, payload) = Ipv4Header::from_slice(&f[14..]).unwrap();
                prop_assert_eq!(h.header_checksum, h.calc_header_checksum());
                prop_assert_eq!(h.identification, original.identification);
                prop_assert_eq!(h.protocol, if tcp { IpNumber::TCP } else { IpNumber::UDP });
                prop_assert_eq!(usize::from(h.fragment_offset.value()) * 8, data.len());
                prop_assert_eq!(h.more_fragments, k + 1 < got.len());
                prop_assert!(!h.dont_fragment);
                prop_assert!(!h.more_fragments || payload.len() % 8 == 0);
                data.extend_from_slice(payload);
            }
            prop_assert_eq!(&data[..], rest);
        }
    }
}
