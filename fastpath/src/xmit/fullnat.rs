//! FULLNAT (`ipvsadm -b`, not in mainline Linux: alibaba/LVS and DPVS; spec §4.5): both ends
//! of a connection are rewritten, so real servers can sit in any subnet and need neither a
//! route back through the balancer nor the VIP.
//!
//! A FULLNAT connection joins client `CIP:cport`, virtual service `VIP:vport`, real server
//! `RIP:rport` and a local address of the balancer `LIP:lport` (from the service's pool,
//! [`crate::laddr`]). The real server sees a connection from `LIP:lport`; TOA
//! ([`super::toa`]) or the PROXY protocol ([`super::proxy`]) tell it who the client is.
//!
//! ## Addresses and ports ([`rewrite_in`], [`rewrite_out`])
//!
//! - In, client → real server: source `CIP:cport` → `LIP:lport`, destination `VIP:vport` →
//!   `RIP:rport`.
//! - Out, real server → client: source `RIP:rport` → `VIP:vport`, destination `LIP:lport` →
//!   `CIP:cport`.
//!
//! Checksums: the IPv4 header checksum and the TCP/UDP checksum are updated incrementally
//! (RFC 1624 eqn. 3) for every field that changes, so a correct checksum stays correct and a
//! wrong one stays wrong. UDP without a checksum (0) gets one computed over the datagram, and
//! a computed 0 is sent as `0xffff`, as [`nat`](super::nat) does (Linux's UDP NAT handlers,
//! which alibaba reuses). What does not change is as for [`nat`](super::nat): TTL (the
//! caller's [`decrement_ttl`](super::decrement_ttl)), ToS, identification, flags, IPv4
//! options, the payload, the Ethernet header, the frame length (padding kept).
//!
//! ## TCP sequence numbers
//!
//! The balancer's local address is shared by many clients, so the sequence space towards the
//! real server is the balancer's: on the client's SYN the connection gets a new initial
//! sequence number from [`initial_seq`](super::isn::initial_seq) and keeps `delta = ISN − client ISN` ([`TcpSeq`](crate::conn::TcpSeq);
//! a retransmitted SYN keeps the delta, as DPVS `tcp_in_init_seq`). Then, as DPVS
//! `tcp_in_adjust_seq` / `tcp_out_adjust_seq`:
//!
//! - in: sequence number `+= delta` ([`TcpSeq::in_delta`](crate::conn::TcpSeq::in_delta));
//! - out: acknowledgment number `−= delta` when ACK is set, and both edges of every SACK
//!   block `−= delta` ([`TcpSeq::out_delta`](crate::conn::TcpSeq::out_delta), [`tcp::Packet::sub_sack_edges`]). DPVS adjusts
//!   the acknowledgment field even without ACK, where it means nothing; rvs leaves those
//!   bytes alone. DPVS adjusts only the first SACK option; rvs every well-formed one (a
//!   segment has at most one).
//!
//! When a PROXY protocol header is inserted at the start of the client's byte stream, every
//! later client sequence number moves by its length, and so every acknowledgment and SACK
//! edge of the real server moves back by it; [`TcpSeq`](crate::conn::TcpSeq) keeps that length apart from the
//! delta so that a retransmission of the first segment gets the header again at the same
//! place (see [`proxy`](super::proxy)). The header's own sequence numbers (the balancer's
//! ISN + 1 up to the header's length after it, [`TcpSeq::header`](crate::conn::TcpSeq::header)) are not the client's:
//! an acknowledgment number or SACK edge of the real server inside them (its duplicate
//! ACKs while the first segment is lost, a D-SACK of that segment) goes to the client as
//! its ISN + 1 ([`OutRewrite::header`]), never before it, which the client's TCP would take
//! for an old acknowledgment and answer with a challenge ACK (Linux `tcp_ack`: nothing is
//! acknowledged yet, so no old acknowledgment is acceptable), dropping the segment.
//!
//! All sequence arithmetic wraps (RFC 9293 modular sequence space).
//!
//! ## The SYN's timestamps ([`rewrite_in`])
//!
//! The client's SYN (SYN without ACK) has its Timestamps option overwritten with NOPs (DPVS
//! `tcp_in_remove_ts`, alibaba `tcp_opt_remove_timestamp`): behind one `LIP` the real server
//! sees many clients whose timestamp clocks are unrelated, which per-host PAWS (and the old
//! `tcp_tw_recycle`) would take for old duplicates. Without the option in the SYN the real
//! server never negotiates timestamps, so no later segment of the connection carries any.
//! The option length does not change: no length or offset moves.
//!
//! ## The real server's MSS ([`rewrite_out`])
//!
//! The real server's SYN+ACK has its MSS option lowered by [`OutRewrite::mss_reduction`]
//! ([`TOA_MSS_REDUCTION`] = 8 for TOA, DPVS `tcp_out_adjust_mss`, alibaba with
//! `fullnat_mss_adjust_entry` = 1), so the client's segments leave room for the TOA option the
//! balancer may add; with [`tcp::Packet::set_mss`] semantics (the first well-formed MSS
//! option, checksum updated). The value saturates at 0 (DPVS would wrap). A service using the
//! PROXY protocol may reduce by the header's length instead (see [`proxy`](super::proxy)).
//!
//! ## ICMP errors ([`icmp_out`], [`icmp_in`])
//!
//! The caller reads the embedded flow with [`nat::icmp_flow`](super::nat::icmp_flow) and
//! looks the connection up. Both ends change, outside and inside:
//!
//! - [`icmp_out`], an error from the real server's side about a packet `LIP:lport →
//!   RIP:rport` (a router towards the real server, or the real server): outer source → `VIP`
//!   (as [`nat::icmp_snat`](super::nat::icmp_snat): the client sees the error come from the
//!   address it talks to), outer destination `LIP` → `CIP`; embedded source → `CIP:cport`,
//!   embedded destination → `VIP:vport`; embedded TCP sequence number `−=` the delta that
//!   packet got ([`TcpSeq::embedded_delta`](crate::conn::TcpSeq::embedded_delta)), because the client's TCP ignores errors whose
//!   quoted sequence number is outside its send window (Linux `tcp_v4_err`), which would
//!   break path-MTU discovery;
//! - [`icmp_in`], an error from the client's side about a packet `VIP:vport → CIP:cport`:
//!   outer source → `LIP` (the real server may have no route to the client's side and a
//!   reverse-path filter), outer destination `VIP` → `RIP`; embedded source → `RIP:rport`,
//!   embedded destination → `LIP:lport`; embedded TCP acknowledgment number `+=` the out
//!   delta when the quote reaches it and ACK is set.
//!
//! Checksums as [`nat`](super::nat): outer IPv4 header incremental, embedded IPv4 header
//! recomputed, embedded TCP/UDP checksum untouched, ICMP checksum verified first
//! ([`DropReason::BadIcmpChecksum`]) and recomputed. A "fragmentation needed" MTU is relayed
//! as it is.
//!
//! ## Order of the steps for the caller
//!
//! In: read the client segment's flags, sequence and acknowledgment numbers and payload
//! length (the decisions below are on the values as received); on the first SYN of a
//! connection, `TcpSeq::new(seq, initial_seq(..))` (later SYNs keep it);
//! [`decrement_ttl`](super::decrement_ttl); [`rewrite_in`] with [`TcpSeq::in_delta`](crate::conn::TcpSeq::in_delta) of the
//! received sequence number and payload length; then, when
//! [`toa::due`](super::toa::due) or [`proxy::due`](super::proxy::due) says so,
//! [`toa::insert`](super::toa::insert) (counting [`toa::Outcome::NoRoom`](super::toa::Outcome))
//! or [`proxy::insert`](super::proxy::insert) followed by [`TcpSeq::set_inserted`](crate::conn::TcpSeq::set_inserted). They work
//! on the rewritten packet; doing TOA after the SYN's timestamps became NOPs lets pruning
//! reclaim them. Out: [`decrement_ttl`](super::decrement_ttl); on a SYN+ACK,
//! [`TcpSeq::server_syn_ack`](crate::conn::TcpSeq::server_syn_ack); [`rewrite_out`] with [`TcpSeq::out_delta`](crate::conn::TcpSeq::out_delta) and
//! [`TcpSeq::header`](crate::conn::TcpSeq::header). An ICMP error from the real server's side: [`icmp_out`] with
//! [`TcpSeq::embedded_delta`](crate::conn::TcpSeq::embedded_delta) of the quoted sequence number.
//!
//! ## Errors
//!
//! The checks of [`xmit`](super) and [`nat`](super::nat): [`DropReason::Truncated`],
//! [`DropReason::VlanTagged`], [`DropReason::UnsupportedEthertype`],
//! [`DropReason::BadIpv4Header`], [`DropReason::Fragment`] (a fragment but a first one, which
//! holds the TCP or UDP header: see `rewrite_both`),
//! [`DropReason::UnsupportedProtocol`] (not TCP or UDP), [`DropReason::BadL4Header`]; for ICMP
//! those of [`nat::icmp_flow`](super::nat::icmp_flow) and [`DropReason::BadIcmpChecksum`].
//! Every check comes before the first write: on error the frame is unchanged.

use std::net::SocketAddrV4;

use crate::verdict::DropReason;
use crate::wire::checksum;
use crate::wire::ether;
use crate::wire::icmp;
use crate::wire::ipv4::{self, Protocol};
use crate::wire::tcp::{self, Flags};
use crate::wire::udp;

/// What [`rewrite_in`] writes into a client → real server packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InRewrite {
    /// `LIP:lport`: the new source.
    pub local: SocketAddrV4,
    /// `RIP:rport`: the new destination.
    pub real: SocketAddrV4,
    /// Added to the TCP sequence number ([`TcpSeq::in_delta`](crate::conn::TcpSeq::in_delta)); unused for UDP.
    pub seq_delta: u32,
}

/// What [`rewrite_out`] writes into a real server → client packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutRewrite {
    /// `VIP:vport`: the new source.
    pub virt: SocketAddrV4,
    /// `CIP:cport`: the new destination.
    pub client: SocketAddrV4,
    /// Subtracted from the TCP acknowledgment number and SACK edges
    /// ([`TcpSeq::out_delta`](crate::conn::TcpSeq::out_delta)); unused for UDP.
    pub ack_delta: u32,
    /// The real server's sequence numbers `start .. start + len` that hold a header the
    /// balancer inserted ([`TcpSeq::header`](crate::conn::TcpSeq::header); `(0, 0)`: none). An acknowledgment number or
    /// SACK edge inside is moved to the header's end before `ack_delta` is subtracted: it
    /// acknowledges none of the client's data, so the client must see its ISN + 1.
    pub header: (u32, u16),
    /// Subtracted from the MSS option of a SYN+ACK (0: left alone).
    pub mss_reduction: u16,
}

/// The MSS reduction that leaves room for the TOA option (its length).
pub const TOA_MSS_REDUCTION: u16 = 8;

/// Rewrite a client → real server packet of a FULLNAT connection; see the module
/// documentation. `frame` is the whole Ethernet frame.
///
/// # Errors
/// Those listed in the module documentation; the frame is unchanged.
pub fn rewrite_in(frame: &mut [u8], rewrite: &InRewrite) -> Result<(), DropReason> {
    let seq = Seq::In {
        seq_delta: rewrite.seq_delta,
    };
    rewrite_both(frame, rewrite.local, rewrite.real, seq)
}

/// [`rewrite_in`] of a packet whose headers the pipeline validated (`at`, see
/// [`Headers`](super::Headers); its TTL may have been decremented since, nothing else):
/// the same bytes, with the usual case done without checking the frame again. A TCP
/// segment without SYN behind a 20-byte IPv4 header (every segment of an established
/// connection) has the addresses, ports and sequence number it changes at fixed offsets and
/// nothing else to rewrite: both checksums take one update each for all of them, which is
/// what the updates one after the other give ([`checksum::Delta`]). Anything else (UDP, a
/// SYN, whose timestamps go, IPv4 options) takes [`rewrite_in`].
///
/// # Errors
/// Those of [`rewrite_in`]; the frame is unchanged.
#[inline]
pub fn rewrite_in_at(
    frame: &mut [u8],
    at: &super::Headers,
    rewrite: &InRewrite,
) -> Result<(), DropReason> {
    let Some((ip, tcp)) = plain_tcp(frame, at) else {
        return rewrite_in(frame, rewrite);
    };
    let mut tcp = tcp::Packet::new_unchecked(tcp);
    if tcp.flags().contains(Flags::SYN) {
        return rewrite_in(frame, rewrite);
    }
    let (src, dst) = (rewrite.local, rewrite.real);
    let addresses = set_addresses(ip, src, dst);
    let old_seq = tcp.seq_number();
    let new_seq = old_seq.wrapping_add(rewrite.seq_delta);
    let l4 = addresses
        .u32(old_seq, new_seq)
        .u16(tcp.src_port(), src.port())
        .u16(tcp.dst_port(), dst.port());
    tcp.set_seq_number(new_seq);
    tcp.set_src_port(src.port());
    tcp.set_dst_port(dst.port());
    tcp.set_checksum(l4.apply(tcp.checksum()));
    Ok(())
}

/// Rewrite a real server → client packet of a FULLNAT connection; see the module
/// documentation. Errors as for [`rewrite_in`]; the frame is unchanged on error.
pub fn rewrite_out(frame: &mut [u8], rewrite: &OutRewrite) -> Result<(), DropReason> {
    let seq = Seq::Out {
        ack_delta: rewrite.ack_delta,
        header: rewrite.header,
        mss_reduction: rewrite.mss_reduction,
    };
    rewrite_both(frame, rewrite.virt, rewrite.client, seq)
}

/// [`rewrite_out`] of a packet whose headers the pipeline validated (`at`), as
/// [`rewrite_in_at`]: a TCP segment without SYN and without TCP options behind a 20-byte
/// IPv4 header (no MSS to lower, no SACK edges to move; the usual reply of an established
/// connection, whose timestamps went with the client's SYN) gets one checksum update for
/// its addresses, ports and acknowledgment number; anything else takes [`rewrite_out`].
///
/// # Errors
/// Those of [`rewrite_out`]; the frame is unchanged.
#[inline]
pub fn rewrite_out_at(
    frame: &mut [u8],
    at: &super::Headers,
    rewrite: &OutRewrite,
) -> Result<(), DropReason> {
    let Some((ip, tcp)) = plain_tcp(frame, at) else {
        return rewrite_out(frame, rewrite);
    };
    let mut tcp = tcp::Packet::new_unchecked(tcp);
    let flags = tcp.flags();
    if flags.contains(Flags::SYN) || tcp.header_len() != tcp::HEADER_LEN {
        return rewrite_out(frame, rewrite);
    }
    let (src, dst) = (rewrite.virt, rewrite.client);
    let addresses = set_addresses(ip, src, dst);
    let mut l4 = addresses
        .u16(tcp.src_port(), src.port())
        .u16(tcp.dst_port(), dst.port());
    let (start, len) = (rewrite.header.0, u32::from(rewrite.header.1));
    if (rewrite.ack_delta != 0 || len != 0) && flags.contains(Flags::ACK) {
        let old = tcp.ack_number();
        let new = map_ack(old, rewrite.ack_delta, start, len);
        tcp.set_ack_number(new);
        l4 = l4.u32(old, new);
    }
    tcp.set_src_port(src.port());
    tcp.set_dst_port(dst.port());
    tcp.set_checksum(l4.apply(tcp.checksum()));
    Ok(())
}

/// The IPv4 header and the fixed TCP header of a validated frame (`at`) whose IPv4 header
/// has no options and whose segment is TCP: what [`rewrite_in_at`] and [`rewrite_out_at`]
/// rewrite in place; `None` for anything else.
#[inline(always)]
fn plain_tcp<'a>(frame: &'a mut [u8], at: &super::Headers) -> Option<(&'a mut [u8], &'a mut [u8])> {
    if at.protocol != Protocol::Tcp || at.l4 != ether::HEADER_LEN + ipv4::HEADER_LEN {
        return None;
    }
    let fixed = frame
        .get_mut(ether::HEADER_LEN..at.end)?
        .first_chunk_mut::<{ ipv4::HEADER_LEN + tcp::HEADER_LEN }>()?;
    Some(fixed.split_at_mut(ipv4::HEADER_LEN))
}

/// Set the source and destination of the IPv4 header `ip` to `src` and `dst`, updating its
/// checksum; returns the delta the addresses also make in the TCP pseudo-header.
#[inline(always)]
fn set_addresses(ip: &mut [u8], src: SocketAddrV4, dst: SocketAddrV4) -> checksum::Delta {
    let mut ip = ipv4::Packet::new_unchecked(ip);
    let addresses = checksum::Delta::default()
        .u32(u32::from(ip.src_addr()), u32::from(*src.ip()))
        .u32(u32::from(ip.dst_addr()), u32::from(*dst.ip()));
    ip.set_checksum(addresses.apply(ip.checksum()));
    ip.set_src_addr(*src.ip());
    ip.set_dst_addr(*dst.ip());
    addresses
}

/// A real server's acknowledgment number or SACK edge `s` for the client: moved to the end
/// of the inserted header `start .. start + len` when inside it, then `− ack_delta` (see
/// [`OutRewrite::header`]).
#[inline]
fn map_ack(s: u32, ack_delta: u32, start: u32, len: u32) -> u32 {
    let s = if s.wrapping_sub(start) < len {
        start.wrapping_add(len)
    } else {
        s
    };
    s.wrapping_sub(ack_delta)
}

/// The TCP changes of one direction.
#[derive(Debug, Clone, Copy)]
enum Seq {
    /// Client → real server.
    In { seq_delta: u32 },
    /// Real server → client.
    Out {
        ack_delta: u32,
        header: (u32, u16),
        mss_reduction: u16,
    },
}

/// Rewrite source and destination of a TCP or UDP packet to `src` and `dst`, and the TCP
/// fields of `seq`. The packet may be the first fragment of a datagram (offset 0, MF set),
/// which holds the whole TCP or UDP header: its checksum covers the whole datagram and takes
/// the same incremental update (a UDP length, and a datagram, longer than the fragment; a UDP
/// datagram sent without a checksum keeps none: `fill_checksum` cannot sum what is not here).
fn rewrite_both(
    frame: &mut [u8],
    src: SocketAddrV4,
    dst: SocketAddrV4,
    seq: Seq,
) -> Result<(), DropReason> {
    let ip = super::ipv4_packet_or_fragment(frame)?;
    if ip.frag_offset() != 0 {
        return Err(DropReason::Fragment);
    }
    let protocol = ip.protocol();
    match protocol {
        Protocol::Tcp => {
            tcp::Packet::new_checked(ip.payload())?;
        }
        Protocol::Udp if ip.more_frags() => {
            if ip.payload().len() < udp::HEADER_LEN {
                return Err(DropReason::BadL4Header);
            }
        }
        Protocol::Udp => {
            udp::Packet::new_checked(ip.payload())?;
        }
        _ => return Err(DropReason::UnsupportedProtocol),
    }
    let old = (u32::from(ip.src_addr()), u32::from(ip.dst_addr()));
    let new = (u32::from(*src.ip()), u32::from(*dst.ip()));
    // The addresses are in the IPv4 header and in the TCP/UDP pseudo-header.
    let addresses =
        |sum: u16| checksum::update_u32(checksum::update_u32(sum, old.0, new.0), old.1, new.1);
    let ip_checksum = addresses(ip.checksum());

    let mut ip = super::ipv4_mut(frame);
    ip.set_src_addr(*src.ip());
    ip.set_dst_addr(*dst.ip());
    ip.set_checksum(ip_checksum);
    match protocol {
        Protocol::Tcp => {
            let mut tcp = tcp::Packet::new_unchecked(ip.payload_mut());
            let flags = tcp.flags();
            match seq {
                Seq::In { seq_delta } => {
                    if flags.contains(Flags::SYN) && !flags.contains(Flags::ACK) {
                        tcp.remove_timestamps();
                    }
                    let old = tcp.seq_number();
                    let new = old.wrapping_add(seq_delta);
                    tcp.set_seq_number(new);
                    tcp.set_checksum(checksum::update_u32(tcp.checksum(), old, new));
                }
                Seq::Out {
                    ack_delta,
                    header: (start, len),
                    mss_reduction,
                } => {
                    if flags.contains(Flags::SYN | Flags::ACK) && mss_reduction != 0 {
                        if let Some(mss) = tcp.mss() {
                            tcp.set_mss(mss.saturating_sub(mss_reduction));
                        }
                    }
                    let len = u32::from(len);
                    let map = |s: u32| map_ack(s, ack_delta, start, len);
                    if ack_delta != 0 || len != 0 {
                        if flags.contains(Flags::ACK) {
                            let old = tcp.ack_number();
                            let new = map(old);
                            tcp.set_ack_number(new);
                            tcp.set_checksum(checksum::update_u32(tcp.checksum(), old, new));
                        }
                        tcp.map_sack_edges(map);
                    }
                }
            }
            let (old_src, old_dst) = (tcp.src_port(), tcp.dst_port());
            tcp.set_src_port(src.port());
            tcp.set_dst_port(dst.port());
            let sum = checksum::update_u16(addresses(tcp.checksum()), old_src, src.port());
            tcp.set_checksum(checksum::update_u16(sum, old_dst, dst.port()));
        }
        // UDP, the only other protocol let through above.
        _ => {
            let mut udp = udp::Packet::new_unchecked(ip.payload_mut());
            let (old_src, old_dst, old_sum) = (udp.src_port(), udp.dst_port(), udp.checksum());
            udp.set_src_port(src.port());
            udp.set_dst_port(dst.port());
            if old_sum == 0 {
                // Sent without a checksum: computed, as NAT does.
                udp.fill_checksum(*src.ip(), *dst.ip());
            } else {
                let sum = checksum::update_u16(addresses(old_sum), old_src, src.port());
                let sum = checksum::update_u16(sum, old_dst, dst.port());
                udp.set_checksum(checksum::udp_nonzero(sum));
            }
        }
    }
    Ok(())
}

/// Rewrite an ICMP error from the real server's side about a packet `LIP:lport → RIP:rport`
/// of a FULLNAT connection, for the client: outer `VIP → CIP`, embedded `CIP:cport →
/// VIP:vport`, embedded TCP sequence number − `seq_delta` ([`TcpSeq::embedded_delta`](crate::conn::TcpSeq::embedded_delta) of the
/// embedded sequence number); see the module documentation.
///
/// # Errors
/// Those of [`nat::icmp_flow`](super::nat::icmp_flow), and [`DropReason::BadIcmpChecksum`].
/// The frame is unchanged.
pub fn icmp_out(
    frame: &mut [u8],
    virt: SocketAddrV4,
    client: SocketAddrV4,
    seq_delta: u32,
) -> Result<(), DropReason> {
    icmp_rewrite(frame, client, virt, Embedded::SubSeq(seq_delta))
}

/// Rewrite an ICMP error from the client's side about a packet `VIP:vport → CIP:cport` of a
/// FULLNAT connection, for the real server: outer `LIP → RIP`, embedded `RIP:rport →
/// LIP:lport`, embedded TCP acknowledgment number + `ack_delta` ([`TcpSeq::out_delta`](crate::conn::TcpSeq::out_delta)) when
/// quoted with ACK set; see the module documentation. Errors as for [`icmp_out`]; the frame
/// is unchanged on error.
pub fn icmp_in(
    frame: &mut [u8],
    local: SocketAddrV4,
    real: SocketAddrV4,
    ack_delta: u32,
) -> Result<(), DropReason> {
    icmp_rewrite(frame, real, local, Embedded::AddAck(ack_delta))
}

/// The TCP change inside an ICMP error.
#[derive(Debug, Clone, Copy)]
enum Embedded {
    /// Subtract from the sequence number.
    SubSeq(u32),
    /// Add to the acknowledgment number, if quoted and ACK is set.
    AddAck(u32),
}

/// Rewrite an ICMP error to go from `from.ip()` to `to.ip()`, its embedded packet (which went
/// the other way) from `to` to `from`.
fn icmp_rewrite(
    frame: &mut [u8],
    to: SocketAddrV4,
    from: SocketAddrV4,
    change: Embedded,
) -> Result<(), DropReason> {
    let flow = super::nat::icmp_flow(frame)?;
    let ip = super::ipv4_packet(frame)?;
    if !icmp::Packet::new_unchecked(ip.payload()).verify_checksum() {
        return Err(DropReason::BadIcmpChecksum);
    }
    let ip_checksum = checksum::update_u32(
        checksum::update_u32(
            ip.checksum(),
            u32::from(ip.src_addr()),
            u32::from(*from.ip()),
        ),
        u32::from(ip.dst_addr()),
        u32::from(*to.ip()),
    );

    let mut ip = super::ipv4_mut(frame);
    let mut message = icmp::Packet::new_unchecked(ip.payload_mut());
    // Checked by `icmp_flow`; nothing is written before this point.
    let embedded = message.embedded_mut()?;
    let mut header = embedded.header;
    header.set_src_addr(*to.ip());
    header.set_dst_addr(*from.ip());
    header.fill_checksum();
    // The embedded data holds at least 8 bytes: both ports and the sequence number.
    if flow.protocol == Protocol::Tcp {
        let mut tcp = tcp::Packet::new_unchecked(embedded.data);
        tcp.set_src_port(to.port());
        tcp.set_dst_port(from.port());
        match change {
            Embedded::SubSeq(delta) => tcp.set_seq_number(tcp.seq_number().wrapping_sub(delta)),
            // Reading the flags of a quote shorter than 14 bytes gives none: no write.
            Embedded::AddAck(delta) => {
                if tcp.flags().contains(Flags::ACK) {
                    tcp.set_ack_number(tcp.ack_number().wrapping_add(delta));
                }
            }
        }
    } else {
        let mut udp = udp::Packet::new_unchecked(embedded.data);
        udp.set_src_port(to.port());
        udp.set_dst_port(from.port());
    }
    message.fill_checksum();
    ip.set_src_addr(*from.ip());
    ip.set_dst_addr(*to.ip());
    ip.set_checksum(ip_checksum);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::TcpSeq;
    use crate::xmit::testing::{
        self, frame, tcp_header, Ip, CLIENT, PORT_MAC, REAL, REAL_MAC, ROUTER_MAC, VIRT,
    };
    use etherparse::icmpv4::{DestUnreachableHeader, TimeExceededCode};
    use etherparse::{Icmpv4Type, IpNumber, Ipv4Header, TcpHeader, TcpOptionElement, UdpHeader};
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    /// The balancer's local address and port for the connection.
    const LOCAL: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 1, 0, 100), 5003);
    /// The client's ISN in the test segments ([`tcp_header`]'s sequence number).
    const CLIENT_ISN: u32 = 0x6b8b_4567;
    /// The balancer's ISN towards the real server: below the client's, so the delta wraps.
    const ISN: u32 = 0x0000_1234;
    const DELTA: u32 = ISN.wrapping_sub(CLIENT_ISN);

    fn seq_state() -> TcpSeq {
        TcpSeq::new(CLIENT_ISN, ISN)
    }

    fn rewrite_in_params(seq_delta: u32) -> InRewrite {
        InRewrite {
            local: LOCAL,
            real: REAL,
            seq_delta,
        }
    }

    fn rewrite_out_params(ack_delta: u32, mss_reduction: u16) -> OutRewrite {
        OutRewrite {
            virt: VIRT,
            client: CLIENT,
            ack_delta,
            header: (0, 0),
            mss_reduction,
        }
    }

    /// The Ethernet frame of a TCP segment `src` → `dst` (fields of `ip` otherwise).
    fn tcp_frame(
        ip: &Ip,
        src: SocketAddrV4,
        dst: SocketAddrV4,
        tcp: &TcpHeader,
        payload: &[u8],
    ) -> Vec<u8> {
        let ip = Ip {
            src: *src.ip(),
            dst: *dst.ip(),
            ..ip.clone()
        };
        frame(
            ROUTER_MAC,
            PORT_MAC,
            &ip.tcp(src.port(), dst.port(), tcp, payload),
            &[],
        )
    }

    /// The Ethernet frame of a UDP datagram `src` → `dst`.
    fn udp_frame(src: SocketAddrV4, dst: SocketAddrV4, payload: &[u8], checksum: bool) -> Vec<u8> {
        let ip = Ip::new(*src.ip(), *dst.ip());
        frame(
            ROUTER_MAC,
            PORT_MAC,
            &ip.udp(src.port(), dst.port(), payload, checksum),
            &[],
        )
    }

    /// Every checksum of the IPv4 frame `bytes`, checked with etherparse.
    pub(in crate::xmit) fn assert_checksums(bytes: &[u8]) {
        let (ip, _) = Ipv4Header::from_slice(&bytes[14..]).unwrap();
        assert_eq!(ip.header_checksum, ip.calc_header_checksum());
        let payload = &bytes[14 + ip.header_len()..14 + usize::from(ip.total_len)];
        match ip.protocol {
            IpNumber::TCP => {
                let (tcp, data) = TcpHeader::from_slice(payload).unwrap();
                assert_eq!(tcp.checksum, tcp.calc_checksum_ipv4(&ip, data).unwrap());
            }
            IpNumber::UDP => {
                let (udp, data) = UdpHeader::from_slice(payload).unwrap();
                assert_ne!(udp.checksum, 0);
                assert_eq!(udp.checksum, udp.calc_checksum_ipv4(&ip, data).unwrap());
            }
            IpNumber::ICMP => assert_eq!(testing::sum(payload), 0xffff),
            other => panic!("protocol {other:?}"),
        }
    }

    /// A client SYN with Linux's options: MSS 1460, SACK permitted, timestamps, NOP, window
    /// scale 7 (the timestamps at options offset 6..16).
    fn client_syn() -> TcpHeader {
        let mut syn = tcp_header(true, false, false, false, false);
        syn.set_options(&[
            TcpOptionElement::MaximumSegmentSize(1460),
            TcpOptionElement::SelectiveAcknowledgementPermitted,
            TcpOptionElement::Timestamp(0x0a0b_0c0d, 0),
            TcpOptionElement::Noop,
            TcpOptionElement::WindowScale(7),
        ])
        .unwrap();
        syn
    }

    /// `tcp` with its options area replaced by `area`.
    fn with_raw_options(tcp: &TcpHeader, area: &[u8]) -> TcpHeader {
        let mut tcp = tcp.clone();
        tcp.set_options_raw(area).unwrap();
        tcp
    }

    /// The client → VIP segments of a connection, each with the segment the real server must
    /// receive from `LOCAL` (sequence number + delta, timestamps of a SYN turned into NOPs).
    fn in_cases() -> Vec<(&'static str, TcpHeader, Vec<u8>, TcpHeader)> {
        let shifted = |tcp: &TcpHeader| {
            let mut tcp = tcp.clone();
            tcp.sequence_number = tcp.sequence_number.wrapping_add(DELTA);
            tcp
        };
        let syn = client_syn();
        let mut syn_nops = syn.options.as_slice().to_vec();
        syn_nops[6..16].copy_from_slice(&[1; 10]);
        let mut simultaneous = client_syn();
        simultaneous.ack = true;
        let mut data = tcp_header(false, true, false, false, true);
        data.sequence_number = CLIENT_ISN + 1;
        // The client's SACK blocks are about the server's data: not shifted.
        data.set_options(&[
            TcpOptionElement::Noop,
            TcpOptionElement::Noop,
            TcpOptionElement::SelectiveAcknowledgement((0x327b_0000, 0x327b_0100), [None; 3]),
        ])
        .unwrap();
        let mut ack = tcp_header(false, true, false, false, false);
        ack.sequence_number = CLIENT_ISN + 1;
        vec![
            (
                "SYN: timestamps become NOPs",
                syn.clone(),
                Vec::new(),
                shifted(&with_raw_options(&syn, &syn_nops)),
            ),
            (
                "SYN+ACK from the client side keeps its timestamps",
                simultaneous.clone(),
                Vec::new(),
                shifted(&simultaneous),
            ),
            ("handshake ACK", ack.clone(), Vec::new(), shifted(&ack)),
            (
                "data with SACK, odd length",
                data.clone(),
                b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
                shifted(&data),
            ),
            (
                "FIN",
                tcp_header(false, true, true, false, false),
                Vec::new(),
                shifted(&tcp_header(false, true, true, false, false)),
            ),
            (
                "RST",
                tcp_header(false, false, false, true, false),
                Vec::new(),
                shifted(&tcp_header(false, false, false, true, false)),
            ),
        ]
    }

    #[test]
    fn rewrite_in_tcp_matches_etherparse() {
        let ip = Ip::new(*CLIENT.ip(), *VIRT.ip());
        for (name, tcp, payload, expected) in in_cases() {
            let mut bytes = tcp_frame(&ip, CLIENT, VIRT, &tcp, &payload);
            assert_eq!(
                rewrite_in(&mut bytes, &rewrite_in_params(DELTA)),
                Ok(()),
                "{name}"
            );
            assert_eq!(
                bytes,
                tcp_frame(&ip, LOCAL, REAL, &expected, &payload),
                "{name}"
            );
            assert_checksums(&bytes);
        }
    }

    /// The real server → `LOCAL` segments, each with what the client must receive from the
    /// VIP (acknowledgment and SACK edges − delta, MSS − 8 on the SYN+ACK).
    fn out_cases() -> Vec<(&'static str, TcpHeader, u16, TcpHeader)> {
        let acked = |tcp: &TcpHeader| {
            let mut tcp = tcp.clone();
            tcp.acknowledgment_number = tcp.acknowledgment_number.wrapping_sub(DELTA);
            tcp
        };
        let server_ack = ISN.wrapping_add(1);
        let mut syn_ack = tcp_header(true, true, false, false, false);
        syn_ack.acknowledgment_number = server_ack;
        syn_ack
            .set_options(&[
                TcpOptionElement::MaximumSegmentSize(1460),
                TcpOptionElement::SelectiveAcknowledgementPermitted,
                TcpOptionElement::Noop,
                TcpOptionElement::WindowScale(7),
            ])
            .unwrap();
        let mut clamped = acked(&syn_ack);
        clamped
            .set_options(&[
                TcpOptionElement::MaximumSegmentSize(1452),
                TcpOptionElement::SelectiveAcknowledgementPermitted,
                TcpOptionElement::Noop,
                TcpOptionElement::WindowScale(7),
            ])
            .unwrap();
        let mut ack = tcp_header(false, true, false, false, false);
        ack.acknowledgment_number = server_ack.wrapping_add(100);
        let sack = |a: u32, b: u32, c: u32, d: u32| {
            TcpOptionElement::SelectiveAcknowledgement((a, b), [Some((c, d)), None, None])
        };
        let mut with_sack = ack.clone();
        with_sack.psh = true;
        with_sack
            .set_options(&[
                TcpOptionElement::Noop,
                TcpOptionElement::Noop,
                sack(ISN + 1000, ISN + 2000, ISN + 3000, ISN + 4000),
            ])
            .unwrap();
        let mut sack_shifted = acked(&with_sack);
        sack_shifted
            .set_options(&[
                TcpOptionElement::Noop,
                TcpOptionElement::Noop,
                sack(
                    CLIENT_ISN + 1000,
                    CLIENT_ISN + 2000,
                    CLIENT_ISN + 3000,
                    CLIENT_ISN + 4000,
                ),
            ])
            .unwrap();
        let mut fin = tcp_header(false, true, true, false, false);
        fin.acknowledgment_number = server_ack.wrapping_add(100);
        // A RST without ACK: its acknowledgment field means nothing and is left alone.
        let mut rst = tcp_header(false, false, false, true, false);
        rst.acknowledgment_number = 0x1122_3344;
        vec![
            ("SYN+ACK: MSS - 8", syn_ack.clone(), 8, clamped),
            (
                "SYN+ACK, no MSS reduction",
                syn_ack.clone(),
                0,
                acked(&syn_ack),
            ),
            ("ACK", ack.clone(), 8, acked(&ack)),
            ("data with two SACK blocks", with_sack, 8, sack_shifted),
            ("FIN", fin.clone(), 8, acked(&fin)),
            ("RST without ACK", rst.clone(), 8, rst),
        ]
    }

    #[test]
    fn rewrite_out_tcp_matches_etherparse() {
        let ip = Ip::new(*REAL.ip(), *LOCAL.ip());
        for (name, tcp, mss_reduction, expected) in out_cases() {
            for payload in [&b""[..], b"HTTP/1.1 200 OK\r\n\r\n!"] {
                let mut bytes = tcp_frame(&ip, REAL, LOCAL, &tcp, payload);
                let params = rewrite_out_params(DELTA, mss_reduction);
                assert_eq!(rewrite_out(&mut bytes, &params), Ok(()), "{name}");
                assert_eq!(
                    bytes,
                    tcp_frame(&ip, VIRT, CLIENT, &expected, payload),
                    "{name}"
                );
                assert_checksums(&bytes);
            }
        }
    }

    #[test]
    fn rewrite_udp_matches_etherparse() {
        for (payload, checksum) in [
            (&b"\x12\x34\x01\x00\x00\x01query"[..], true),
            (b"\x12\x34\x01\x00\x00\x01query", false),
            (b"", true),
            (b"odd", false),
        ] {
            let mut bytes = udp_frame(CLIENT, VIRT, payload, checksum);
            assert_eq!(rewrite_in(&mut bytes, &rewrite_in_params(DELTA)), Ok(()));
            // A datagram without a checksum gets one, as NAT.
            assert_eq!(bytes, udp_frame(LOCAL, REAL, payload, true));
            assert_checksums(&bytes);
            let mut bytes = udp_frame(REAL, LOCAL, payload, checksum);
            assert_eq!(
                rewrite_out(&mut bytes, &rewrite_out_params(DELTA, 8)),
                Ok(())
            );
            assert_eq!(bytes, udp_frame(VIRT, CLIENT, payload, true));
            assert_checksums(&bytes);
        }
    }

    #[test]
    fn udp_checksum_zero_sent_as_ffff() {
        // Choose the first payload word so that the rewritten datagram sums to 0xffff: its
        // checksum computes as 0, sent as 0xffff, by the incremental and the full path alike.
        let probe = udp_frame(LOCAL, REAL, &[0, 0, 0xab], true);
        let payload = [probe[40], probe[41], 0xab];
        for checksum in [true, false] {
            let mut bytes = udp_frame(CLIENT, VIRT, &payload, checksum);
            assert_eq!(rewrite_in(&mut bytes, &rewrite_in_params(0)), Ok(()));
            assert_eq!(&bytes[40..42], &[0xff, 0xff], "checksum in: {checksum}");
            assert_eq!(bytes, udp_frame(LOCAL, REAL, &payload, true));
        }
    }

    /// A client SYN 198.51.100.7:40312 → 203.0.113.10:80, MSS 1460, SACK permitted,
    /// timestamps, NOP, window scale 7, as received.
    static SYN_BYTES: [u8; 74] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // Ethernet destination: port
        0x52, 0x54, 0x00, 0x00, 0x00, 0xfe, // Ethernet source: router
        0x08, 0x00, // IPv4
        0x45, 0x00, 0x00, 0x3c, // IHL 5, total length 60
        0x1c, 0x46, 0x40, 0x00, // ident 0x1c46, DF
        0x39, 0x06, 0xbf, 0x30, // TTL 57, TCP, checksum
        0xc6, 0x33, 0x64, 0x07, // 198.51.100.7
        0xcb, 0x00, 0x71, 0x0a, // 203.0.113.10
        0x9d, 0x78, 0x00, 0x50, // 40312 -> 80
        0x6b, 0x8b, 0x45, 0x67, // sequence number
        0x00, 0x00, 0x00, 0x00, // acknowledgment number
        0xa0, 0x02, 0xfa, 0xf0, // data offset 10, SYN, window 64240
        0x81, 0xf6, 0x00, 0x00, // checksum, urgent pointer
        0x02, 0x04, 0x05, 0xb4, // MSS 1460
        0x04, 0x02, // SACK permitted
        0x08, 0x0a, 0x0a, 0x0b, 0x0c, 0x0d, 0x00, 0x00, 0x00, 0x00, // timestamps
        0x01, // NOP
        0x03, 0x03, 0x07, // window scale 7
    ];

    /// SYN_BYTES after rewrite_in: 10.1.0.100:5003 → 10.1.0.3:8080, sequence number
    /// 0x00001234, timestamps overwritten with NOPs.
    static SYN_IN_BYTES: [u8; 74] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // Ethernet unchanged (the caller's)
        0x52, 0x54, 0x00, 0x00, 0x00, 0xfe, //
        0x08, 0x00, //
        0x45, 0x00, 0x00, 0x3c, // unchanged
        0x1c, 0x46, 0x40, 0x00, // unchanged
        0x39, 0x06, 0x11, 0x0e, // TTL 57 kept, checksum
        0x0a, 0x01, 0x00, 0x64, // 10.1.0.100
        0x0a, 0x01, 0x00, 0x03, // 10.1.0.3
        0x13, 0x8b, 0x1f, 0x90, // 5003 -> 8080
        0x00, 0x00, 0x12, 0x34, // the balancer's ISN
        0x00, 0x00, 0x00, 0x00, //
        0xa0, 0x02, 0xfa, 0xf0, //
        0xf6, 0x5c, 0x00, 0x00, // checksum
        0x02, 0x04, 0x05, 0xb4, // MSS unchanged
        0x04, 0x02, // SACK permitted unchanged
        0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, // NOPs
        0x01, // NOP
        0x03, 0x03, 0x07, // window scale 7
    ];

    #[test]
    fn syn_in_bytes() {
        let ip = Ip::new(*CLIENT.ip(), *VIRT.ip());
        assert_eq!(tcp_frame(&ip, CLIENT, VIRT, &client_syn(), &[]), SYN_BYTES);
        // The expected bytes, built by etherparse.
        let (_, _, _, expected) = in_cases().remove(0);
        assert_eq!(tcp_frame(&ip, LOCAL, REAL, &expected, &[]), SYN_IN_BYTES);
        let mut bytes = SYN_BYTES;
        assert_eq!(rewrite_in(&mut bytes, &rewrite_in_params(DELTA)), Ok(()));
        assert_eq!(bytes, SYN_IN_BYTES);
        assert_checksums(&bytes);
    }

    /// The real server's SYN+ACK 10.1.0.3:8080 → 10.1.0.100:5003, ack 0x00001235, MSS 1460.
    static SYN_ACK_BYTES: [u8; 58] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // Ethernet destination: port
        0x52, 0x54, 0x00, 0x00, 0x00, 0xfe, // Ethernet source
        0x08, 0x00, // IPv4
        0x45, 0x00, 0x00, 0x2c, // total length 44
        0x1c, 0x46, 0x40, 0x00, //
        0x39, 0x06, 0x11, 0x1e, // checksum
        0x0a, 0x01, 0x00, 0x03, // 10.1.0.3
        0x0a, 0x01, 0x00, 0x64, // 10.1.0.100
        0x1f, 0x90, 0x13, 0x8b, // 8080 -> 5003
        0x6b, 0x8b, 0x45, 0x67, // the server's ISN
        0x00, 0x00, 0x12, 0x35, // acknowledgment: the balancer's ISN + 1
        0x60, 0x12, 0xfa, 0xf0, // data offset 6, SYN+ACK
        0x92, 0x7a, 0x00, 0x00, // checksum
        0x02, 0x04, 0x05, 0xb4, // MSS 1460
    ];

    /// SYN_ACK_BYTES after rewrite_out: 203.0.113.10:80 → 198.51.100.7:40312, ack
    /// 0x6b8b4568 (the client's ISN + 1), MSS 1452.
    static SYN_ACK_OUT_BYTES: [u8; 58] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, //
        0x52, 0x54, 0x00, 0x00, 0x00, 0xfe, //
        0x08, 0x00, //
        0x45, 0x00, 0x00, 0x2c, //
        0x1c, 0x46, 0x40, 0x00, //
        0x39, 0x06, 0xbf, 0x40, // checksum
        0xcb, 0x00, 0x71, 0x0a, // 203.0.113.10
        0xc6, 0x33, 0x64, 0x07, // 198.51.100.7
        0x00, 0x50, 0x9d, 0x78, // 80 -> 40312
        0x6b, 0x8b, 0x45, 0x67, // the server's sequence number, unchanged
        0x6b, 0x8b, 0x45, 0x68, // the client's ISN + 1
        0x60, 0x12, 0xfa, 0xf0, //
        0x37, 0x39, 0x00, 0x00, // checksum
        0x02, 0x04, 0x05, 0xac, // MSS 1452
    ];

    #[test]
    fn syn_ack_out_bytes() {
        let mut syn_ack = tcp_header(true, true, false, false, false);
        syn_ack.acknowledgment_number = ISN + 1;
        syn_ack
            .set_options(&[TcpOptionElement::MaximumSegmentSize(1460)])
            .unwrap();
        let ip = Ip::new(*REAL.ip(), *LOCAL.ip());
        assert_eq!(tcp_frame(&ip, REAL, LOCAL, &syn_ack, &[]), SYN_ACK_BYTES);
        let mut expected = syn_ack.clone();
        expected.acknowledgment_number = CLIENT_ISN + 1;
        expected
            .set_options(&[TcpOptionElement::MaximumSegmentSize(1452)])
            .unwrap();
        assert_eq!(
            tcp_frame(&ip, VIRT, CLIENT, &expected, &[]),
            SYN_ACK_OUT_BYTES
        );
        let mut bytes = SYN_ACK_BYTES;
        let params = rewrite_out_params(DELTA, TOA_MSS_REDUCTION);
        assert_eq!(rewrite_out(&mut bytes, &params), Ok(()));
        assert_eq!(bytes, SYN_ACK_OUT_BYTES);
        assert_checksums(&bytes);
    }

    #[test]
    fn mss_reduction_saturates() {
        let mut syn_ack = tcp_header(true, true, false, false, false);
        syn_ack
            .set_options(&[TcpOptionElement::MaximumSegmentSize(5)])
            .unwrap();
        let ip = Ip::new(*REAL.ip(), *LOCAL.ip());
        let mut bytes = tcp_frame(&ip, REAL, LOCAL, &syn_ack, &[]);
        assert_eq!(rewrite_out(&mut bytes, &rewrite_out_params(0, 8)), Ok(()));
        assert_eq!(&bytes[56..58], &[0, 0]);
        assert_checksums(&bytes);
    }

    #[test]
    fn ip_options_and_padding_kept() {
        let mut ip = Ip::new(*CLIENT.ip(), *VIRT.ip());
        ip.options = vec![0x94, 0x04, 0x00, 0x00];
        for (name, tcp, payload, expected) in in_cases() {
            let mut bytes = tcp_frame(&ip, CLIENT, VIRT, &tcp, &payload);
            bytes.extend_from_slice(&[0xee; 6]);
            assert_eq!(
                rewrite_in(&mut bytes, &rewrite_in_params(DELTA)),
                Ok(()),
                "{name}"
            );
            let mut want = tcp_frame(&ip, LOCAL, REAL, &expected, &payload);
            want.extend_from_slice(&[0xee; 6]);
            assert_eq!(bytes, want, "{name}");
        }
    }

    /// Run `f` on a copy of `bytes`; return the result and the copy.
    fn run(
        f: impl Fn(&mut [u8]) -> Result<(), DropReason>,
        bytes: &[u8],
    ) -> (Result<(), DropReason>, Vec<u8>) {
        let mut copy = bytes.to_vec();
        let result = f(&mut copy);
        (result, copy)
    }

    /// A rewrite of this module, as a function of the frame only.
    type Rewrite = Box<dyn Fn(&mut [u8]) -> Result<(), DropReason>>;

    /// Every rewrite of this module.
    fn rewrites() -> Vec<(&'static str, Rewrite)> {
        vec![
            ("in", Box::new(|b| rewrite_in(b, &rewrite_in_params(DELTA)))),
            (
                "out",
                Box::new(|b| rewrite_out(b, &rewrite_out_params(DELTA, 8))),
            ),
            ("icmp out", Box::new(|b| icmp_out(b, VIRT, CLIENT, DELTA))),
            ("icmp in", Box::new(|b| icmp_in(b, LOCAL, REAL, DELTA))),
        ]
    }

    #[test]
    fn refused_frames_unchanged() {
        let ip = Ip::new(*CLIENT.ip(), *VIRT.ip());
        let syn = tcp_frame(&ip, CLIENT, VIRT, &client_syn(), &[]);
        let with = |at: usize, value: &[u8]| {
            let mut bytes = syn.clone();
            bytes[at..at + value.len()].copy_from_slice(value);
            bytes
        };
        let icmp = frame(
            ROUTER_MAC,
            PORT_MAC,
            &ip.icmp(
                Icmpv4Type::EchoRequest(etherparse::IcmpEchoHeader { id: 1, seq: 1 }),
                b"ping",
            ),
            &[],
        );
        let cases = [
            ("VLAN", with(12, &[0x81, 0x00]), DropReason::VlanTagged),
            (
                "ARP",
                with(12, &[0x08, 0x06]),
                DropReason::UnsupportedEthertype,
            ),
            ("version 6", with(14, &[0x65]), DropReason::BadIpv4Header),
            (
                "total length",
                with(16, &[0x01, 0x00]),
                DropReason::Truncated,
            ),
            (
                "later fragment",
                with(20, &[0x00, 0x01]),
                DropReason::Fragment,
            ),
            ("data offset 4", with(46, &[0x40]), DropReason::BadL4Header),
            ("data offset 15", with(46, &[0xf0]), DropReason::BadL4Header),
            ("GRE", with(23, &[47]), DropReason::UnsupportedProtocol),
        ];
        for (name, bytes, reason) in cases {
            for (which, f) in &rewrites()[..2] {
                assert_eq!(
                    run(f, &bytes),
                    (Err(reason), bytes.clone()),
                    "{name}, {which}"
                );
            }
        }
        // ICMP is not TCP or UDP; TCP is not an ICMP error.
        for (which, f) in &rewrites()[..2] {
            assert_eq!(
                run(f, &icmp),
                (Err(DropReason::UnsupportedProtocol), icmp.clone()),
                "{which}"
            );
        }
        for (which, f) in &rewrites()[2..] {
            assert_eq!(
                run(f, &syn),
                (Err(DropReason::UnsupportedProtocol), syn.clone()),
                "{which}"
            );
            assert_eq!(
                run(f, &icmp),
                (Err(DropReason::IcmpIgnored), icmp.clone()),
                "{which}"
            );
        }
        for len in 0..syn.len() {
            for (which, f) in rewrites() {
                let (result, after) = run(&f, &syn[..len]);
                assert!(result.is_err(), "len {len}, {which}");
                assert_eq!(after, syn[..len], "len {len}, {which}");
            }
        }
    }

    /// An ICMP error from `from` to `to` of `icmp_type` quoting `quoted`.
    fn icmp_error(from: Ipv4Addr, to: Ipv4Addr, icmp_type: Icmpv4Type, quoted: &[u8]) -> Vec<u8> {
        frame(
            REAL_MAC,
            PORT_MAC,
            &Ip::new(from, to).icmp(icmp_type, quoted),
            &[],
        )
    }

    #[test]
    fn icmp_out_rewrites_both_ends_and_the_sequence() {
        // A router between the balancer and the real server cannot forward the first data
        // segment: "fragmentation needed", quoting all of it.
        let router = Ipv4Addr::new(10, 1, 0, 1);
        let mut data = tcp_header(false, true, false, false, true);
        data.sequence_number = CLIENT_ISN + 1;
        let ip = Ip::new(*CLIENT.ip(), *VIRT.ip());
        let sent = tcp_frame(&ip, CLIENT, VIRT, &data, b"hello")[14..].to_vec();
        let mut delivered = tcp_frame(&ip, CLIENT, VIRT, &data, b"hello");
        let seq = seq_state();
        let delta = seq.in_delta(CLIENT_ISN + 1, 5);
        assert_eq!(
            rewrite_in(&mut delivered, &rewrite_in_params(delta)),
            Ok(())
        );
        let delivered = &delivered[14..];
        let frag = Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::FragmentationNeeded {
            next_hop_mtu: 1400,
        });
        for quoted in [28, 32, delivered.len()] {
            let mut bytes = icmp_error(router, *LOCAL.ip(), frag.clone(), &delivered[..quoted]);
            let embedded_seq = u32::from_be_bytes(delivered[24..28].try_into().unwrap());
            let seq_delta = seq.embedded_delta(embedded_seq);
            assert_eq!(
                icmp_out(&mut bytes, VIRT, CLIENT, seq_delta),
                Ok(()),
                "{quoted}"
            );
            // The quote is the client's packet as sent, but for the TCP checksum (which covers
            // data the error may not carry) and the TTL-independent header checksum.
            let mut expected_quote = sent[..quoted].to_vec();
            if quoted >= 38 {
                expected_quote[36..38].copy_from_slice(&delivered[36..38]);
            }
            let expected = icmp_error(*VIRT.ip(), *CLIENT.ip(), frag.clone(), &expected_quote);
            assert_eq!(bytes, expected, "{quoted}");
            assert_checksums(&bytes);
        }
    }

    #[test]
    fn icmp_in_rewrites_both_ends_and_the_ack() {
        // A router on the client's side: time exceeded about a reply VIP → client.
        let router = Ipv4Addr::new(198, 51, 100, 1);
        let mut reply = tcp_header(false, true, false, false, true);
        reply.acknowledgment_number = CLIENT_ISN + 1;
        let ip = Ip::new(*REAL.ip(), *LOCAL.ip());
        let sent = tcp_frame(&ip, REAL, LOCAL, &reply, b"data")[14..].to_vec();
        let mut delivered = tcp_frame(&ip, REAL, LOCAL, &reply, b"data");
        let seq = seq_state();
        assert_eq!(
            rewrite_out(&mut delivered, &rewrite_out_params(seq.out_delta(), 8)),
            Ok(())
        );
        let delivered = &delivered[14..];
        let exceeded = Icmpv4Type::TimeExceeded(TimeExceededCode::TtlExceededInTransit);
        for quoted in [28, 33, 34, delivered.len()] {
            let mut bytes = icmp_error(router, *VIRT.ip(), exceeded.clone(), &delivered[..quoted]);
            assert_eq!(
                icmp_in(&mut bytes, LOCAL, REAL, seq.out_delta()),
                Ok(()),
                "{quoted}"
            );
            let mut expected_quote = sent[..quoted].to_vec();
            if quoted < 34 {
                // No flags quoted: the acknowledgment number (if any of it) is left alone.
                expected_quote[28..quoted].copy_from_slice(&delivered[28..quoted]);
            }
            if quoted >= 38 {
                expected_quote[36..38].copy_from_slice(&delivered[36..38]);
            }
            let expected = icmp_error(*LOCAL.ip(), *REAL.ip(), exceeded.clone(), &expected_quote);
            assert_eq!(bytes, expected, "{quoted}");
            assert_checksums(&bytes);
        }
    }

    #[test]
    fn icmp_udp_and_bad_checksum() {
        let ip = Ip::new(*LOCAL.ip(), *REAL.ip());
        let delivered = ip.udp(LOCAL.port(), REAL.port(), b"query", true);
        let unreachable = Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::Port);
        let mut bytes = icmp_error(*REAL.ip(), *LOCAL.ip(), unreachable.clone(), &delivered);
        let good = bytes.clone();
        assert_eq!(icmp_out(&mut bytes, VIRT, CLIENT, DELTA), Ok(()));
        let sent =
            Ip::new(*CLIENT.ip(), *VIRT.ip()).udp(CLIENT.port(), VIRT.port(), b"query", true);
        let mut expected_quote = sent.clone();
        expected_quote[26..28].copy_from_slice(&delivered[26..28]);
        assert_eq!(
            bytes,
            icmp_error(*VIRT.ip(), *CLIENT.ip(), unreachable, &expected_quote)
        );
        let mut bad = good.clone();
        bad[40] ^= 1;
        assert_eq!(
            run(|b| icmp_out(b, VIRT, CLIENT, DELTA), &bad),
            (Err(DropReason::BadIcmpChecksum), bad.clone())
        );
        assert_eq!(
            run(|b| icmp_in(b, LOCAL, REAL, DELTA), &bad),
            (Err(DropReason::BadIcmpChecksum), bad.clone())
        );
    }

    #[test]
    fn tcp_seq_without_proxy_header() {
        let mut seq = seq_state();
        assert_eq!(seq.client_isn(), CLIENT_ISN);
        assert_eq!(seq.fdata_seq(), None);
        // SYN, its retransmission, and every later segment: the same delta, which wraps.
        assert_eq!(CLIENT_ISN.wrapping_add(seq.in_delta(CLIENT_ISN, 0)), ISN);
        assert_eq!(seq.in_delta(CLIENT_ISN + 1, 0), DELTA);
        assert_eq!(seq.in_delta(CLIENT_ISN + 1, 100), DELTA);
        assert_eq!(seq.in_delta(CLIENT_ISN + 101, 100), DELTA);
        assert_eq!(seq.out_delta(), DELTA);
        assert_eq!((ISN + 1).wrapping_sub(seq.out_delta()), CLIENT_ISN + 1);
        seq.server_syn_ack(u32::MAX);
        assert_eq!(seq.fdata_seq(), Some(0));
    }

    #[test]
    fn tcp_seq_with_proxy_header() {
        let mut seq = seq_state();
        seq.set_inserted(47);
        let first = CLIENT_ISN + 1;
        // The first data segment and its retransmissions: the delta only; the header is
        // in front of its data.
        assert_eq!(first.wrapping_add(seq.in_delta(first, 10)), ISN + 1);
        // Everything else moves by the header's length too.
        assert_eq!(
            (first + 10).wrapping_add(seq.in_delta(first + 10, 5)),
            ISN + 1 + 47 + 10
        );
        // A pure ACK at the first sequence number (after the data) as well.
        assert_eq!(first.wrapping_add(seq.in_delta(first, 0)), ISN + 1 + 47);
        // The server acknowledges header + 10 bytes: the client sees its 10 bytes acked.
        assert_eq!(
            (ISN + 1 + 47 + 10).wrapping_sub(seq.out_delta()),
            first + 10
        );
        // Embedded in an ICMP error: each sent sequence number maps back.
        assert_eq!((ISN + 1).wrapping_sub(seq.embedded_delta(ISN + 1)), first);
        assert_eq!(
            (ISN + 1 + 47 + 10).wrapping_sub(seq.embedded_delta(ISN + 1 + 47 + 10)),
            first + 10
        );
        // Idempotent.
        seq.set_inserted(47);
        assert_eq!(seq.out_delta(), DELTA.wrapping_add(47));
        assert_eq!(seq.header(), (ISN + 1, 47));
        assert_eq!(seq_state().header(), (ISN + 1, 0));
    }

    /// The real server's acknowledgment numbers and SACK edges inside the inserted header
    /// (ISN + 1 .. ISN + 1 + 47) reach the client as its ISN + 1; those after it move back
    /// by delta + 47; those before it (none in practice) are only shifted.
    #[test]
    fn rewrite_out_maps_the_header_range_to_the_client_isn() {
        let mut seq = seq_state();
        seq.set_inserted(47);
        let first = CLIENT_ISN + 1;
        let out = |ack: u32, sack: (u32, u32)| {
            let mut reply = tcp_header(false, true, false, false, false);
            reply.acknowledgment_number = ack;
            reply
                .set_options(&[
                    TcpOptionElement::Noop,
                    TcpOptionElement::Noop,
                    TcpOptionElement::SelectiveAcknowledgement(sack, [None; 3]),
                ])
                .unwrap();
            reply
        };
        let rewrite = OutRewrite {
            header: seq.header(),
            ..rewrite_out_params(seq.out_delta(), 0)
        };
        let ip = Ip::new(*REAL.ip(), *LOCAL.ip());
        for (ack, sack, seen_ack, seen_sack) in [
            // Nothing received (a dup ACK), SACK of later data.
            (
                ISN + 1,
                (ISN + 58, ISN + 68),
                first,
                (first + 10, first + 20),
            ),
            // A D-SACK of the first segment: its left edge is the header's start.
            (
                ISN + 68,
                (ISN + 1, ISN + 58),
                first + 20,
                (first, first + 10),
            ),
            // Inside the header, and its last byte: still nothing of the client's.
            (ISN + 30, (ISN + 47, ISN + 48), first, (first, first)),
            // The header's end: the same, exactly.
            (ISN + 48, (ISN + 48, ISN + 49), first, (first, first + 1)),
            // Before the header (the SYN+ACK's predecessor): shifted by delta + 47.
            (ISN, (ISN, ISN), first - 48, (first - 48, first - 48)),
        ] {
            let mut bytes = tcp_frame(&ip, REAL, LOCAL, &out(ack, sack), b"");
            assert_eq!(rewrite_out(&mut bytes, &rewrite), Ok(()));
            let expected = tcp_frame(&ip, VIRT, CLIENT, &out(seen_ack, seen_sack), b"");
            assert_eq!(bytes, expected, "ack {ack:#x}, sack {sack:x?}");
        }
    }

    /// A strategy for a TCP segment with random fields, options and payload.
    pub(in crate::xmit) fn any_tcp() -> impl Strategy<Value = (TcpHeader, Vec<u8>)> {
        let option = prop_oneof![
            Just(TcpOptionElement::Noop),
            any::<u16>().prop_map(TcpOptionElement::MaximumSegmentSize),
            any::<u8>().prop_map(TcpOptionElement::WindowScale),
            Just(TcpOptionElement::SelectiveAcknowledgementPermitted),
            (any::<u32>(), any::<u32>()).prop_map(|(a, b)| TcpOptionElement::Timestamp(a, b)),
            (
                any::<(u32, u32)>(),
                proptest::option::of(any::<(u32, u32)>())
            )
                .prop_map(|(first, second)| {
                    TcpOptionElement::SelectiveAcknowledgement(first, [second, None, None])
                }),
        ];
        (
            any::<u8>(),
            any::<u32>(),
            any::<u32>(),
            any::<u16>(),
            proptest::collection::vec(option, 0..5),
            proptest::collection::vec(any::<u8>(), 0..80),
        )
            .prop_filter_map(
                "options fit",
                |(flags, seq, ack, window, options, payload)| {
                    let mut tcp = TcpHeader::new(0, 0, seq, window);
                    tcp.fin = flags & 0x01 != 0;
                    tcp.syn = flags & 0x02 != 0;
                    tcp.rst = flags & 0x04 != 0;
                    tcp.psh = flags & 0x08 != 0;
                    tcp.ack = flags & 0x10 != 0;
                    tcp.acknowledgment_number = ack;
                    tcp.set_options(&options).ok()?;
                    Some((tcp, payload))
                },
            )
    }

    /// A checksum field, often one of the two forms of zero.
    fn any_sum() -> impl Strategy<Value = u16> {
        prop_oneof![Just(0u16), Just(0xffff), any::<u16>()]
    }

    fn any_addr() -> impl Strategy<Value = SocketAddrV4> {
        (any::<u32>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddrV4::new(Ipv4Addr::from(ip), port))
    }

    /// What `rewrite_in`/`rewrite_out` should make of the options area `area` (a raw copy):
    /// timestamps → NOPs, or SACK edges and MSS adjusted, found with etherparse's parser.
    fn expected_tcp(tcp: &TcpHeader, inbound: bool, delta: u32, mss_reduction: u16) -> TcpHeader {
        let mut out = tcp.clone();
        let mut elements: Vec<TcpOptionElement> =
            tcp.options_iterator().map(|o| o.unwrap()).collect();
        if inbound {
            out.sequence_number = tcp.sequence_number.wrapping_add(delta);
            if tcp.syn && !tcp.ack {
                if let Some(i) = elements
                    .iter()
                    .position(|o| matches!(o, TcpOptionElement::Timestamp(..)))
                {
                    elements.splice(i..=i, std::iter::repeat_n(TcpOptionElement::Noop, 10));
                }
            }
        } else {
            if tcp.ack {
                out.acknowledgment_number = tcp.acknowledgment_number.wrapping_sub(delta);
            }
            let mut mss_done = !(tcp.syn && tcp.ack) || mss_reduction == 0;
            for element in &mut elements {
                match element {
                    TcpOptionElement::MaximumSegmentSize(mss) if !mss_done => {
                        *mss = mss.saturating_sub(mss_reduction);
                        mss_done = true;
                    }
                    TcpOptionElement::SelectiveAcknowledgement(first, rest) => {
                        let shift =
                            |(a, b): (u32, u32)| (a.wrapping_sub(delta), b.wrapping_sub(delta));
                        *first = shift(*first);
                        for block in rest.iter_mut().flatten() {
                            *block = shift(*block);
                        }
                    }
                    _ => {}
                }
            }
        }
        out.set_options(&elements).unwrap();
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Random segments and datagrams, both directions: the incremental checksums equal a
        /// full recomputation (the etherparse-built expected packet), byte for byte.
        #[test]
        fn incremental_equals_full(
            (tcp, payload) in any_tcp(),
            udp in any::<bool>(),
            udp_checksum in any::<bool>(),
            client in any_addr(),
            virt in any_addr(),
            local in any_addr(),
            real in any_addr(),
            delta in any::<u32>(),
            mss_reduction in any::<u16>(),
        ) {
            let ip = Ip::new(*client.ip(), *virt.ip());
            let (received, expected_in, reply, expected_out) = if udp {
                (
                    udp_frame(client, virt, &payload, udp_checksum),
                    udp_frame(local, real, &payload, true),
                    udp_frame(real, local, &payload, udp_checksum),
                    udp_frame(virt, client, &payload, true),
                )
            } else {
                (
                    tcp_frame(&ip, client, virt, &tcp, &payload),
                    tcp_frame(&ip, local, real, &expected_tcp(&tcp, true, delta, 0), &payload),
                    tcp_frame(&ip, real, local, &tcp, &payload),
                    tcp_frame(&ip, virt, client, &expected_tcp(&tcp, false, delta, mss_reduction), &payload),
                )
            };
            let mut bytes = received;
            let params = InRewrite { local, real, seq_delta: delta };
            prop_assert_eq!(rewrite_in(&mut bytes, &params), Ok(()));
            prop_assert_eq!(&bytes, &expected_in);
            let mut bytes = reply;
            let params = OutRewrite { virt, client, ack_delta: delta, header: (0, 0), mss_reduction };
            prop_assert_eq!(rewrite_out(&mut bytes, &params), Ok(()));
            prop_assert_eq!(&bytes, &expected_out);
        }

        /// `rewrite_in_at`/`rewrite_out_at` (one checksum update for every field) write the
        /// same bytes as `rewrite_in`/`rewrite_out` (one update per field), including for
        /// wrong checksums (kept wrong the same way), zero deltas and the header range.
        #[test]
        fn at_equals_rewrite(
            (tcp, payload) in any_tcp(),
            udp in any::<bool>(),
            udp_checksum in any::<bool>(),
            options in any::<bool>(),
            checksums in proptest::option::of((any_sum(), any_sum())),
            (src, dst, to_src, to_dst) in (any_addr(), any_addr(), any_addr(), any_addr()),
            delta in prop_oneof![Just(0u32), any::<u32>()],
            header in prop_oneof![Just((0u32, 0u16)), any::<(u32, u16)>()],
            mss_reduction in any::<u16>(),
        ) {
            let mut ip = Ip::new(*src.ip(), *dst.ip());
            if options {
                ip.options = vec![1, 1, 1, 0];
            }
            let mut frame = if udp {
                udp_frame(src, dst, &payload, udp_checksum)
            } else {
                tcp_frame(&ip, src, dst, &tcp, &payload)
            };
            let at = crate::xmit::headers(&frame).unwrap();
            if let Some((ip_sum, l4_sum)) = checksums {
                frame[24..26].copy_from_slice(&ip_sum.to_be_bytes());
                let l4_sum_at = at.l4 + if udp { 6 } else { 16 };
                frame[l4_sum_at..l4_sum_at + 2].copy_from_slice(&l4_sum.to_be_bytes());
            }
            let params = InRewrite { local: to_src, real: to_dst, seq_delta: delta };
            let (mut expected, mut bytes) = (frame.clone(), frame.clone());
            prop_assert_eq!(rewrite_in(&mut expected, &params), Ok(()));
            prop_assert_eq!(rewrite_in_at(&mut bytes, &at, &params), Ok(()));
            prop_assert_eq!(&bytes, &expected);
            let params = OutRewrite {
                virt: to_src,
                client: to_dst,
                ack_delta: delta,
                header,
                mss_reduction,
            };
            let (mut expected, mut bytes) = (frame.clone(), frame);
            prop_assert_eq!(rewrite_out(&mut expected, &params), Ok(()));
            prop_assert_eq!(rewrite_out_at(&mut bytes, &at, &params), Ok(()));
            prop_assert_eq!(&bytes, &expected);
        }

        /// Random bytes never panic, and are refused unchanged or accepted with their length.
        #[test]
        fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
            for (_, f) in rewrites() {
                let (result, after) = run(&f, &bytes);
                prop_assert_eq!(after.len(), bytes.len());
                if result.is_err() {
                    prop_assert_eq!(&after, &bytes);
                }
            }
        }

        /// Valid frames (TCP with options, UDP, ICMP errors) with a few bytes changed and cut
        /// anywhere: never a panic; refused frames are unchanged.
        #[test]
        fn mutated_frames(
            which in 0usize..4,
            (tcp, payload) in any_tcp(),
            changes in proptest::collection::vec((0usize..140, any::<u8>()), 0..4),
            cut in 0usize..150,
        ) {
            let ip = Ip::new(*CLIENT.ip(), *VIRT.ip());
            let segment = tcp_frame(&ip, CLIENT, VIRT, &tcp, &payload);
            let mut bytes = match which {
                0 => segment,
                1 => udp_frame(CLIENT, VIRT, &payload, true),
                2 => icmp_error(
                    *REAL.ip(),
                    *LOCAL.ip(),
                    Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::Port),
                    &segment[14..],
                ),
                _ => icmp_error(
                    *REAL.ip(),
                    *LOCAL.ip(),
                    Icmpv4Type::TimeExceeded(TimeExceededCode::TtlExceededInTransit),
                    &segment[14..42.min(segment.len())],
                ),
            };
            for (at, value) in changes {
                if let Some(byte) = bytes.get_mut(at) {
                    *byte = value;
                }
            }
            bytes.truncate(cut);
            for (_, f) in rewrites() {
                let (result, after) = run(&f, &bytes);
                prop_assert_eq!(after.len(), bytes.len());
                if result.is_err() {
                    prop_assert_eq!(&after, &bytes);
                }
            }
        }
    }
}
