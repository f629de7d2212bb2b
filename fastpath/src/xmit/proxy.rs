//! The PROXY protocol (HAProxy, "The PROXY protocol", versions 1 and 2) for FULLNAT
//! connections, as DPVS offers it (`ip_vs_proxy_proto.c`): a header carrying the client's and
//! the virtual service's addresses is injected at the start of the client's byte stream
//! towards the real server, so that stock servers (nginx `listen ... proxy_protocol`,
//! HAProxy `accept-proxy`) see the client without a kernel module.
//!
//! ## The header ([`Header`])
//!
//! Source = the client `CIP:cport`, destination = the virtual service `VIP:vport` (DPVS
//! fills `caddr`/`vaddr`, `cport`/`vport`):
//!
//! - version 1, text: `PROXY TCP4 <CIP> <VIP> <cport> <vport>\r\n`, addresses in dotted
//!   decimal and ports in decimal without leading zeros, single spaces; 32 to 56 bytes;
//! - version 2, binary, 28 bytes: the 12-byte signature `0D 0A 0D 0A 00 0D 0A 51 55 49 54
//!   0A`, `0x21` (version 2, command PROXY), `0x11` (AF_INET, STREAM), the address block's
//!   length 12 (16 bits), then source address, destination address, source port,
//!   destination port, all in network order; no TLVs.
//!
//! The header is a pure function of the two addresses, so a retransmission gets the same
//! bytes.
//!
//! ## Where ([`due`]) and how ([`insert`])
//!
//! Into the client segment that starts the stream: sequence number = the client's ISN + 1
//! (DPVS `conn->fnat_seq.isn - conn->fnat_seq.delta + 1 == ntohl(th->seq)`), carrying data,
//! without SYN or RST. Unlike DPVS, the acknowledgment number is not required to be the real
//! server's ISN + 1: the header's place in the stream is fixed by the sequence number alone,
//! and a retransmission of that segment must get the header again even after the server has
//! sent data. A segment without data is never given the header (DPVS does the same: the
//! header would be sent twice, once there and once with the data). Data in the SYN (TCP
//! Fast Open) gets no header.
//!
//! [`insert`] opens a gap at the start of the TCP payload (headroom or tailroom, whichever
//! moves fewer bytes; DPVS uses the headroom only) and writes the header there; the IPv4
//! total length grows by its length; the TCP sequence number is not changed. It returns the
//! number of bytes inserted, which the caller records in the connection
//! ([`TcpSeq::set_inserted`](crate::conn::TcpSeq::set_inserted)): from then on every other client segment is shifted by it as
//! well as by the ISN delta, and the real server's acknowledgment numbers and SACK edges are
//! shifted back by it ([`TcpSeq::in_delta`](crate::conn::TcpSeq::in_delta), [`TcpSeq::out_delta`](crate::conn::TcpSeq::out_delta); those that fall inside
//! the header, which acknowledge none of the client's data, become the client's ISN + 1:
//! [`TcpSeq::header`](crate::conn::TcpSeq::header)). Retransmissions of the
//! first segment (same sequence number, data) get the same header again and only the ISN
//! delta, so the real server receives the header exactly where the first transmission put it
//! (DPVS adds the length to its delta right away, so its condition no longer matches a
//! retransmission, which then arrives after a hole the header never fills).
//!
//! Checksums are updated incrementally: IPv4 header for the total length; TCP for the
//! header's bytes, the pseudo-header's length and, when the header's length is odd, the
//! payload, whose bytes change halves of their 16-bit words (its sum byte-swapped: one pass
//! over the payload, once per connection). A wrong checksum stays wrong.
//!
//! rvs never parses the client's data: a client sending its own PROXY header gets it
//! delivered after rvs's, as application data (DPVS's "insecure" modes, which pass a client's
//! header on, are not offered).
//!
//! ## Too big
//!
//! The segment with the header must fit the egress MTU (rvs does not fragment, and does not
//! send the header in a segment of its own as DPVS can): otherwise, or without buffer room,
//! [`DropReason::ProxyNoRoom`] and the client will retransmit. A service with the PROXY
//! protocol should announce `MSS − header length` in the real server's SYN+ACK
//! ([`OutRewrite::mss_reduction`](super::fullnat::OutRewrite::mss_reduction), with
//! [`Header::length`]) so that full-sized first segments fit.

use std::net::SocketAddrV4;

use super::splice;
use crate::conn::TcpSeq;
use crate::frame::Frame;
use crate::verdict::DropReason;
use crate::wire::checksum;
use crate::wire::ipv4::Protocol;
use crate::wire::tcp::{self, Flags};

/// The PROXY protocol version of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// Version 1, text.
    V1,
    /// Version 2, binary.
    V2,
}

/// The longest version 1 header for TCP over IPv4:
/// `PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n`.
pub const V1_MAX_LEN: usize = 56;
/// The length of a version 2 header for TCP over IPv4: 16 + 12.
pub const V2_LEN: usize = 28;

/// The version 2 signature.
const V2_SIGNATURE: [u8; 12] = [
    0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
];
/// Version 2, command PROXY.
const V2_VERSION_COMMAND: u8 = 0x21;
/// AF_INET, STREAM.
const V2_TCP4: u8 = 0x11;
/// The length of the IPv4 address block: two addresses, two ports.
const V2_ADDRESS_LEN: u16 = 12;

/// A PROXY protocol header, built without allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    buf: [u8; V1_MAX_LEN],
    len: usize,
}

impl Header {
    /// The header of `version` for a connection from `client` to `virt`; see the module
    /// documentation.
    pub fn new(version: Version, client: SocketAddrV4, virt: SocketAddrV4) -> Header {
        let mut header = Header {
            buf: [0; V1_MAX_LEN],
            len: 0,
        };
        match version {
            Version::V1 => {
                header.push(b"PROXY TCP4 ");
                header.push_addr(client);
                header.push(b" ");
                header.push_addr(virt);
                header.push(b" ");
                header.push_decimal(client.port());
                header.push(b" ");
                header.push_decimal(virt.port());
                header.push(b"\r\n");
            }
            Version::V2 => {
                header.push(&V2_SIGNATURE);
                header.push(&[V2_VERSION_COMMAND, V2_TCP4]);
                header.push(&V2_ADDRESS_LEN.to_be_bytes());
                header.push(&client.ip().octets());
                header.push(&virt.ip().octets());
                header.push(&client.port().to_be_bytes());
                header.push(&virt.port().to_be_bytes());
            }
        }
        header
    }

    /// Return the header's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    /// Return the header's length in bytes (at most [`V1_MAX_LEN`]).
    pub fn length(&self) -> u16 {
        u16::try_from(self.len).unwrap_or(u16::MAX)
    }

    /// Append `bytes` (they always fit: the longest header is [`V1_MAX_LEN`]).
    fn push(&mut self, bytes: &[u8]) {
        let Some(end) = self.len.checked_add(bytes.len()) else {
            return;
        };
        if let Some(slot) = self.buf.get_mut(self.len..end) {
            slot.copy_from_slice(bytes);
            self.len = end;
        }
    }

    /// Append `addr`'s address in dotted decimal.
    fn push_addr(&mut self, addr: SocketAddrV4) {
        for (i, octet) in addr.ip().octets().into_iter().enumerate() {
            if i > 0 {
                self.push(b".");
            }
            self.push_decimal(u16::from(octet));
        }
    }

    /// Append `value` in decimal, without leading zeros.
    fn push_decimal(&mut self, value: u16) {
        let mut digits = [0u8; 5];
        let mut start = digits.len();
        let mut rest = value;
        loop {
            start = start.saturating_sub(1);
            if let Some(digit) = digits.get_mut(start) {
                // A remainder below 10 always fits a u8.
                *digit = b'0'.saturating_add(u8::try_from(rest % 10).unwrap_or(0));
            }
            rest /= 10;
            if rest == 0 || start == 0 {
                break;
            }
        }
        self.push(digits.get(start..).unwrap_or(&[]));
    }
}

/// Query whether the client segment with `flags`, sequence number `seq_number` and
/// `payload_len` bytes of data, on a connection in state `seq`, starts the stream and gets
/// the header (first transmission or retransmission); see the module documentation.
pub fn due(seq: &TcpSeq, flags: Flags, seq_number: u32, payload_len: usize) -> bool {
    !flags.contains(Flags::SYN)
        && !flags.contains(Flags::RST)
        && payload_len > 0
        && seq_number == seq.client_isn().wrapping_add(1)
}

/// Insert `header` at the start of the TCP payload of the segment in `frame` (the whole
/// Ethernet frame), within the egress IP MTU `mtu`; return the number of bytes inserted.
/// See the module documentation.
///
/// # Errors
/// The checks of [`xmit`](super) ([`DropReason::Truncated`], [`DropReason::VlanTagged`],
/// [`DropReason::UnsupportedEthertype`], [`DropReason::BadIpv4Header`],
/// [`DropReason::Fragment`]), [`DropReason::UnsupportedProtocol`] if it is not TCP,
/// [`DropReason::BadL4Header`], and [`DropReason::ProxyNoRoom`] when the segment would exceed
/// `mtu` or the buffer has no room. The frame is unchanged on error.
pub fn insert<F: Frame + ?Sized>(
    frame: &mut F,
    header: &Header,
    mtu: u16,
) -> Result<u16, DropReason> {
    let ip = super::ipv4_packet(frame.data())?;
    if ip.protocol() != Protocol::Tcp {
        return Err(DropReason::UnsupportedProtocol);
    }
    let segment = tcp::Packet::new_checked(ip.payload())?;
    let (tcp_start, end) = splice::tcp_offsets(&ip).ok_or(DropReason::Truncated)?;
    let bytes = header.as_bytes();
    let len = header.length();
    let new_total = ip
        .total_len()
        .checked_add(len)
        .filter(|&total| total <= mtu)
        .ok_or(DropReason::ProxyNoRoom)?;
    let tcp_len = ip
        .total_len()
        .checked_sub(u16::try_from(ip.header_len()).map_err(|_| DropReason::BadIpv4Header)?)
        .ok_or(DropReason::BadIpv4Header)?;
    let ip_checksum = checksum::update_u16(ip.checksum(), ip.total_len(), new_total);
    // The header starts at the payload's (even) offset; an odd header shifts the payload's
    // bytes into the other halves of their words.
    let mut sum = checksum::update_bytes(segment.checksum(), segment.header_len(), &[], bytes);
    if len % 2 == 1 {
        let payload = checksum::data(segment.payload());
        sum = checksum::update_u16(sum, payload, payload.swap_bytes());
    }
    sum = checksum::update_u16(sum, tcp_len, tcp_len.wrapping_add(len));
    let at = tcp_start
        .checked_add(segment.header_len())
        .ok_or(DropReason::Truncated)?;

    if !splice::splice(frame, at, end, 0, bytes.len()) {
        return Err(DropReason::ProxyNoRoom);
    }
    let mut ip = super::ipv4_mut(frame.data_mut());
    ip.set_total_len(new_total);
    ip.set_checksum(ip_checksum);
    let mut segment = tcp::Packet::new_unchecked(ip.payload_mut());
    if let Some(slot) = segment.payload_mut().get_mut(..bytes.len()) {
        slot.copy_from_slice(bytes);
    }
    segment.set_checksum(sum);
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::VecFrame;
    use crate::xmit::fullnat::{rewrite_in, rewrite_out, InRewrite, OutRewrite};
    use crate::xmit::splice::test_frame::RoomFrame;
    use crate::xmit::testing::{frame, tcp_header, Ip, CLIENT, PORT_MAC, REAL, ROUTER_MAC, VIRT};
    use etherparse::{TcpHeader, TcpOptionElement};
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    const LOCAL: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 1, 0, 100), 5003);
    const MTU: u16 = 1500;

    /// The frame of a segment `src` → `dst`.
    fn segment(src: SocketAddrV4, dst: SocketAddrV4, tcp: &TcpHeader, payload: &[u8]) -> Vec<u8> {
        let ip = Ip::new(*src.ip(), *dst.ip());
        frame(
            ROUTER_MAC,
            PORT_MAC,
            &ip.tcp(src.port(), dst.port(), tcp, payload),
            &[],
        )
    }

    fn run(bytes: &[u8], header: &Header, mtu: u16) -> (Result<u16, DropReason>, Vec<u8>) {
        let mut frame = VecFrame::new(bytes);
        let result = insert(&mut frame, header, mtu);
        (result, frame.into_bytes())
    }

    #[test]
    fn v1_bytes() {
        let header = Header::new(Version::V1, CLIENT, VIRT);
        assert_eq!(
            header.as_bytes(),
            b"PROXY TCP4 198.51.100.7 203.0.113.10 40312 80\r\n"
        );
        assert_eq!(header.length(), 47);
        let max = SocketAddrV4::new(Ipv4Addr::new(255, 255, 255, 255), 65535);
        let header = Header::new(Version::V1, max, max);
        assert_eq!(
            header.as_bytes(),
            b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n"
        );
        assert_eq!(usize::from(header.length()), V1_MAX_LEN);
        let zero = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0);
        let header = Header::new(
            Version::V1,
            zero,
            SocketAddrV4::new(Ipv4Addr::new(10, 0, 20, 9), 8),
        );
        assert_eq!(header.as_bytes(), b"PROXY TCP4 0.0.0.0 10.0.20.9 0 8\r\n");
    }

    #[test]
    fn v2_bytes() {
        let header = Header::new(Version::V2, CLIENT, VIRT);
        assert_eq!(
            header.as_bytes(),
            [
                0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54,
                0x0a, // signature
                0x21, // version 2, PROXY
                0x11, // TCP over IPv4
                0x00, 0x0c, // 12 bytes of addresses
                0xc6, 0x33, 0x64, 0x07, // 198.51.100.7
                0xcb, 0x00, 0x71, 0x0a, // 203.0.113.10
                0x9d, 0x78, // 40312
                0x00, 0x50, // 80
            ]
        );
        assert_eq!(usize::from(header.length()), V2_LEN);
    }

    #[test]
    fn insert_into_first_segment() {
        let mut data = tcp_header(false, true, false, false, true);
        data.set_options(&[
            TcpOptionElement::Noop,
            TcpOptionElement::Noop,
            TcpOptionElement::Timestamp(1, 2),
        ])
        .unwrap();
        for version in [Version::V1, Version::V2] {
            let header = Header::new(version, CLIENT, VIRT);
            for payload in [&b"GET / HTTP/1.1\r\n\r\n"[..], b"odd", b"x"] {
                let bytes = segment(LOCAL, REAL, &data, payload);
                let expected = segment(LOCAL, REAL, &data, &[header.as_bytes(), payload].concat());
                assert_eq!(
                    run(&bytes, &header, MTU),
                    (Ok(header.length()), expected.clone())
                );
                // Headroom only, tailroom only, or padding and tailroom: the same bytes.
                let n = header.as_bytes().len();
                for (headroom, tailroom, padding) in [(n, 0, 0), (0, n, 0), (0, n - 4, 6)] {
                    let mut padded = bytes.clone();
                    padded.extend_from_slice(&vec![0xee; padding]);
                    let mut frame = RoomFrame::new(&padded, headroom, tailroom);
                    assert_eq!(insert(&mut frame, &header, MTU), Ok(header.length()));
                    assert_eq!(frame.data(), &expected[..]);
                }
                // No room: refused, unchanged.
                let mut frame = RoomFrame::new(&bytes, n - 1, 0);
                let before = frame.clone();
                assert_eq!(
                    insert(&mut frame, &header, MTU),
                    Err(DropReason::ProxyNoRoom)
                );
                assert_eq!(frame, before);
            }
        }
    }

    #[test]
    fn after_ip_options() {
        let mut ip = Ip::new(*LOCAL.ip(), *REAL.ip());
        ip.options = vec![0x94, 0x04, 0x00, 0x00];
        let header = Header::new(Version::V1, CLIENT, VIRT);
        let tcp = tcp_header(false, true, false, false, true);
        let build = |payload: &[u8]| {
            frame(
                ROUTER_MAC,
                PORT_MAC,
                &ip.tcp(LOCAL.port(), REAL.port(), &tcp, payload),
                &[],
            )
        };
        let expected = build(&[header.as_bytes(), b"data"].concat());
        assert_eq!(
            run(&build(b"data"), &header, MTU),
            (Ok(header.length()), expected)
        );
    }

    #[test]
    fn mtu_limit_and_refusals() {
        let header = Header::new(Version::V2, CLIENT, VIRT);
        let bytes = segment(
            LOCAL,
            REAL,
            &tcp_header(false, true, false, false, true),
            &[7; 100],
        );
        let total = u16::try_from(bytes.len() - 14).unwrap();
        assert!(run(&bytes, &header, total + 28).0.is_ok());
        assert_eq!(
            run(&bytes, &header, total + 27),
            (Err(DropReason::ProxyNoRoom), bytes.clone())
        );
        let ip = Ip::new(*LOCAL.ip(), *REAL.ip());
        let udp = frame(ROUTER_MAC, PORT_MAC, &ip.udp(1, 2, b"x", true), &[]);
        assert_eq!(
            run(&udp, &header, MTU),
            (Err(DropReason::UnsupportedProtocol), udp.clone())
        );
        for len in 0..bytes.len() {
            let (result, after) = run(&bytes[..len], &header, MTU);
            assert!(result.is_err(), "{len}");
            assert_eq!(after, bytes[..len], "{len}");
        }
    }

    #[test]
    fn due_only_at_the_start_of_the_stream() {
        let seq = TcpSeq::new(1000, 5000);
        let (ack, psh) = (Flags::ACK, Flags::PSH);
        assert!(due(&seq, ack | psh, 1001, 10));
        assert!(due(&seq, ack | Flags::FIN, 1001, 10));
        assert!(!due(&seq, ack, 1001, 0), "no data");
        assert!(!due(&seq, ack | psh, 1011, 10), "later data");
        assert!(!due(&seq, Flags::SYN, 1000, 10), "data in the SYN");
        assert!(!due(&seq, ack | Flags::RST, 1001, 10));
        let wrapped = TcpSeq::new(u32::MAX, 5000);
        assert!(due(&wrapped, ack, 0, 1));
    }

    /// A whole connection through FULLNAT with a PROXY header: the sequence numbers the
    /// real server sees and the acknowledgments the client sees, first transmission and
    /// retransmission of the first segment, later data, SACK.
    #[test]
    fn sequence_numbers_shifted() {
        const CLIENT_ISN: u32 = 0xffff_fff0; // wraps during the connection
        const ISN: u32 = 0x4000_0000;
        const SERVER_ISN: u32 = 0x9000_0000;
        let header = Header::new(Version::V1, CLIENT, VIRT);
        let len = u32::from(header.length());
        let mut seq = TcpSeq::new(CLIENT_ISN, ISN);
        seq.server_syn_ack(SERVER_ISN);

        // What the pipeline does with a client segment; returns what the real server gets.
        let client_sends = |seq: &mut TcpSeq, number: u32, payload: &[u8]| {
            let mut tcp = tcp_header(false, true, false, false, !payload.is_empty());
            tcp.sequence_number = number;
            tcp.acknowledgment_number = SERVER_ISN + 1;
            let mut frame = VecFrame::new(segment(CLIENT, VIRT, &tcp, payload));
            let flags = if payload.is_empty() {
                Flags::ACK
            } else {
                Flags::ACK | Flags::PSH
            };
            let delta = seq.in_delta(number, payload.len());
            let rewrite = InRewrite {
                local: LOCAL,
                real: REAL,
                seq_delta: delta,
            };
            rewrite_in(frame.data_mut(), &rewrite).unwrap();
            if due(seq, flags, number, payload.len()) {
                seq.set_inserted(insert(&mut frame, &header, MTU).unwrap());
            }
            frame.into_bytes()
        };
        let expect = |number: u32, payload: &[u8]| {
            let mut tcp = tcp_header(false, true, false, false, !payload.is_empty());
            tcp.sequence_number = number;
            tcp.acknowledgment_number = SERVER_ISN + 1;
            segment(LOCAL, REAL, &tcp, payload)
        };
        let first = CLIENT_ISN.wrapping_add(1);
        // The handshake's ACK: no data, no header.
        assert_eq!(client_sends(&mut seq, first, b""), expect(ISN + 1, b""));
        // The first data segment: the header in front, at the server's ISN + 1.
        let with_header = [header.as_bytes(), b"GET /"].concat();
        assert_eq!(
            client_sends(&mut seq, first, b"GET /"),
            expect(ISN + 1, &with_header)
        );
        // Its retransmission: the same bytes again.
        assert_eq!(
            client_sends(&mut seq, first, b"GET /"),
            expect(ISN + 1, &with_header)
        );
        // The next segment (the client's numbers wrap): after the header and the 5 bytes.
        assert_eq!(
            client_sends(&mut seq, first.wrapping_add(5), b" HTTP/1.1"),
            expect(ISN + 1 + len + 5, b" HTTP/1.1")
        );
        // A retransmission that coalesces both: header again, and everything.
        let both = [header.as_bytes(), b"GET / HTTP/1.1"].concat();
        assert_eq!(
            client_sends(&mut seq, first, b"GET / HTTP/1.1"),
            expect(ISN + 1, &both)
        );

        // The server acknowledges header + 14 bytes and SACKs a later range.
        let mut reply = tcp_header(false, true, false, false, false);
        reply.sequence_number = SERVER_ISN + 1;
        reply.acknowledgment_number = ISN + 1 + len + 14;
        reply
            .set_options(&[
                TcpOptionElement::Noop,
                TcpOptionElement::Noop,
                TcpOptionElement::SelectiveAcknowledgement(
                    (ISN + 1 + len + 20, ISN + 1 + len + 30),
                    [None; 3],
                ),
            ])
            .unwrap();
        let mut bytes = segment(REAL, LOCAL, &reply, b"");
        let rewrite = OutRewrite {
            virt: VIRT,
            client: CLIENT,
            ack_delta: seq.out_delta(),
            header: seq.header(),
            mss_reduction: 0,
        };
        rewrite_out(&mut bytes, &rewrite).unwrap();
        let mut seen = reply.clone();
        seen.acknowledgment_number = first.wrapping_add(14);
        seen.set_options(&[
            TcpOptionElement::Noop,
            TcpOptionElement::Noop,
            TcpOptionElement::SelectiveAcknowledgement(
                (first.wrapping_add(20), first.wrapping_add(30)),
                [None; 3],
            ),
        ])
        .unwrap();
        assert_eq!(bytes, segment(VIRT, CLIENT, &seen, b""));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// Random segments and addresses: the incremental checksum equals etherparse's full
        /// computation over the segment with the header in front of the data (odd and even
        /// header lengths, odd and even payloads).
        #[test]
        fn incremental_equals_full(
            v1 in any::<bool>(),
            client in (any::<u32>(), any::<u16>()),
            virt in (any::<u32>(), any::<u16>()),
            seq_number in any::<u32>(),
            options in proptest::collection::vec(any::<u8>(), 0..10),
            payload in proptest::collection::vec(any::<u8>(), 1..300),
        ) {
            let client = SocketAddrV4::new(Ipv4Addr::from(client.0), client.1);
            let virt = SocketAddrV4::new(Ipv4Addr::from(virt.0), virt.1);
            let header = Header::new(if v1 { Version::V1 } else { Version::V2 }, client, virt);
            let mut tcp = tcp_header(false, true, false, false, true);
            tcp.sequence_number = seq_number;
            // Raw option bytes (NOP-padded to 4): any content, the view does not care.
            let mut area = options;
            area.resize(area.len().div_ceil(4) * 4, 1);
            tcp.set_options_raw(&area).unwrap();
            let bytes = segment(LOCAL, REAL, &tcp, &payload);
            let expected = segment(LOCAL, REAL, &tcp, &[header.as_bytes(), &payload].concat());
            prop_assert_eq!(run(&bytes, &header, MTU), (Ok(header.length()), expected));
        }

        /// Random and mutated bytes never panic; refused frames are unchanged.
        #[test]
        fn random_bytes(
            changes in proptest::collection::vec((0usize..80, any::<u8>()), 0..4),
            cut in 0usize..90,
            random in proptest::collection::vec(any::<u8>(), 0..100),
        ) {
            let header = Header::new(Version::V1, CLIENT, VIRT);
            let mut bytes = segment(LOCAL, REAL, &tcp_header(false, true, false, false, true), b"payload");
            for (at, value) in changes {
                if let Some(byte) = bytes.get_mut(at) {
                    *byte = value;
                }
            }
            bytes.truncate(cut);
            for bytes in [bytes, random] {
                let (result, after) = run(&bytes, &header, MTU);
                if result.is_err() {
                    prop_assert_eq!(after, bytes);
                }
            }
        }
    }
}
