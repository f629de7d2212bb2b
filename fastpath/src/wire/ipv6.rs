//! IPv6 headers (RFC 8200): the fixed header, the extension-header walk, and the address
//! classes a balancer's checks need.
//!
//! [`Packet::check_len`] checks, in this order:
//!
//! - the buffer holds the 40-byte fixed header (else [`Error::Truncated`]);
//! - version is 6 (else [`Error::BadVersion`]);
//! - 40 + payload length ≤ the buffer (else `Truncated`). A buffer *longer* than that is
//!   accepted: it is Ethernet padding (a 40-byte packet with no payload is padded to the
//!   60-byte minimum frame), and [`Packet::payload`] ends at the payload length, so callers
//!   must take the packet's end from `payload_len()`, never from the frame length.
//!
//! There is no header checksum. Jumbograms (RFC 2675: payload length 0 and a hop-by-hop jumbo
//! option) are not supported: a payload length of 0 is an empty payload, whose hop-by-hop
//! header, if announced, is then [`Error::Truncated`].
//!
//! [`Packet::upper_layer`] (or [`walk`] on the bytes after a fixed header, e.g. inside an
//! ICMPv6 error) walks the extension headers to the upper-layer header, see [`walk`] for the
//! rules and the bound; `upper_layer` also checks the hop-by-hop options
//! ([`check_hop_by_hop`]), which every node processes. Deliberately not checked by the view:
//! hop limit (policy for the stage that routes), traffic class and flow label, the addresses
//! (see [`is_martian_source`]), the content of destination options and routing headers (the
//! final destination's business: Linux processes them after IPVS has taken the packet).

use std::net::Ipv6Addr;

use super::ether::EthernetAddress;
use super::{field::Field, read_bytes, read_u16, read_u32, read_u8, write_bytes, write_u16};
use super::{write_u32, write_u8};

/// The next header field (IANA "Assigned Internet Protocol Numbers"): an extension header or
/// an upper-layer protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NextHeader {
    /// Hop-by-hop options, 0 (only directly after the fixed header).
    HopByHop,
    /// IPv4 in IPv6 (RFC 2473), 4.
    Ipv4,
    /// TCP, 6.
    Tcp,
    /// UDP, 17.
    Udp,
    /// IPv6 in IPv6 (RFC 2473), 41: the LVS TUN forwarding method over IPv6.
    Ipv6,
    /// Routing header, 43.
    Routing,
    /// Fragment header, 44.
    Fragment,
    /// Encapsulating Security Payload (RFC 4303), 50.
    Esp,
    /// Authentication Header (RFC 4302), 51.
    Ah,
    /// ICMPv6 (RFC 4443), 58.
    Icmpv6,
    /// No next header, 59: nothing follows.
    NoNextHeader,
    /// Destination options, 60.
    DstOptions,
    /// Any other value.
    Unknown(u8),
}

impl From<u8> for NextHeader {
    fn from(value: u8) -> Self {
        match value {
            0 => NextHeader::HopByHop,
            4 => NextHeader::Ipv4,
            6 => NextHeader::Tcp,
            17 => NextHeader::Udp,
            41 => NextHeader::Ipv6,
            43 => NextHeader::Routing,
            44 => NextHeader::Fragment,
            50 => NextHeader::Esp,
            51 => NextHeader::Ah,
            58 => NextHeader::Icmpv6,
            59 => NextHeader::NoNextHeader,
            60 => NextHeader::DstOptions,
            other => NextHeader::Unknown(other),
        }
    }
}

impl From<NextHeader> for u8 {
    fn from(value: NextHeader) -> Self {
        match value {
            NextHeader::HopByHop => 0,
            NextHeader::Ipv4 => 4,
            NextHeader::Tcp => 6,
            NextHeader::Udp => 17,
            NextHeader::Ipv6 => 41,
            NextHeader::Routing => 43,
            NextHeader::Fragment => 44,
            NextHeader::Esp => 50,
            NextHeader::Ah => 51,
            NextHeader::Icmpv6 => 58,
            NextHeader::NoNextHeader => 59,
            NextHeader::DstOptions => 60,
            NextHeader::Unknown(other) => other,
        }
    }
}

impl NextHeader {
    /// The balanced transport protocol this is, if it is one (TCP or UDP).
    pub const fn l4(self) -> Option<conf::Proto> {
        match self {
            NextHeader::Tcp => Some(conf::Proto::Tcp),
            NextHeader::Udp => Some(conf::Proto::Udp),
            _ => None,
        }
    }
}

/// Why an IPv6 packet, or its header chain, cannot be read. The `as_str` names are stable
/// (for counters once the pipeline carries IPv6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// The buffer is shorter than the fixed header, the payload length, or an extension header.
    Truncated,
    /// The version field is not 6.
    BadVersion,
    /// A hop-by-hop options header anywhere but directly after the fixed header (RFC 8200
    /// §4.3; Linux answers a parameter problem and drops it).
    HopByHopNotFirst,
    /// More than [`MAX_EXT_HEADERS`] extension headers before the upper-layer header.
    TooManyExtHeaders,
    /// A malformed hop-by-hop options header (see [`check_hop_by_hop`]): the packet is
    /// dropped, as Linux's `ip6_parse_tlv` drops it.
    BadHopByHopOption,
    /// A hop-by-hop option rvs does not know whose type says to discard the packet (RFC 8200
    /// §4.2, the two high bits 01, 10 or 11). `param_problem`: a parameter problem (code 2,
    /// unrecognized option) pointing at `pointer`, the option's offset from the start of the
    /// packet, should be sent back (10, or 11 to a unicast destination).
    UnknownHopByHopOption {
        /// Offset of the option from the start of the IPv6 packet.
        pointer: usize,
        /// Whether the sender should get a parameter problem.
        param_problem: bool,
    },
    /// An Authentication Header: what it authenticates cannot be rewritten, so it is not L4.
    Ah,
    /// An Encapsulating Security Payload: the upper layer is encrypted.
    Esp,
    /// Next header 59: the packet carries no upper-layer header.
    NoNextHeader,
    /// A next header value that is neither a walked extension header nor a known upper-layer
    /// protocol (including the extension headers of RFC 7045 rvs does not walk: mobility,
    /// HIP, shim6, experimental).
    UnknownNextHeader(u8),
}

impl Error {
    /// The stable name of the reason.
    pub const fn as_str(self) -> &'static str {
        match self {
            Error::Truncated => "truncated",
            Error::BadVersion => "bad_version",
            Error::HopByHopNotFirst => "hop_by_hop_not_first",
            Error::TooManyExtHeaders => "too_many_ext_headers",
            Error::BadHopByHopOption => "bad_hop_by_hop_option",
            Error::UnknownHopByHopOption { .. } => "unknown_hop_by_hop_option",
            Error::Ah => "ah",
            Error::Esp => "esp",
            Error::NoNextHeader => "no_next_header",
            Error::UnknownNextHeader(_) => "unknown_next_header",
        }
    }
}

mod field {
    use super::Field;
    pub const VER_TC_FL: Field = 0..4;
    pub const PAYLOAD_LEN: Field = 4..6;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Field = 8..24;
    pub const DST_ADDR: Field = 24..40;

    // Extension headers: every one starts with its next header; hop-by-hop, routing and
    // destination options then give their length in 8-octet units, not counting the first 8.
    pub const EXT_NEXT_HEADER: usize = 0;
    pub const EXT_LEN: usize = 1;
    pub const ROUTING_TYPE: usize = 2;
    pub const ROUTING_SEGMENTS_LEFT: usize = 3;
    pub const FRAG_OFF_M: Field = 2..4;
    pub const FRAG_IDENT: Field = 4..8;
}

/// Length of the fixed header.
pub const HEADER_LEN: usize = field::DST_ADDR.end;

/// Length of a fragment header.
pub const FRAGMENT_HEADER_LEN: usize = field::FRAG_IDENT.end;

/// Most extension headers [`walk`] skips before giving up with [`Error::TooManyExtHeaders`].
///
/// Linux's `ipv6_skip_exthdr` has no count bound (only the packet's end); rvs bounds the walk
/// so that its cost per packet is fixed. RFC 8200 §4.1's recommended chain has at most six
/// headers rvs walks (hop-by-hop, destination options, routing, fragment, destination
/// options, and one more only in a tunnel's inner packet), so 8 refuses no sane packet. There
/// is no byte bound: each header's length is in its own field and the walk reads only two
/// bytes of each.
pub const MAX_EXT_HEADERS: usize = 8;

/// The fragment offset bits of a fragment header's offset word (in 8-octet units, shifted).
const FRAG_OFFSET_MASK: u16 = 0xfff8;
/// The M (more fragments) flag of a fragment header's offset word.
const FRAG_MORE: u16 = 0x0001;

/// A fragment header found by [`walk`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragmentHeader {
    /// Where the fragment header starts, counted as [`UpperLayer::offset`] is.
    pub header_offset: usize,
    /// The fragment offset, in 8-octet units.
    pub frag_offset: u16,
    /// The M flag: more fragments follow.
    pub more_frags: bool,
    /// The identification, shared by the fragments of one packet.
    pub ident: u32,
}

impl FragmentHeader {
    /// Query whether this is the first fragment (offset 0), the one that holds the
    /// upper-layer header.
    pub const fn is_first(&self) -> bool {
        self.frag_offset == 0
    }

    /// Query whether this is an atomic fragment (RFC 6946: offset 0 and no more fragments),
    /// a whole packet that only carries a fragment header.
    pub const fn is_atomic(&self) -> bool {
        self.frag_offset == 0 && !self.more_frags
    }
}

/// A routing header found by [`walk`] (the last one, if several).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RoutingHeader {
    /// The routing type (0 is deprecated by RFC 5095, 2 is Mobile IPv6, 4 is segment routing).
    pub routing_type: u8,
    /// Segments left: non-zero means the destination address is not the final one.
    pub segments_left: u8,
}

/// The end of an extension-header walk: the upper-layer protocol and where its header starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UpperLayer {
    /// The upper-layer protocol (never an extension header, AH, ESP or no next header).
    pub protocol: NextHeader,
    /// Offset of the upper-layer header: from the start of the IPv6 packet for
    /// [`Packet::upper_layer`], from the start of the walked bytes for [`walk`].
    pub offset: usize,
    /// The fragment header, if the packet is a fragment. Unless it is the first fragment
    /// ([`FragmentHeader::is_first`]), the bytes at `offset` are the middle of the original
    /// packet, not an upper-layer header: the walk stops at the fragment header, as Linux's
    /// `ipv6_skip_exthdr` does.
    pub fragment: Option<FragmentHeader>,
    /// The last routing header, if any.
    pub routing: Option<RoutingHeader>,
}

/// Walk the extension headers in `bytes` (what follows a fixed header whose next header is
/// `next_header`, up to the payload length) to the upper-layer header.
///
/// Walked: hop-by-hop options (only as the first, else [`Error::HopByHopNotFirst`]), routing,
/// destination options, fragment. The walk ends at TCP, UDP, ICMPv6, IPv4 or IPv6
/// (encapsulated), or after a fragment header with a non-zero offset. It refuses AH
/// ([`Error::Ah`]), ESP ([`Error::Esp`]), next header 59 ([`Error::NoNextHeader`]), any
/// other value ([`Error::UnknownNextHeader`]), a header that runs past `bytes`
/// ([`Error::Truncated`]), and a chain of more than [`MAX_EXT_HEADERS`] extension headers
/// ([`Error::TooManyExtHeaders`]).
///
/// The upper-layer header itself is not checked to fit: `offset` may equal `bytes.len()` (its
/// view's `check_len` says what is missing).
///
/// # Errors
/// As listed above.
pub fn walk(next_header: NextHeader, bytes: &[u8]) -> Result<UpperLayer, Error> {
    let mut upper = UpperLayer {
        protocol: next_header,
        offset: 0,
        fragment: None,
        routing: None,
    };
    let mut walked = 0;
    loop {
        let header = bytes.get(upper.offset..).unwrap_or(&[]);
        let len = match upper.protocol {
            NextHeader::Tcp
            | NextHeader::Udp
            | NextHeader::Icmpv6
            | NextHeader::Ipv4
            | NextHeader::Ipv6 => return Ok(upper),
            NextHeader::Ah => return Err(Error::Ah),
            NextHeader::Esp => return Err(Error::Esp),
            NextHeader::NoNextHeader => return Err(Error::NoNextHeader),
            NextHeader::Unknown(value) => return Err(Error::UnknownNextHeader(value)),
            NextHeader::HopByHop if walked > 0 => return Err(Error::HopByHopNotFirst),
            NextHeader::Fragment => {
                if header.len() < FRAGMENT_HEADER_LEN {
                    return Err(Error::Truncated);
                }
                let off_m = read_u16(header, field::FRAG_OFF_M);
                let fragment = FragmentHeader {
                    header_offset: upper.offset,
                    frag_offset: (off_m & FRAG_OFFSET_MASK) >> 3,
                    more_frags: off_m & FRAG_MORE != 0,
                    ident: read_u32(header, field::FRAG_IDENT),
                };
                upper.fragment = Some(fragment);
                if !fragment.is_first() {
                    upper.protocol = NextHeader::from(read_u8(header, field::EXT_NEXT_HEADER));
                    upper.offset += FRAGMENT_HEADER_LEN;
                    return Ok(upper);
                }
                FRAGMENT_HEADER_LEN
            }
            NextHeader::HopByHop | NextHeader::Routing | NextHeader::DstOptions => {
                // The next header and length bytes, then the length they give.
                if header.len() < 2 {
                    return Err(Error::Truncated);
                }
                let len = (usize::from(read_u8(header, field::EXT_LEN)) + 1) * 8;
                if header.len() < len {
                    return Err(Error::Truncated);
                }
                if upper.protocol == NextHeader::Routing {
                    upper.routing = Some(RoutingHeader {
                        routing_type: read_u8(header, field::ROUTING_TYPE),
                        segments_left: read_u8(header, field::ROUTING_SEGMENTS_LEFT),
                    });
                }
                len
            }
        };
        walked += 1;
        if walked > MAX_EXT_HEADERS {
            return Err(Error::TooManyExtHeaders);
        }
        upper.protocol = NextHeader::from(read_u8(header, field::EXT_NEXT_HEADER));
        upper.offset += len;
    }
}

/// Hop-by-hop and destination option types (IANA "Destination Options and Hop-by-Hop
/// Options").
mod option {
    pub const PAD1: u8 = 0;
    pub const PADN: u8 = 1;
    pub const ROUTER_ALERT: u8 = 5;
    pub const JUMBO: u8 = 0xc2;
}

/// Most non-padding options a hop-by-hop header may carry: Linux's `max_hbh_opts_number`
/// sysctl default (`IP6_DEFAULT_MAX_HBH_OPTS_CNT`).
pub const MAX_HOP_BY_HOP_OPTIONS: usize = 8;

/// Check a hop-by-hop options header (`header`: the whole header, next header and length
/// bytes included), the only extension header every node on the path processes (RFC 8200
/// §4.3), as Linux's `ip6_parse_tlv` does before IPVS sees the packet; `dst_multicast` says
/// whether the packet's destination is multicast.
///
/// [`Error::BadHopByHopOption`]: an option that runs past the header (or a type byte
/// without its length), more than 7 consecutive bytes of padding (Pad1 and PadN, RFC 4942
/// §2.1.9.5), PadN with a non-zero byte, more than [`MAX_HOP_BY_HOP_OPTIONS`] other options, a
/// router alert whose data is not 2 bytes, a jumbo payload option (rvs carries no jumbograms;
/// Linux drops or answers a parameter problem, depending on the values).
/// [`Error::UnknownHopByHopOption`]: any other option whose type's two high bits are not 00
/// (RFC 8200 §4.2). Options Linux also knows (CALIPSO, IOAM) are unknown here: with their
/// high bits 00 they are skipped, their content not checked.
///
/// # Errors
/// As above.
pub fn check_hop_by_hop(header: &[u8], dst_multicast: bool) -> Result<(), Error> {
    let mut at = 2;
    let mut padding = 0;
    let mut count = 0;
    while let Some(&kind) = header.get(at) {
        if kind == option::PAD1 {
            padding += 1;
            if padding > 7 {
                return Err(Error::BadHopByHopOption);
            }
            at += 1;
            continue;
        }
        let len = match header.get(at + 1) {
            Some(&data_len) => usize::from(data_len) + 2,
            None => return Err(Error::BadHopByHopOption),
        };
        let opt = header.get(at..at + len).ok_or(Error::BadHopByHopOption)?;
        if kind == option::PADN {
            padding += len;
            if padding > 7 || opt.iter().skip(2).any(|&byte| byte != 0) {
                return Err(Error::BadHopByHopOption);
            }
        } else {
            count += 1;
            if count > MAX_HOP_BY_HOP_OPTIONS {
                return Err(Error::BadHopByHopOption);
            }
            match kind {
                option::ROUTER_ALERT if len == 4 => {}
                option::ROUTER_ALERT | option::JUMBO => return Err(Error::BadHopByHopOption),
                _ => match kind >> 6 {
                    0 => {}
                    action => {
                        return Err(Error::UnknownHopByHopOption {
                            pointer: HEADER_LEN + at,
                            param_problem: action == 2 || (action == 3 && !dst_multicast),
                        })
                    }
                },
            }
            padding = 0;
        }
        at += len;
    }
    Ok(())
}

/// A read/write view of an IPv6 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wrap a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wrap a received buffer, checking it with [`Packet::check_len`].
    ///
    /// # Errors
    /// As [`Packet::check_len`].
    pub fn new_checked(buffer: T) -> Result<Packet<T>, Error> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Check the fixed header, the version and the payload length against the buffer (see
    /// the module documentation).
    ///
    /// # Errors
    /// [`Error::Truncated`] or [`Error::BadVersion`].
    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        // An IPv4 packet under the IPv6 EtherType is malformed.
        if self.version() != 6 {
            return Err(Error::BadVersion);
        }
        if HEADER_LEN + usize::from(self.payload_len()) > len {
            return Err(Error::Truncated);
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
        read_u8(self.buffer.as_ref(), 0) >> 4
    }

    /// Return the traffic class field (DSCP and ECN, as IPv4's second byte).
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        // The field straddles the first two bytes: bits 4..12 of the first word.
        (read_u32(self.buffer.as_ref(), field::VER_TC_FL) >> 20) as u8
    }

    /// Return the 20-bit flow label field.
    #[inline]
    pub fn flow_label(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::VER_TC_FL) & 0x000f_ffff
    }

    /// Return the payload length field: the bytes after the fixed header, extension headers
    /// included.
    #[inline]
    pub fn payload_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::PAYLOAD_LEN)
    }

    /// Return the next header field (of the fixed header).
    #[inline]
    pub fn next_header(&self) -> NextHeader {
        NextHeader::from(read_u8(self.buffer.as_ref(), field::NEXT_HEADER))
    }

    /// Return the hop limit field.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        read_u8(self.buffer.as_ref(), field::HOP_LIMIT)
    }

    /// Return the source address field.
    #[inline]
    pub fn src_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(read_bytes::<16>(self.buffer.as_ref(), field::SRC_ADDR))
    }

    /// Return the destination address field.
    #[inline]
    pub fn dst_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(read_bytes::<16>(self.buffer.as_ref(), field::DST_ADDR))
    }

    /// Return the payload: from the end of the fixed header to the payload length, extension
    /// headers included and Ethernet padding excluded. Empty if the payload length does not fit
    /// the buffer (see `check_len`).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let range = HEADER_LEN..HEADER_LEN + usize::from(self.payload_len());
        self.buffer.as_ref().get(range).unwrap_or(&[])
    }

    /// Walk the extension headers to the upper-layer header ([`walk`] over the payload); the
    /// offset is from the start of the packet. A hop-by-hop options header is also checked as
    /// every node must ([`check_hop_by_hop`]).
    ///
    /// # Errors
    /// As [`walk`] and [`check_hop_by_hop`].
    pub fn upper_layer(&self) -> Result<UpperLayer, Error> {
        let mut upper = walk(self.next_header(), self.payload())?;
        if self.next_header() == NextHeader::HopByHop {
            // The walk checked that the whole header is there.
            let len = (usize::from(read_u8(self.payload(), field::EXT_LEN)) + 1) * 8;
            let header = self.payload().get(..len).unwrap_or(&[]);
            check_hop_by_hop(header, self.dst_addr().is_multicast())?;
        }
        upper.offset += HEADER_LEN;
        if let Some(fragment) = upper.fragment.as_mut() {
            fragment.header_offset += HEADER_LEN;
        }
        Ok(upper)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Set the version field.
    #[inline]
    pub fn set_version(&mut self, value: u8) {
        let byte = read_u8(self.buffer.as_ref(), 0);
        write_u8(self.buffer.as_mut(), 0, (byte & 0x0f) | (value << 4));
    }

    /// Set the traffic class field.
    #[inline]
    pub fn set_traffic_class(&mut self, value: u8) {
        let word = read_u32(self.buffer.as_ref(), field::VER_TC_FL);
        let word = (word & 0xf00f_ffff) | (u32::from(value) << 20);
        write_u32(self.buffer.as_mut(), field::VER_TC_FL, word);
    }

    /// Set the flow label field (the low 20 bits of `value`).
    #[inline]
    pub fn set_flow_label(&mut self, value: u32) {
        let word = read_u32(self.buffer.as_ref(), field::VER_TC_FL);
        let word = (word & 0xfff0_0000) | (value & 0x000f_ffff);
        write_u32(self.buffer.as_mut(), field::VER_TC_FL, word);
    }

    /// Set the payload length field.
    #[inline]
    pub fn set_payload_len(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::PAYLOAD_LEN, value);
    }

    /// Set the next header field.
    #[inline]
    pub fn set_next_header(&mut self, value: NextHeader) {
        write_u8(self.buffer.as_mut(), field::NEXT_HEADER, value.into());
    }

    /// Set the hop limit field.
    #[inline]
    pub fn set_hop_limit(&mut self, value: u8) {
        write_u8(self.buffer.as_mut(), field::HOP_LIMIT, value);
    }

    /// Set the source address field.
    #[inline]
    pub fn set_src_addr(&mut self, value: Ipv6Addr) {
        write_bytes(self.buffer.as_mut(), field::SRC_ADDR, value.octets());
    }

    /// Set the destination address field.
    #[inline]
    pub fn set_dst_addr(&mut self, value: Ipv6Addr) {
        write_bytes(self.buffer.as_mut(), field::DST_ADDR, value.octets());
    }

    /// Return the payload, mutably (empty if the payload length does not fit the buffer).
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let range = HEADER_LEN..HEADER_LEN + usize::from(self.payload_len());
        self.buffer.as_mut().get_mut(range).unwrap_or(&mut [])
    }
}

/// A high-level representation of the fixed IPv6 header (extension headers are the payload's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Source address.
    pub src_addr: Ipv6Addr,
    /// Destination address.
    pub dst_addr: Ipv6Addr,
    /// Next header of the fixed header.
    pub next_header: NextHeader,
    /// Length of the payload after the fixed header.
    pub payload_len: usize,
    /// Hop limit.
    pub hop_limit: u8,
    /// Traffic class.
    pub traffic_class: u8,
    /// Flow label (20 bits).
    pub flow_label: u32,
}

impl Repr {
    /// Parse a checked packet's fixed header.
    ///
    /// # Errors
    /// As [`Packet::check_len`].
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr, Error> {
        packet.check_len()?;
        Ok(Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            next_header: packet.next_header(),
            payload_len: usize::from(packet.payload_len()),
            hop_limit: packet.hop_limit(),
            traffic_class: packet.traffic_class(),
            flow_label: packet.flow_label(),
        })
    }

    /// Return the length of the header this emits.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Write the fixed header into the start of `packet`; the payload is the caller's.
    ///
    /// # Errors
    /// [`Error::Truncated`] if the buffer is shorter than 40 bytes or the payload length
    /// exceeds 65535 (jumbograms are not supported); nothing is written.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) -> Result<(), Error> {
        if packet.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let payload_len = u16::try_from(self.payload_len).map_err(|_| Error::Truncated)?;
        packet.set_version(6);
        packet.set_traffic_class(self.traffic_class);
        packet.set_flow_label(self.flow_label);
        packet.set_payload_len(payload_len);
        packet.set_next_header(self.next_header);
        packet.set_hop_limit(self.hop_limit);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        Ok(())
    }
}

/// The all-nodes link-local multicast group `ff02::1` (RFC 4291 §2.7.1): where an unsolicited
/// neighbour advertisement goes.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// The all-routers link-local multicast group `ff02::2`.
pub const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);

/// Query whether `addr` is an IPv4-mapped address `::ffff:a.b.c.d` (RFC 4291 §2.5.5.2), which
/// must never appear on the wire (RFC 4038 §5.1).
pub const fn is_v4_mapped(addr: &Ipv6Addr) -> bool {
    let [a, b, c, d, e, f, _, _] = addr.segments();
    a == 0 && b == 0 && c == 0 && d == 0 && e == 0 && f == 0xffff
}

/// Query whether `addr` is link-local unicast, `fe80::/10` (RFC 4291 §2.5.6).
pub const fn is_link_local(addr: &Ipv6Addr) -> bool {
    addr.segments()[0] & 0xffc0 == 0xfe80
}

/// Return the solicited-node multicast address of `addr`, `ff02::1:ffXX:XXXX` with its low 24
/// bits (RFC 4291 §2.7.1): where a neighbour solicitation for `addr` is sent.
pub const fn solicited_node(addr: &Ipv6Addr) -> Ipv6Addr {
    let [.., a, b, c] = addr.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | a as u16,
        u16::from_be_bytes([b, c]),
    )
}

/// Query whether `addr` is a solicited-node multicast address (`ff02::1:ff00:0/104`).
pub const fn is_solicited_node(addr: &Ipv6Addr) -> bool {
    let [a, b, c, d, e, f, g, _] = addr.segments();
    a == 0xff02 && b == 0 && c == 0 && d == 0 && e == 0 && f == 1 && g & 0xff00 == 0xff00
}

/// Return the Ethernet multicast address of an IPv6 multicast group, `33:33` and the group's
/// low 32 bits (RFC 2464 §7).
pub const fn multicast_mac(group: &Ipv6Addr) -> EthernetAddress {
    let [.., a, b, c, d] = group.octets();
    EthernetAddress([0x33, 0x33, a, b, c, d])
}

/// Query whether no packet may come from `addr` (the v6 "martian source" classes): the
/// unspecified address (legitimate only as the source of a DAD probe, which the ND checks
/// handle), loopback, multicast, IPv4-mapped. The balancer's own addresses are the caller's to
/// add.
pub const fn is_martian_source(addr: &Ipv6Addr) -> bool {
    addr.is_unspecified() || addr.is_loopback() || addr.is_multicast() || is_v4_mapped(addr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{ether, golden_v6};
    use proptest::prelude::*;

    const A: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const B: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

    /// The IPv6 packet of a captured Ethernet frame.
    fn ip(frame: &[u8]) -> &[u8] {
        &frame[ether::HEADER_LEN..]
    }

    #[test]
    fn deconstruct() {
        let packet = Packet::new_checked(ip(&golden_v6::ECHO_REQUEST)).unwrap();
        assert_eq!(packet.version(), 6);
        assert_eq!(packet.traffic_class(), 0);
        assert_eq!(packet.flow_label(), 0x52b49);
        assert_eq!(packet.payload_len(), 12);
        assert_eq!(packet.next_header(), NextHeader::Icmpv6);
        assert_eq!(packet.hop_limit(), 64);
        assert_eq!(packet.src_addr(), A);
        assert_eq!(packet.dst_addr(), B);
        assert_eq!(packet.payload(), &ip(&golden_v6::ECHO_REQUEST)[40..]);
        assert_eq!(
            packet.upper_layer(),
            Ok(UpperLayer {
                protocol: NextHeader::Icmpv6,
                offset: 40,
                fragment: None,
                routing: None,
            })
        );
        // Cross-check with an independent implementation.
        let (theirs, _) = etherparse::Ipv6Header::from_slice(packet.into_inner()).unwrap();
        assert_eq!(theirs.flow_label.value(), 0x52b49);
        assert_eq!(theirs.hop_limit, 64);
        assert_eq!(theirs.source, A.octets());
    }

    fn repr() -> Repr {
        Repr {
            src_addr: A,
            dst_addr: B,
            next_header: NextHeader::Icmpv6,
            payload_len: 12,
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0x52b49,
        }
    }

    #[test]
    fn construct_and_emit() {
        let golden = ip(&golden_v6::ECHO_REQUEST);
        let mut bytes = golden.to_vec();
        bytes[..HEADER_LEN].fill(0xa5);
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_version(6);
        packet.set_traffic_class(0);
        packet.set_flow_label(0x52b49);
        packet.set_payload_len(12);
        packet.set_next_header(NextHeader::Icmpv6);
        packet.set_hop_limit(64);
        packet.set_src_addr(A);
        packet.set_dst_addr(B);
        assert_eq!(bytes, golden);

        let mut bytes = golden.to_vec();
        bytes[..HEADER_LEN].fill(0xa5);
        repr()
            .emit(&mut Packet::new_unchecked(&mut bytes[..]))
            .unwrap();
        assert_eq!(bytes, golden);
        assert_eq!(repr().buffer_len(), 40);
        assert_eq!(Repr::parse(&Packet::new_unchecked(golden)), Ok(repr()));
    }

    #[test]
    fn emit_errors() {
        let mut short = [0u8; 39];
        assert_eq!(
            repr().emit(&mut Packet::new_unchecked(&mut short[..])),
            Err(Error::Truncated)
        );
        assert_eq!(short, [0; 39]);
        let mut bytes = [0u8; 40];
        let jumbo = Repr {
            payload_len: 65536,
            ..repr()
        };
        assert_eq!(
            jumbo.emit(&mut Packet::new_unchecked(&mut bytes[..])),
            Err(Error::Truncated)
        );
        assert_eq!(bytes, [0; 40]);
    }

    #[test]
    fn traffic_class_and_flow_label_setters_keep_their_neighbours() {
        let mut bytes = [0u8; 40];
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_version(6);
        packet.set_flow_label(0xfffff);
        packet.set_traffic_class(0xb8); // DSCP 46 (EF), ECN 0
        assert_eq!(&bytes[..4], &[0x6b, 0x8f, 0xff, 0xff]);
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        assert_eq!(packet.traffic_class(), 0xb8);
        assert_eq!(packet.flow_label(), 0xfffff);
        packet.set_flow_label(0x1_2345);
        packet.set_traffic_class(0x03);
        assert_eq!(&bytes[..4], &[0x60, 0x31, 0x23, 0x45]);
        let packet = Packet::new_unchecked(&bytes[..]);
        assert_eq!(packet.version(), 6);
        assert_eq!(packet.traffic_class(), 0x03);
        assert_eq!(packet.flow_label(), 0x12345);
        // A flow label wider than 20 bits is cut, not spilled into the traffic class.
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_flow_label(0xfff0_0001);
        assert_eq!(&bytes[..4], &[0x60, 0x30, 0x00, 0x01]);
    }

    #[test]
    fn truncated_and_padding() {
        let golden = ip(&golden_v6::ECHO_REQUEST);
        for len in 0..golden.len() {
            assert_eq!(
                Packet::new_checked(&golden[..len]),
                Err(Error::Truncated),
                "len {len}"
            );
        }
        // Ethernet padding after the packet: accepted, and not part of the payload.
        let mut padded = golden.to_vec();
        padded.extend_from_slice(&[0; 6]);
        let packet = Packet::new_checked(&padded[..]).unwrap();
        assert_eq!(packet.payload(), &golden[40..]);
        assert_eq!(packet.upper_layer().unwrap().offset, 40);
        // An unchecked view never panics: zeros and an empty payload.
        let packet = Packet::new_unchecked(&golden[..3]);
        assert_eq!(packet.payload_len(), 0);
        assert_eq!(packet.src_addr(), Ipv6Addr::UNSPECIFIED);
        assert_eq!(packet.payload(), &[] as &[u8]);
        let packet = Packet::new_unchecked(&golden[..45]);
        assert_eq!(packet.payload(), &[] as &[u8]);
        assert_eq!(packet.upper_layer().unwrap().offset, 40);
        let mut short = [0u8; 3];
        let mut packet = Packet::new_unchecked(&mut short[..]);
        packet.set_dst_addr(B);
        packet.set_hop_limit(1);
        packet.set_flow_label(1);
        assert_eq!(packet.payload_mut(), &mut [] as &mut [u8]);
        assert_eq!(short, [0, 0, 0]);
    }

    #[test]
    fn bad_version() {
        for first in [0x40, 0x00, 0x70, 0xf0] {
            let mut bytes = ip(&golden_v6::ECHO_REQUEST).to_vec();
            bytes[0] = first | (bytes[0] & 0x0f);
            assert_eq!(
                Packet::new_checked(&bytes[..]),
                Err(Error::BadVersion),
                "{first:#x}"
            );
        }
    }

    /// An options header (hop-by-hop, routing, destination options) of `len` bytes (a multiple
    /// of 8) followed by `next`; a routing header's type and segments left are `rt`, `sl`.
    fn options(next: u8, len: usize, rt: u8, sl: u8) -> Vec<u8> {
        let mut h = vec![0u8; len];
        h[0] = next;
        h[1] = u8::try_from(len / 8 - 1).unwrap();
        h[2] = rt;
        h[3] = sl;
        h
    }

    /// A fragment header followed by `next`.
    fn fragment(next: u8, offset: u16, more: bool, ident: u32) -> Vec<u8> {
        let mut h = vec![next, 0];
        h.extend_from_slice(&((offset << 3) | u16::from(more)).to_be_bytes());
        h.extend_from_slice(&ident.to_be_bytes());
        h
    }

    #[test]
    fn extension_header_chains() {
        type Expected = Result<
            (
                NextHeader,
                usize,
                Option<FragmentHeader>,
                Option<RoutingHeader>,
            ),
            Error,
        >;
        let frag = |header_offset, frag_offset, more_frags, ident| {
            Some(FragmentHeader {
                header_offset,
                frag_offset,
                more_frags,
                ident,
            })
        };
        let tcp_header = [0u8; 20];
        let cases: Vec<(&str, u8, Vec<u8>, Expected)> = vec![
            ("TCP directly", 6, tcp_header.to_vec(), Ok((NextHeader::Tcp, 0, None, None))),
            ("UDP, nothing after", 17, vec![], Ok((NextHeader::Udp, 0, None, None))),
            ("IPv6 in IPv6", 41, vec![], Ok((NextHeader::Ipv6, 0, None, None))),
            ("IPv4 in IPv6", 4, vec![], Ok((NextHeader::Ipv4, 0, None, None))),
            (
                "hop-by-hop, TCP",
                0,
                [options(6, 8, 0, 0), tcp_header.to_vec()].concat(),
                Ok((NextHeader::Tcp, 8, None, None)),
            ),
            (
                "hop-by-hop, dst opts (16), routing (SRH, 2 left, 24), first fragment, dst opts, UDP",
                0,
                [
                    options(60, 8, 0, 0),
                    options(43, 16, 0, 0),
                    options(44, 24, 4, 2),
                    fragment(60, 0, true, 0xdead_beef),
                    options(17, 8, 0, 0),
                    vec![0; 8],
                ]
                .concat(),
                Ok((
                    NextHeader::Udp,
                    64,
                    frag(48, 0, true, 0xdead_beef),
                    Some(RoutingHeader {
                        routing_type: 4,
                        segments_left: 2,
                    }),
                )),
            ),
            (
                "later fragment: the walk stops after the fragment header",
                44,
                [fragment(6, 185, false, 7), vec![0xff; 8]].concat(),
                Ok((NextHeader::Tcp, 8, frag(0, 185, false, 7), None)),
            ),
            (
                "later fragment of an unknown protocol is reported, not refused",
                44,
                [fragment(0xfd, 1, true, 7), vec![0xff; 8]].concat(),
                Ok((NextHeader::Unknown(0xfd), 8, frag(0, 1, true, 7), None)),
            ),
            (
                "atomic fragment, ICMPv6",
                44,
                fragment(58, 0, false, 0x0102_0304),
                Ok((NextHeader::Icmpv6, 8, frag(0, 0, false, 0x0102_0304), None)),
            ),
            (
                "highest fragment offset",
                44,
                fragment(17, 0x1fff, true, 0),
                Ok((NextHeader::Udp, 8, frag(0, 0x1fff, true, 0), None)),
            ),
            (
                "two routing headers: the last is reported",
                43,
                [options(43, 8, 0, 0), options(6, 8, 2, 1)].concat(),
                Ok((
                    NextHeader::Tcp,
                    16,
                    None,
                    Some(RoutingHeader {
                        routing_type: 2,
                        segments_left: 1,
                    }),
                )),
            ),
            (
                "8 destination options headers",
                60,
                [vec![options(60, 8, 0, 0); 7].concat(), options(6, 8, 0, 0)].concat(),
                Ok((NextHeader::Tcp, 64, None, None)),
            ),
            (
                "9 destination options headers",
                60,
                [vec![options(60, 8, 0, 0); 8].concat(), options(6, 8, 0, 0)].concat(),
                Err(Error::TooManyExtHeaders),
            ),
            (
                "largest options header (2048 bytes)",
                60,
                options(6, 2048, 0, 0),
                Ok((NextHeader::Tcp, 2048, None, None)),
            ),
            ("AH", 51, vec![0; 24], Err(Error::Ah)),
            ("AH after hop-by-hop", 0, [options(51, 8, 0, 0), vec![0; 24]].concat(), Err(Error::Ah)),
            ("ESP", 50, vec![0; 24], Err(Error::Esp)),
            ("no next header", 59, vec![], Err(Error::NoNextHeader)),
            ("no next header after dst opts", 60, options(59, 8, 0, 0), Err(Error::NoNextHeader)),
            ("mobility header (not walked)", 135, vec![0; 8], Err(Error::UnknownNextHeader(135))),
            ("experimental 253", 0, options(253, 8, 0, 0), Err(Error::UnknownNextHeader(253))),
            ("ICMPv4 in IPv6", 1, vec![0; 8], Err(Error::UnknownNextHeader(1))),
            (
                "hop-by-hop after dst opts",
                60,
                [options(0, 8, 0, 0), options(6, 8, 0, 0)].concat(),
                Err(Error::HopByHopNotFirst),
            ),
            (
                "hop-by-hop twice",
                0,
                [options(0, 8, 0, 0), options(6, 8, 0, 0)].concat(),
                Err(Error::HopByHopNotFirst),
            ),
            ("hop-by-hop, empty payload", 0, vec![], Err(Error::Truncated)),
            ("hop-by-hop, 1 byte", 0, vec![6], Err(Error::Truncated)),
            ("hop-by-hop, 7 of 8 bytes", 0, options(6, 8, 0, 0)[..7].to_vec(), Err(Error::Truncated)),
            ("dst opts, 15 of 16 bytes", 60, options(6, 16, 0, 0)[..15].to_vec(), Err(Error::Truncated)),
            ("routing, 2 of 8 bytes", 43, vec![6, 0], Err(Error::Truncated)),
            ("fragment, 7 of 8 bytes", 44, fragment(6, 0, true, 1)[..7].to_vec(), Err(Error::Truncated)),
            (
                "later fragment, 7 of 8 bytes",
                44,
                fragment(6, 8, true, 1)[..7].to_vec(),
                Err(Error::Truncated),
            ),
        ];
        for (name, next, bytes, expected) in cases {
            let got = walk(NextHeader::from(next), &bytes)
                .map(|u| (u.protocol, u.offset, u.fragment, u.routing));
            assert_eq!(got, expected, "{name}");
            if let Ok((_, offset, ..)) = got {
                assert!(offset <= bytes.len(), "{name}");
            }
            // The same chain behind a fixed header: offsets from the packet's start.
            let mut packet = vec![0u8; HEADER_LEN];
            Repr {
                next_header: NextHeader::from(next),
                payload_len: bytes.len(),
                ..repr()
            }
            .emit(&mut Packet::new_unchecked(&mut packet[..]))
            .unwrap();
            packet.extend_from_slice(&bytes);
            let upper = Packet::new_checked(&packet[..]).unwrap().upper_layer();
            let shifted = expected.map(|(p, o, f, r)| {
                let f = f.map(|f| FragmentHeader {
                    header_offset: f.header_offset + HEADER_LEN,
                    ..f
                });
                (p, o + HEADER_LEN, f, r)
            });
            assert_eq!(
                upper.map(|u| (u.protocol, u.offset, u.fragment, u.routing)),
                shifted,
                "{name} behind a fixed header"
            );
        }
    }

    #[test]
    fn hop_by_hop_options() {
        let unknown = |at: usize, param_problem| {
            Err(Error::UnknownHopByHopOption {
                pointer: 40 + at,
                param_problem,
            })
        };
        let bad = Err(Error::BadHopByHopOption);
        // Options after the next header and length bytes; the header is padded with zeros
        // (Pad1) to a multiple of 8 unless the options say otherwise.
        type Case<'a> = (&'a str, Vec<u8>, bool, Result<(), Error>);
        let cases: Vec<Case> = vec![
            ("six Pad1", vec![0; 6], false, Ok(())),
            ("PadN of 6", vec![1, 4, 0, 0, 0, 0], false, Ok(())),
            (
                "router alert, PadN (Linux's MLD)",
                vec![5, 2, 0, 0, 1, 0],
                false,
                Ok(()),
            ),
            (
                "Pad1 then PadN: 7 bytes",
                vec![0, 1, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                false,
                bad,
            ),
            (
                "PadN of 3, router alert, 7 Pad1",
                [vec![1, 1, 0], vec![5, 2, 0, 0], vec![0; 7]].concat(),
                false,
                Ok(()),
            ),
            (
                "PadN of 7, router alert (3 Pad1 after)",
                [vec![1, 5, 0, 0, 0, 0, 0], vec![5, 2, 0, 0]].concat(),
                false,
                Ok(()),
            ),
            (
                "PadN of 7 alone (7 Pad1 after)",
                vec![1, 5, 0, 0, 0, 0, 0],
                false,
                bad,
            ),
            (
                "8 bytes of padding",
                [vec![1, 6], vec![0; 6], vec![5, 2, 0, 0], vec![1, 0]].concat(),
                false,
                bad,
            ),
            (
                "PadN with a non-zero byte",
                vec![1, 4, 0, 0, 1, 0],
                false,
                bad,
            ),
            (
                "router alert of 3 bytes",
                vec![5, 3, 0, 0, 0, 0],
                false,
                bad,
            ),
            ("jumbo payload", vec![0xc2, 4, 0, 1, 0, 0], false, bad),
            (
                "option past the header",
                vec![0, 0, 0, 0, 0x3e, 2],
                false,
                bad,
            ),
            ("type without length", vec![0, 0, 0, 0, 0, 0x3e], false, bad),
            (
                "unknown, skip (00)",
                vec![0x3e, 4, 1, 2, 3, 4],
                false,
                Ok(()),
            ),
            (
                "unknown, discard (01)",
                vec![0x7e, 4, 1, 2, 3, 4],
                false,
                unknown(2, false),
            ),
            (
                "unknown, discard and ICMP (10)",
                vec![0xbe, 4, 1, 2, 3, 4],
                true,
                unknown(2, true),
            ),
            (
                "unknown, ICMP if unicast (11)",
                vec![0xfe, 4, 1, 2, 3, 4],
                false,
                unknown(2, true),
            ),
            (
                "unknown, ICMP if unicast (11), multicast",
                vec![0xfe, 4, 1, 2, 3, 4],
                true,
                unknown(2, false),
            ),
            (
                "unknown after padding",
                vec![0, 0, 0x7e, 2, 0, 0],
                false,
                unknown(4, false),
            ),
            ("9 skippable options", [[0x3e, 0]; 9].concat(), false, bad),
            (
                "8 skippable options",
                [[0x3e, 0]; 8].concat(),
                false,
                Ok(()),
            ),
        ];
        for (name, options, dst_multicast, expected) in cases {
            let mut header = vec![6, 0];
            header.extend_from_slice(&options);
            while header.len() % 8 != 0 {
                header.push(0);
            }
            header[1] = u8::try_from(header.len() / 8 - 1).unwrap();
            assert_eq!(check_hop_by_hop(&header, dst_multicast), expected, "{name}");
            // Through the packet's walk, which knows the destination.
            let dst = if dst_multicast { ALL_NODES } else { B };
            let mut packet = vec![0u8; HEADER_LEN];
            Repr {
                dst_addr: dst,
                next_header: NextHeader::HopByHop,
                payload_len: header.len(),
                ..repr()
            }
            .emit(&mut Packet::new_unchecked(&mut packet[..]))
            .unwrap();
            packet.extend_from_slice(&header);
            let upper = Packet::new_checked(&packet[..]).unwrap().upper_layer();
            assert_eq!(
                upper.map(|u| (u.protocol, u.offset)),
                expected.map(|()| (NextHeader::Tcp, 40 + header.len())),
                "{name} in a packet"
            );
        }
        // Only the hop-by-hop header is checked: the same options as destination options
        // pass, and the ICMP-embedded walk does not check them either.
        let dst_opts = [vec![6, 0, 0x7e, 2, 0, 0], vec![0; 2]].concat();
        assert!(walk(NextHeader::DstOptions, &dst_opts).is_ok());
        assert!(walk(NextHeader::HopByHop, &dst_opts).is_ok());
    }

    #[test]
    fn captured_hop_by_hop_chain() {
        // MLDv2 behind a hop-by-hop header with router alert and PadN, as Linux sends it.
        let packet = Packet::new_checked(ip(&golden_v6::MLD_REPORT_HBH)).unwrap();
        assert_eq!(packet.next_header(), NextHeader::HopByHop);
        assert_eq!(packet.hop_limit(), 1);
        assert_eq!(packet.src_addr(), Ipv6Addr::UNSPECIFIED);
        let upper = packet.upper_layer().unwrap();
        assert_eq!(upper.protocol, NextHeader::Icmpv6);
        assert_eq!(upper.offset, 48);
        assert_eq!(upper.fragment, None);
        let theirs = etherparse::SlicedPacket::from_ethernet(&golden_v6::MLD_REPORT_HBH).unwrap();
        let Some(etherparse::NetSlice::Ipv6(theirs)) = theirs.net else {
            panic!("not IPv6")
        };
        assert_eq!(theirs.payload().payload.len(), 36 - 8);
    }

    #[test]
    fn next_headers() {
        for (value, next) in [
            (0, NextHeader::HopByHop),
            (4, NextHeader::Ipv4),
            (6, NextHeader::Tcp),
            (17, NextHeader::Udp),
            (41, NextHeader::Ipv6),
            (43, NextHeader::Routing),
            (44, NextHeader::Fragment),
            (50, NextHeader::Esp),
            (51, NextHeader::Ah),
            (58, NextHeader::Icmpv6),
            (59, NextHeader::NoNextHeader),
            (60, NextHeader::DstOptions),
            (135, NextHeader::Unknown(135)),
        ] {
            assert_eq!(NextHeader::from(value), next);
            assert_eq!(u8::from(next), value);
        }
        assert_eq!(NextHeader::Tcp.l4(), Some(conf::Proto::Tcp));
        assert_eq!(NextHeader::Udp.l4(), Some(conf::Proto::Udp));
        assert_eq!(NextHeader::Icmpv6.l4(), None);
    }

    #[test]
    fn error_names_are_unique() {
        let all = [
            Error::Truncated,
            Error::BadVersion,
            Error::HopByHopNotFirst,
            Error::TooManyExtHeaders,
            Error::BadHopByHopOption,
            Error::UnknownHopByHopOption {
                pointer: 0,
                param_problem: false,
            },
            Error::Ah,
            Error::Esp,
            Error::NoNextHeader,
            Error::UnknownNextHeader(0),
        ];
        let mut names: Vec<_> = all.iter().map(|e| e.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
    }

    #[test]
    fn address_classes() {
        let addr = |s: &str| s.parse::<Ipv6Addr>().unwrap();
        assert_eq!(solicited_node(&addr("2001:db8::2")), addr("ff02::1:ff00:2"));
        assert_eq!(
            solicited_node(&addr("2001:db8:1:2:3:4:5a6:789a")),
            addr("ff02::1:ffa6:789a")
        );
        assert_eq!(
            solicited_node(&addr("fe80::ff:fe00:a")),
            addr("ff02::1:ff00:a")
        );
        // The captured solicitation's Ethernet destination is the group's MAC.
        assert_eq!(multicast_mac(&addr("ff02::1:ff00:2")).0, golden_v6::NS[..6]);
        assert_eq!(
            multicast_mac(&ALL_NODES),
            EthernetAddress([0x33, 0x33, 0, 0, 0, 1])
        );
        assert_eq!(
            multicast_mac(&addr("ff05::1:3")),
            EthernetAddress([0x33, 0x33, 0, 1, 0, 3])
        );
        for (s, solicited) in [
            ("ff02::1:ff00:0", true),
            ("ff02::1:ffff:ffff", true),
            ("ff02::1:fe00:1", false),
            ("ff02::2:ff00:1", false),
            ("ff05::1:ff00:1", false),
            ("ff02::1", false),
        ] {
            assert_eq!(is_solicited_node(&addr(s)), solicited, "{s}");
        }
        for (s, link_local) in [
            ("fe80::1", true),
            ("febf:ffff::1", true),
            ("fec0::1", false),
            ("fe7f::1", false),
            ("ff02::1", false),
        ] {
            assert_eq!(is_link_local(&addr(s)), link_local, "{s}");
        }
        for (s, mapped) in [
            ("::ffff:10.0.0.1", true),
            ("::ffff:0.0.0.0", true),
            ("::10.0.0.1", false),
            ("64:ff9b::10.0.0.1", false),
            ("::1:ffff:10.0.0.1", false),
        ] {
            assert_eq!(is_v4_mapped(&addr(s)), mapped, "{s}");
        }
        for (s, martian) in [
            ("::", true),
            ("::1", true),
            ("ff02::1", true),
            ("ff0e::1", true),
            ("::ffff:192.0.2.1", true),
            ("2001:db8::1", false),
            ("fe80::1", false),
            ("64:ff9b::192.0.2.1", false),
            ("::2", false),
        ] {
            assert_eq!(is_martian_source(&addr(s)), martian, "{s}");
        }
    }

    proptest! {
        /// emit then parse gives the same Repr.
        #[test]
        fn emit_parse_round_trip(
            src in any::<u128>(),
            dst in any::<u128>(),
            next in any::<u8>(),
            payload_len in 0usize..1500,
            hop_limit in any::<u8>(),
            traffic_class in any::<u8>(),
            flow_label in 0u32..0x10_0000,
        ) {
            let repr = Repr {
                src_addr: Ipv6Addr::from(src),
                dst_addr: Ipv6Addr::from(dst),
                next_header: NextHeader::from(next),
                payload_len,
                hop_limit,
                traffic_class,
                flow_label,
            };
            let mut bytes = vec![0u8; 40 + payload_len];
            repr.emit(&mut Packet::new_unchecked(&mut bytes[..])).unwrap();
            prop_assert_eq!(Repr::parse(&Packet::new_unchecked(&bytes[..])), Ok(repr));
            let (theirs, _) = etherparse::Ipv6Header::from_slice(&bytes).unwrap();
            prop_assert_eq!(theirs.traffic_class, traffic_class);
            prop_assert_eq!(theirs.flow_label.value(), flow_label);
            prop_assert_eq!(usize::from(theirs.payload_length), payload_len);
        }

        /// Arbitrary bytes never panic, and a walk that succeeds ends within the payload.
        #[test]
        fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let packet = Packet::new_unchecked(&bytes[..]);
            if packet.check_len().is_ok() {
                prop_assert_eq!(packet.payload().len(), usize::from(packet.payload_len()));
            }
            if let Ok(upper) = packet.upper_layer() {
                prop_assert!(upper.offset <= HEADER_LEN + packet.payload().len());
            }
            for next in [0u8, 43, 44, 60] {
                if let Ok(upper) = walk(NextHeader::from(next), &bytes) {
                    prop_assert!(upper.offset <= bytes.len());
                }
            }
        }
    }
}
