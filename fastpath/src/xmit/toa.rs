//! TOA (TCP Option Address, spec §4.6): the client's port and IPv4 address in a TCP option
//! of kind 254, length 8, so that a real server with the TOA kernel module sees the client
//! of a FULLNAT connection instead of the balancer's local address:
//!
//! ```text
//! | kind = 254 | length = 8 | client port (2) | client IPv4 address (4) |   network order
//! ```
//!
//! ## Insertion ([`insert`])
//!
//! The option goes directly after the 20-byte fixed TCP header, before the existing options
//! (alibaba/LVS and DPVS `tcp_in_add_toa`: the real server's module reads the first option of
//! that kind); the data offset grows by 2 words, the IPv4 total length by 8, and everything
//! after the fixed header (options, payload) moves 8 bytes back. The frame grows by 8 bytes:
//! into the headroom (the Ethernet, IPv4 and fixed TCP headers move 8 bytes to the front) or
//! into the tailroom (the options and payload move 8 bytes to the back), whichever moves fewer
//! bytes, the other when that one has no room; Ethernet padding is used up first and dropped
//! (the frame ends at the packet's end). Nothing else changes.
//!
//! Checksums are updated incrementally, exactly as a full recomputation would give for a
//! correct input: the IPv4 header checksum for the total length; the TCP checksum for the new
//! options area (replacing the old one at the same, even, offset), the data offset and the
//! pseudo-header's length. The payload moves by a multiple of 4 bytes, so its 16-bit words
//! keep their place in the sum. A wrong checksum stays wrong.
//!
//! ## No room, and pruning
//!
//! There is no room when the header would exceed 60 bytes (`60 − doff·4 < 8`) or the packet
//! the egress MTU passed in (DPVS: `pkt_len > mtu − 8`; rvs does not fragment). Then, as DPVS
//! (`tcp_in_prune_options`, called on `EDPVS_NOROOM`/`EDPVS_FRAG`), options are pruned and the
//! insertion retried once:
//!
//! 1. NOPs and existing TOA options (kind 254, any length) are removed and the other options
//!    compacted, in order; the options after an End of Option List or a malformed option
//!    (which no receiver reads, Linux `tcp_parse_options`) are dropped too; the area is padded
//!    with End of Option List (0) bytes to a multiple of 4;
//! 2. if that is not enough, options are dropped in order, except the protected ones, until
//!    it is: on a SYN Maximum Segment Size (≤ 4 bytes), Window Scale (≤ 3), SACK Permitted
//!    (≤ 2), Timestamps (≤ 10), MPTCP (kind 30, ≤ 40) and TCP Fast Open (kind 34, ≤ 18), on
//!    other segments only Timestamps; each protected kind once, a second one is not
//!    protected. Once enough is freed the remaining options are kept.
//!
//! Two differences from DPVS, both keeping more of the packet: DPVS always frees at least 8
//! bytes, rvs only what is missing (a 56-byte header needs 4 bytes freed, then grows to 60);
//! and when even pruning cannot make room, DPVS leaves the packet pruned without TOA, rvs
//! leaves it exactly as it was. Either way the packet goes on without TOA:
//! [`Outcome::NoRoom`], which the caller counts (not a drop). No room in the buffer (neither
//! headroom nor tailroom for the 8 bytes) is [`Outcome::NoRoom`] too, as DPVS.
//!
//! ## Which packets ([`due`])
//!
//! The real server's module reads the option from the packet that completes the handshake
//! (alibaba `toa.c`, hooked into `tcp_v4_syn_recv_sock`), and not every segment can carry
//! it, so the balancer adds it to every client segment that could be that packet:
//!
//! - [`Placement::Dpvs`] (DPVS `tcp_fnat_in_handler`, the default): every client segment whose
//!   acknowledgment number is the real server's ISN + 1 (`fdata_seq`: the handshake's ACK,
//!   the first data segments and their retransmissions, until the server sends data), without
//!   SYN and without RST; FIN allowed. Never the SYN.
//! - [`Placement::Alibaba`] (alibaba/LVS `tcp_fnat_in_handler` with `toa_entry` = 1): the
//!   client's SYN (SYN without ACK), and the segments above but without FIN either.
//!
//! The caller inserts TOA after [`fullnat::rewrite_in`](super::fullnat::rewrite_in) (which
//! leaves the option space as it was, but turns the SYN's timestamps into NOPs that pruning
//! can reclaim), and announces `MSS − 8` to the client
//! ([`fullnat::TOA_MSS_REDUCTION`](super::fullnat::TOA_MSS_REDUCTION)) so that the option
//! fits full-sized segments.

use std::net::SocketAddrV4;

use super::splice;
use crate::conn::TcpSeq;
use crate::frame::Frame;
use crate::verdict::DropReason;
use crate::wire::checksum;
use crate::wire::ipv4::Protocol;
use crate::wire::tcp::{self, option_kind, Flags, TcpOption};

/// Which client segments carry TOA; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Placement {
    /// DPVS: segments acknowledging the real server's ISN + 1, without SYN or RST.
    #[default]
    Dpvs,
    /// alibaba/LVS: the SYN, and segments acknowledging the real server's ISN + 1, without
    /// SYN, RST or FIN.
    Alibaba,
}

/// Query whether the client segment with `flags` and acknowledgment number `ack`, on a
/// connection in state `seq`, gets TOA under `placement`; see the module documentation.
pub fn due(placement: Placement, seq: &TcpSeq, flags: Flags, ack: u32) -> bool {
    let syn = flags.contains(Flags::SYN);
    let first_ack = !syn && !flags.contains(Flags::RST) && seq.fdata_seq() == Some(ack);
    match placement {
        Placement::Dpvs => first_ack,
        Placement::Alibaba => {
            (syn && !flags.contains(Flags::ACK)) || (first_ack && !flags.contains(Flags::FIN))
        }
    }
}

/// What [`insert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The option is in, nothing else removed.
    Inserted,
    /// The option is in, after pruning other options to make room.
    Pruned,
    /// No room even after pruning, or no buffer room: the frame is unchanged, and goes on
    /// without TOA. The caller counts it.
    NoRoom,
}

/// Longest TCP options area.
const MAX_AREA: usize = tcp::MAX_HEADER_LEN - tcp::HEADER_LEN;

/// Insert the TOA option for `client` into the TCP segment in `frame` (the whole Ethernet
/// frame), within the egress IP MTU `mtu`; see the module documentation.
///
/// # Errors
/// The checks of [`xmit`](super) ([`DropReason::Truncated`], [`DropReason::VlanTagged`],
/// [`DropReason::UnsupportedEthertype`], [`DropReason::BadIpv4Header`],
/// [`DropReason::Fragment`]), [`DropReason::UnsupportedProtocol`] if it is not TCP,
/// [`DropReason::BadL4Header`]. The frame is unchanged on error and on
/// [`Outcome::NoRoom`].
pub fn insert<F: Frame + ?Sized>(
    frame: &mut F,
    client: SocketAddrV4,
    mtu: u16,
) -> Result<Outcome, DropReason> {
    let ip = super::ipv4_packet(frame.data())?;
    if ip.protocol() != Protocol::Tcp {
        return Err(DropReason::UnsupportedProtocol);
    }
    let segment = tcp::Packet::new_checked(ip.payload())?;
    let (tcp_start, end) = splice::tcp_offsets(&ip).ok_or(DropReason::Truncated)?;
    let old = segment.options_area();
    let total = usize::from(ip.total_len());
    // Everything but the options area must stay; what is left of the MTU bounds the area.
    let rest = total
        .checked_sub(old.len())
        .ok_or(DropReason::BadL4Header)?;
    let max_area = usize::from(mtu).saturating_sub(rest).min(MAX_AREA);
    let [port_hi, port_lo] = client.port().to_be_bytes();
    let [a, b, c, d] = client.ip().octets();
    let toa = [option_kind::TOA, 8, port_hi, port_lo, a, b, c, d];
    let syn = segment.flags().contains(Flags::SYN);
    let Some((area, outcome)) = plan(old, segment.options(), syn, &toa, max_area) else {
        return Ok(Outcome::NoRoom);
    };
    let new = area.bytes();

    // Every new value and checksum, from the packet as received.
    let tcp_len = total
        .checked_sub(ip.header_len())
        .ok_or(DropReason::BadL4Header)?;
    let new_tcp_len = tcp_len
        .checked_sub(old.len())
        .and_then(|len| len.checked_add(new.len()))
        .ok_or(DropReason::BadL4Header)?;
    let new_total = rest
        .checked_add(new.len())
        .and_then(|len| u16::try_from(len).ok())
        .ok_or(DropReason::BadL4Header)?;
    let new_header_len = tcp::HEADER_LEN
        .checked_add(new.len())
        .ok_or(DropReason::BadL4Header)?;
    let ip_checksum = checksum::update_u16(ip.checksum(), ip.total_len(), new_total);
    let mut sum = checksum::update_bytes(segment.checksum(), tcp::HEADER_LEN, old, new);
    sum = checksum::update_u16(
        sum,
        doff_word(segment.header_len()),
        doff_word(new_header_len),
    );
    sum = checksum::update_u16(sum, len16(tcp_len), len16(new_tcp_len));
    let at = tcp_start
        .checked_add(tcp::HEADER_LEN)
        .ok_or(DropReason::Truncated)?;
    let old_len = old.len();

    if !splice::splice(frame, at, end, old_len, new.len()) {
        return Ok(Outcome::NoRoom);
    }
    let mut ip = super::ipv4_mut(frame.data_mut());
    ip.set_total_len(new_total);
    ip.set_checksum(ip_checksum);
    let mut segment = tcp::Packet::new_unchecked(ip.payload_mut());
    segment.set_header_len(new_header_len);
    if let Some(slot) = segment.options_area_mut().get_mut(..new.len()) {
        slot.copy_from_slice(new);
    }
    segment.set_checksum(sum);
    Ok(outcome)
}

/// The 16-bit word holding the data offset of a header of `header_len` bytes, with the
/// reserved bits and flags that share it taken as 0: they do not change, so they cancel out
/// of an incremental update.
fn doff_word(header_len: usize) -> u16 {
    u16::try_from(header_len / 4).map_or(0, |words| words.wrapping_shl(12))
}

/// A TCP length for the pseudo-header (at most a 16-bit IPv4 total length).
fn len16(len: usize) -> u16 {
    u16::try_from(len).unwrap_or(u16::MAX)
}

/// A TCP options area being built.
#[derive(Debug, Clone, Copy)]
struct Area {
    buf: [u8; MAX_AREA],
    len: usize,
}

impl Area {
    /// An area holding `toa`.
    fn new(toa: &[u8; tcp::TOA_OPTION_LEN]) -> Area {
        let mut area = Area {
            buf: [0; MAX_AREA],
            len: 0,
        };
        area.push(toa);
        area
    }

    /// Append `bytes`, if they fit.
    fn push(&mut self, bytes: &[u8]) {
        let Some(end) = self.len.checked_add(bytes.len()) else {
            return;
        };
        if let Some(slot) = self.buf.get_mut(self.len..end) {
            slot.copy_from_slice(bytes);
            self.len = end;
        }
    }

    /// Append `option` as it was on the wire: kind, length, data.
    fn push_option(&mut self, option: &TcpOption<'_>) {
        let len = u8::try_from(option_len(option)).unwrap_or(u8::MAX);
        self.push(&[option.kind, len]);
        self.push(option.data);
    }

    /// Pad with End of Option List bytes to a multiple of 4.
    fn pad(&mut self) {
        while self.len % 4 != 0 && self.len < MAX_AREA {
            self.push(&[option_kind::EOL]);
        }
    }

    fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }
}

/// The length of `option` on the wire.
fn option_len(option: &TcpOption<'_>) -> usize {
    option.data.len().saturating_add(2)
}

/// The length of an area holding TOA and options of `len` bytes, padded.
fn padded(len: usize) -> usize {
    tcp::TOA_OPTION_LEN.saturating_add(len).saturating_add(3) & !3
}

/// The options area with TOA at most `max` bytes long, from the area `old` whose options are
/// `options`: as it is if it fits, else pruned (see the module documentation); `None` if
/// nothing fits.
fn plan(
    old: &[u8],
    options: tcp::Options<'_>,
    syn: bool,
    toa: &[u8; tcp::TOA_OPTION_LEN],
    max: usize,
) -> Option<(Area, Outcome)> {
    let mut area = Area::new(toa);
    if old.len().saturating_add(tcp::TOA_OPTION_LEN) <= max {
        area.push(old);
        return Some((area, Outcome::Inserted));
    }
    // The options pruning keeps at most: all but NOPs (which the iterator skips) and TOA.
    let kept = options
        .clone()
        .filter(|option| option.kind != option_kind::TOA);
    let mut kept_len = kept
        .clone()
        .map(|option| option_len(&option))
        .sum::<usize>();
    let mut dropping = padded(kept_len) > max;
    let mut protected_seen = 0u64;
    for option in kept {
        if dropping {
            if is_protected(syn, &option, &mut protected_seen) {
                area.push_option(&option);
            } else {
                kept_len = kept_len.saturating_sub(option_len(&option));
                dropping = padded(kept_len) > max;
            }
        } else {
            area.push_option(&option);
        }
    }
    if dropping {
        return None;
    }
    area.pad();
    Some((area, Outcome::Pruned))
}

/// Query whether pruning keeps `option` on a SYN (`syn`) or another segment, given the
/// protected kinds already kept in `seen` (a bit per kind), and record it.
fn is_protected(syn: bool, option: &TcpOption<'_>, seen: &mut u64) -> bool {
    /// MPTCP (RFC 8684) and TCP Fast Open (RFC 7413).
    const MPTCP: u8 = 30;
    const FAST_OPEN: u8 = 34;
    let max_len = match option.kind {
        option_kind::TIMESTAMPS => 10,
        option_kind::MSS if syn => 4,
        option_kind::WINDOW_SCALE if syn => 3,
        option_kind::SACK_PERMITTED if syn => 2,
        MPTCP if syn => 40,
        FAST_OPEN if syn => 18,
        _ => return false,
    };
    // Every kind matched above is below 64.
    let bit = 1u64.wrapping_shl(u32::from(option.kind));
    if option_len(option) > max_len || *seen & bit != 0 {
        return false;
    }
    *seen |= bit;
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::VecFrame;
    use crate::xmit::splice::test_frame::RoomFrame;
    use crate::xmit::testing::{frame, tcp_header, Ip, CLIENT, PORT_MAC, REAL, ROUTER_MAC};
    use etherparse::{Ipv4Header, TcpHeader};
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    /// The balancer's local address and port.
    const LOCAL: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 1, 0, 100), 5003);
    /// The TOA option for `CLIENT` (198.51.100.7:40312).
    const CLIENT_TOA: [u8; 8] = [0xfe, 0x08, 0x9d, 0x78, 0xc6, 0x33, 0x64, 0x07];
    const MTU: u16 = 1500;

    /// The frame of a segment `LOCAL` → `REAL` with `tcp` and `payload`.
    fn segment(tcp: &TcpHeader, payload: &[u8]) -> Vec<u8> {
        let ip = Ip::new(*LOCAL.ip(), *REAL.ip());
        frame(
            ROUTER_MAC,
            PORT_MAC,
            &ip.tcp(LOCAL.port(), REAL.port(), tcp, payload),
            &[],
        )
    }

    /// `tcp` with the options area `area`.
    fn with_area(tcp: &TcpHeader, area: &[u8]) -> TcpHeader {
        let mut tcp = tcp.clone();
        tcp.set_options_raw(area).unwrap();
        tcp
    }

    /// [`insert`] on `bytes` in a frame with ample room.
    fn run(bytes: &[u8], mtu: u16) -> (Result<Outcome, DropReason>, Vec<u8>) {
        let mut frame = VecFrame::new(bytes);
        let result = insert(&mut frame, CLIENT, mtu);
        (result, frame.into_bytes())
    }

    /// The handshake's ACK, no options.
    fn ack() -> TcpHeader {
        tcp_header(false, true, false, false, false)
    }

    /// The client's SYN with Linux's options (timestamps already NOPs, as `rewrite_in`
    /// leaves them): MSS, SACK permitted, 10 NOPs, NOP, window scale.
    fn syn_area() -> Vec<u8> {
        let mut area = vec![0x02, 0x04, 0x05, 0xb4, 0x04, 0x02];
        area.extend_from_slice(&[1; 11]);
        area.extend_from_slice(&[0x03, 0x03, 0x07]);
        area
    }

    #[test]
    fn ack_without_options_exact_bytes() {
        let bytes = segment(&ack(), &[]);
        let (result, after) = run(&bytes, MTU);
        assert_eq!(result, Ok(Outcome::Inserted));
        #[rustfmt::skip]
        let expected: [u8; 62] = [
            0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x52, 0x54, 0x00, 0x00, 0x00, 0xfe, 0x08, 0x00,
            0x45, 0x00, 0x00, 0x30, // total length 40 + 8
            0x1c, 0x46, 0x40, 0x00,
            0x39, 0x06, 0x11, 0x1a, // checksum
            0x0a, 0x01, 0x00, 0x64, // 10.1.0.100
            0x0a, 0x01, 0x00, 0x03, // 10.1.0.3
            0x13, 0x8b, 0x1f, 0x90, // 5003 -> 8080
            0x6b, 0x8b, 0x45, 0x67,
            0x32, 0x7b, 0x23, 0xc6,
            0x70, 0x10, 0xfa, 0xf0, // data offset 7, ACK
            0x80, 0x67, 0x00, 0x00, // checksum
            0xfe, 0x08, 0x9d, 0x78, 0xc6, 0x33, 0x64, 0x07, // TOA: 40312, 198.51.100.7
        ];
        assert_eq!(after, expected);
        // The same, built by etherparse.
        assert_eq!(after, segment(&with_area(&ack(), &CLIENT_TOA), &[]));
    }

    #[test]
    fn before_existing_options_with_payload() {
        for (name, tcp, payload) in [
            (
                "SYN",
                with_area(&tcp_header(true, false, false, false, false), &syn_area()),
                &b""[..],
            ),
            (
                "data, odd length",
                with_area(&ack(), &[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]),
                b"GET / HTTP/1.1\r\n\r\n!",
            ),
            (
                "FIN with data",
                tcp_header(false, true, true, false, false),
                b"bye",
            ),
        ] {
            let bytes = segment(&tcp, payload);
            let mut area = CLIENT_TOA.to_vec();
            area.extend_from_slice(tcp.options.as_slice());
            let expected = segment(&with_area(&tcp, &area), payload);
            let (result, after) = run(&bytes, MTU);
            assert_eq!(result, Ok(Outcome::Inserted), "{name}");
            assert_eq!(after, expected, "{name}");
            // Headroom only, tailroom only, padding only: the same bytes.
            for (headroom, tailroom, padding) in [(8, 0, 0), (0, 8, 0), (0, 0, 8), (0, 3, 5)] {
                let mut padded = bytes.clone();
                padded.extend_from_slice(&vec![0xee; padding]);
                let mut frame = RoomFrame::new(&padded, headroom, tailroom);
                assert_eq!(
                    insert(&mut frame, CLIENT, MTU),
                    Ok(Outcome::Inserted),
                    "{name}"
                );
                assert_eq!(
                    frame.data(),
                    &expected[..],
                    "{name} {headroom} {tailroom} {padding}"
                );
            }
            // Neither: no room, unchanged.
            let mut frame = RoomFrame::new(&bytes, 7, 0);
            let before = frame.clone();
            assert_eq!(
                insert(&mut frame, CLIENT, MTU),
                Ok(Outcome::NoRoom),
                "{name}"
            );
            assert_eq!(frame, before, "{name}");
        }
    }

    #[test]
    fn after_ip_options() {
        // IHL 6 (router alert): the TCP header starts 4 bytes later; the IPv4 options stay.
        let mut ip = Ip::new(*LOCAL.ip(), *REAL.ip());
        ip.options = vec![0x94, 0x04, 0x00, 0x00];
        let build = |tcp: &TcpHeader| {
            frame(
                ROUTER_MAC,
                PORT_MAC,
                &ip.tcp(LOCAL.port(), REAL.port(), tcp, b"data"),
                &[],
            )
        };
        let tcp = with_area(&ack(), &[1, 1, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8]);
        let mut area = CLIENT_TOA.to_vec();
        area.extend_from_slice(tcp.options.as_slice());
        assert_eq!(
            run(&build(&tcp), MTU),
            (Ok(Outcome::Inserted), build(&with_area(&tcp, &area)))
        );
    }

    #[test]
    fn short_frame_padding_is_dropped() {
        // A 54-byte ACK padded to 60: 62 bytes afterwards, no padding left.
        let mut bytes = segment(&ack(), &[]);
        bytes.extend_from_slice(&[0xee; 6]);
        let (result, after) = run(&bytes, MTU);
        assert_eq!(result, Ok(Outcome::Inserted));
        assert_eq!(after, segment(&with_area(&ack(), &CLIENT_TOA), &[]));
    }

    /// Run `insert` on a segment with options area `area` (and `payload`), within `mtu`:
    /// the outcome, and the options area of the result (which must verify).
    fn area_after(tcp: &TcpHeader, area: &[u8], payload: &[u8], mtu: u16) -> (Outcome, Vec<u8>) {
        let bytes = segment(&with_area(tcp, area), payload);
        let (result, after) = run(&bytes, mtu);
        let outcome = result.unwrap();
        if outcome == Outcome::NoRoom {
            assert_eq!(after, bytes);
        }
        let (header, rest) = TcpHeader::from_slice(&after[34..]).unwrap();
        assert_eq!(rest, payload);
        // Everything else as built by etherparse around the new options.
        assert_eq!(
            after,
            segment(&with_area(tcp, header.options.as_slice()), payload)
        );
        (outcome, header.options.as_slice().to_vec())
    }

    #[test]
    fn full_option_space_pruned() {
        let ts = [8, 10, 1, 2, 3, 4, 5, 6, 7, 8];
        let sack3 = {
            let mut sack = vec![5, 26];
            sack.extend((0..24).map(|i| i as u8));
            sack
        };
        // ACK, 40 bytes: NOP NOP TS SACK(3 blocks) NOP NOP. Removing NOPs is not enough
        // (8 + 36 > 40); SACK goes, TS stays (DPVS: "TS, drop SACK").
        let mut area = vec![1, 1];
        area.extend_from_slice(&ts);
        area.extend_from_slice(&sack3);
        area.extend_from_slice(&[1, 1]);
        let (outcome, after) = area_after(&ack(), &area, b"x", MTU);
        assert_eq!(outcome, Outcome::Pruned);
        let mut want = CLIENT_TOA.to_vec();
        want.extend_from_slice(&ts);
        want.extend_from_slice(&[0, 0]);
        assert_eq!(after, want);

        // 36 bytes of options with 4 NOPs: removing the NOPs is enough (header 56 → 60),
        // nothing else is lost (DPVS would free 8 bytes and drop the SACK).
        let mut area = vec![1, 1, 1, 1];
        area.extend_from_slice(&[5, 18]);
        area.extend((0..16).map(|i| i as u8));
        area.extend_from_slice(&ts);
        area.extend_from_slice(&[1, 1, 1, 1]);
        assert_eq!(area.len(), 36);
        let (outcome, after) = area_after(&ack(), &area, b"", MTU);
        assert_eq!(outcome, Outcome::Pruned);
        let mut want = CLIENT_TOA.to_vec();
        want.extend_from_slice(&area[4..32]);
        assert_eq!(after, want);

        // An old TOA (another balancer's, and a v6 one) is removed first.
        let mut area = vec![0xfe, 8, 1, 2, 10, 0, 0, 1];
        area.extend_from_slice(&[0xfe, 20]);
        area.extend_from_slice(&[0; 18]);
        area.extend_from_slice(&ts);
        area.extend_from_slice(&[1, 1]);
        assert_eq!(area.len(), 40);
        let (outcome, after) = area_after(&ack(), &area, b"", MTU);
        assert_eq!(outcome, Outcome::Pruned);
        let mut want = CLIENT_TOA.to_vec();
        want.extend_from_slice(&ts);
        want.extend_from_slice(&[0, 0]);
        assert_eq!(after, want);
    }

    #[test]
    fn syn_keeps_protected_options() {
        // SYN, 40 bytes: MSS, SACK-perm, NOP×2, TS, WS, an unknown kind 253 of 12 bytes,
        // a second MSS (not protected twice), NOP. The unknown and the second MSS go.
        let syn = tcp_header(true, false, false, false, false);
        let mut area = vec![2, 4, 5, 0xb4, 4, 2, 1, 1];
        area.extend_from_slice(&[8, 10, 1, 2, 3, 4, 5, 6, 7, 8]);
        area.extend_from_slice(&[3, 3, 7]);
        area.extend_from_slice(&[253, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        area.extend_from_slice(&[2, 4, 1, 0]);
        area.extend_from_slice(&[1, 1, 1]);
        assert_eq!(area.len(), 40);
        let (outcome, after) = area_after(&syn, &area, b"", MTU);
        assert_eq!(outcome, Outcome::Pruned);
        // Without NOPs: 4 + 2 + 10 + 3 + 12 + 4 = 35 → 8 + 36 > 40: the unknown option goes
        // (23 → 8 + 24 = 32 fits), the second MSS stays.
        let mut want = CLIENT_TOA.to_vec();
        want.extend_from_slice(&[2, 4, 5, 0xb4, 4, 2]);
        want.extend_from_slice(&[8, 10, 1, 2, 3, 4, 5, 6, 7, 8]);
        want.extend_from_slice(&[3, 3, 7]);
        want.extend_from_slice(&[2, 4, 1, 0]);
        want.push(0);
        assert_eq!(after, want);
        // The same area on an ACK: only the timestamps are protected, so the first MSS goes
        // first (4 bytes: 31 → 8 + 32 = 40 fits).
        let (outcome, after) = area_after(&ack(), &area, b"", MTU);
        assert_eq!(outcome, Outcome::Pruned);
        let mut want = CLIENT_TOA.to_vec();
        want.extend_from_slice(&area[4..6]);
        want.extend_from_slice(&area[8..37]);
        want.push(0);
        assert_eq!(after, want);
    }

    #[test]
    fn no_room_when_protected_options_fill_the_header() {
        // SYN: MPTCP (20), TS, MSS, WS, SACK-perm = 39 bytes, all protected: no room; the
        // frame is unchanged (DPVS would leave it pruned).
        let syn = tcp_header(true, false, false, false, false);
        let mut area = vec![30, 20];
        area.extend_from_slice(&[0; 18]);
        area.extend_from_slice(&[8, 10, 1, 2, 3, 4, 5, 6, 7, 8]);
        area.extend_from_slice(&[2, 4, 5, 0xb4, 3, 3, 7, 4, 2, 1]);
        assert_eq!(area.len(), 40);
        let (outcome, after) = area_after(&syn, &area, b"", MTU);
        assert_eq!(outcome, Outcome::NoRoom);
        assert_eq!(after, area);
        // The same on an ACK: everything but the timestamps can go.
        let (outcome, after) = area_after(&ack(), &area, b"", MTU);
        assert_eq!(outcome, Outcome::Pruned);
        assert_eq!(after[..8], CLIENT_TOA);
    }

    #[test]
    fn mtu_limit() {
        let payload = [0x5a; 100];
        let bytes = segment(&ack(), &payload);
        let total = u16::try_from(bytes.len() - 14).unwrap();
        // Exactly 8 bytes of room: inserted; 7: no room (no options to prune).
        assert_eq!(run(&bytes, total + 8).0, Ok(Outcome::Inserted));
        assert_eq!(run(&bytes, total + 7), (Ok(Outcome::NoRoom), bytes.clone()));
        assert_eq!(run(&bytes, 40), (Ok(Outcome::NoRoom), bytes.clone()));
        // With 4 NOPs and timestamps: pruning the NOPs makes 4 bytes of room.
        let area = [1, 1, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8, 1, 1, 1, 1];
        let tcp = with_area(&ack(), &area);
        let total = u16::try_from(segment(&tcp, &payload).len() - 14).unwrap();
        let (outcome, after) = area_after(&ack(), &area, &payload, total + 4);
        assert_eq!(outcome, Outcome::Pruned);
        let mut want = CLIENT_TOA.to_vec();
        want.extend_from_slice(&area[2..12]);
        want.extend_from_slice(&[0, 0]);
        assert_eq!(after, want);
        assert_eq!(
            area_after(&ack(), &area, &payload, total + 3).0,
            Outcome::NoRoom
        );
    }

    #[test]
    fn refused() {
        let ip = Ip::new(*LOCAL.ip(), *REAL.ip());
        let udp = frame(ROUTER_MAC, PORT_MAC, &ip.udp(1, 2, b"x", true), &[]);
        assert_eq!(
            run(&udp, MTU),
            (Err(DropReason::UnsupportedProtocol), udp.clone())
        );
        let mut bad = segment(&ack(), &[]);
        bad[46] = 0x40;
        assert_eq!(run(&bad, MTU), (Err(DropReason::BadL4Header), bad.clone()));
        let bytes = segment(&ack(), b"data");
        for len in 0..bytes.len() {
            let (result, after) = run(&bytes[..len], MTU);
            assert!(result.is_err(), "{len}");
            assert_eq!(after, bytes[..len], "{len}");
        }
    }

    #[test]
    fn placement() {
        let mut seq = TcpSeq::new(1000, 5000);
        let (syn, ack, fin, rst) = (Flags::SYN, Flags::ACK, Flags::FIN, Flags::RST);
        // Before the SYN+ACK: only alibaba's SYN.
        assert!(!due(Placement::Dpvs, &seq, syn, 0));
        assert!(due(Placement::Alibaba, &seq, syn, 0));
        assert!(!due(Placement::Alibaba, &seq, syn | ack, 0));
        assert!(!due(Placement::Dpvs, &seq, ack, 0));
        seq.server_syn_ack(7000);
        for (flags, ack_number, dpvs, alibaba) in [
            (ack, 7001, true, true),              // the handshake's ACK, data
            (ack | Flags::PSH, 7001, true, true), // data, retransmissions
            (ack | fin, 7001, true, false),       // FIN: DPVS yes, alibaba no
            (ack | rst, 7001, false, false),      // RST: never
            (rst, 7001, false, false),            //
            (ack, 7002, false, false),            // the server has sent data
            (syn, 7001, false, true),             // a retransmitted SYN
            (syn | ack, 7001, false, false),      // SYN+ACK
        ] {
            assert_eq!(
                due(Placement::Dpvs, &seq, flags, ack_number),
                dpvs,
                "{flags:?}"
            );
            assert_eq!(
                due(Placement::Alibaba, &seq, flags, ack_number),
                alibaba,
                "{flags:?}"
            );
        }
        assert_eq!(Placement::default(), Placement::Dpvs);
    }

    /// A strategy for an options area of well-formed options, NOPs and TOAs, at most 40
    /// bytes, padded with EOL.
    fn any_area() -> impl Strategy<Value = Vec<u8>> {
        let option = prop_oneof![
            Just(vec![1u8]),
            any::<u16>().prop_map(|mss| {
                let [a, b] = mss.to_be_bytes();
                vec![2, 4, a, b]
            }),
            any::<u8>().prop_map(|ws| vec![3, 3, ws]),
            Just(vec![4, 2]),
            proptest::collection::vec(any::<u8>(), 8).prop_map(|ts| [vec![8, 10], ts].concat()),
            (1usize..4)
                .prop_flat_map(|n| proptest::collection::vec(any::<u8>(), 8 * n))
                .prop_map(
                    |blocks| [vec![5, u8::try_from(2 + blocks.len()).unwrap()], blocks].concat()
                ),
            proptest::collection::vec(any::<u8>(), 6).prop_map(|toa| [vec![254, 8], toa].concat()),
            (30u8..40, proptest::collection::vec(any::<u8>(), 0..12)).prop_map(|(kind, data)| [
                vec![kind, u8::try_from(2 + data.len()).unwrap()],
                data
            ]
            .concat()),
        ];
        proptest::collection::vec(option, 0..12).prop_map(|options| {
            let mut area: Vec<u8> = Vec::new();
            for option in options {
                if area.len() + option.len() <= 40 {
                    area.extend_from_slice(&option);
                }
            }
            while area.len() % 4 != 0 {
                area.push(0);
            }
            area
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Random segments: TOA is in front (or the frame unchanged), the rest as built by
        /// etherparse around the new options area, so every length and checksum equals a
        /// full recomputation; the result never exceeds the MTU.
        #[test]
        fn random_segments(
            area in any_area(),
            flags in any::<u8>(),
            payload in proptest::collection::vec(any::<u8>(), 0..200),
            mtu in 40u16..400,
            headroom in 0usize..12,
            tailroom in 0usize..12,
        ) {
            let mut tcp = ack();
            tcp.syn = flags & 2 != 0;
            tcp.fin = flags & 1 != 0;
            let tcp = with_area(&tcp, &area);
            let bytes = segment(&tcp, &payload);
            let mut frame = RoomFrame::new(&bytes, headroom, tailroom);
            let outcome = insert(&mut frame, CLIENT, mtu).unwrap();
            let after = frame.data();
            if outcome == Outcome::NoRoom {
                prop_assert_eq!(after, &bytes[..]);
                return Ok(());
            }
            let (ip, _) = Ipv4Header::from_slice(&after[14..]).unwrap();
            prop_assert!(ip.total_len <= mtu);
            let (header, rest) = TcpHeader::from_slice(&after[34..]).unwrap();
            prop_assert_eq!(rest, &payload[..]);
            let options = header.options.as_slice();
            prop_assert_eq!(&options[..8], &CLIENT_TOA[..]);
            if outcome == Outcome::Inserted {
                prop_assert_eq!(&options[8..], &area[..]);
            }
            prop_assert_eq!(after, &segment(&with_area(&tcp, options), &payload)[..]);
        }

        /// Random bytes and mutated segments never panic; refused or unchanged frames keep
        /// their bytes.
        #[test]
        fn random_bytes(
            area in any_area(),
            changes in proptest::collection::vec((0usize..120, any::<u8>()), 0..4),
            cut in 0usize..130,
            random in proptest::collection::vec(any::<u8>(), 0..100),
        ) {
            let mut bytes = segment(&with_area(&ack(), &area), b"payload");
            for (at, value) in changes {
                if let Some(byte) = bytes.get_mut(at) {
                    *byte = value;
                }
            }
            bytes.truncate(cut);
            for bytes in [bytes, random] {
                let (result, after) = run(&bytes, MTU);
                if !matches!(result, Ok(Outcome::Inserted | Outcome::Pruned)) {
                    prop_assert_eq!(after, bytes);
                }
            }
        }
    }
}
