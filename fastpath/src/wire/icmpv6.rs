//! ICMPv6 messages (RFC 4443) and the neighbour discovery messages (RFC 4861) rvs reads or
//! builds.
//!
//! The view covers one ICMPv6 message: give it the bytes from the ICMPv6 header (after the
//! extension headers, [`ipv6::UpperLayer::offset`](super::ipv6::UpperLayer::offset)) to the end
//! of the IPv6 payload, never the rest of the frame, since the checksum covers exactly the
//! message. Unlike ICMPv4, the checksum covers the IPv6 pseudo-header (RFC 4443 §2.3), so
//! [`Packet::verify_checksum`] and [`Packet::fill_checksum`] take the packet's addresses.
//!
//! Every message starts with type, code and checksum, then four bytes whose meaning depends on
//! the type: identifier and sequence number (echo), the MTU (packet too big), a pointer
//! (parameter problem), the R/S/O flags (neighbour advertisement), reserved otherwise.
//! Neighbour solicitations and advertisements go on with a 16-byte target address and options
//! (RFC 4861 §4.3, §4.4), walked by [`NdOptions`] with the RFC 4861 §4.6 rules.
//!
//! Error messages (types below 128) carry as much of the invoking packet as fits in the
//! minimum MTU (RFC 4443 §2.4(c)): [`Packet::embedded`] splits it into the fixed IPv6 header
//! and what follows (extension headers, then the upper layer: [`ipv6::walk`] walks them). The
//! embedded payload length is the original's, longer than what is embedded: use the
//! embedded view's fixed fields, not its `check_len` or `payload`.

use std::net::Ipv6Addr;

use super::checksum;
use super::ether::EthernetAddress;
use super::ipv6;
use super::{
    field::Field, field::Rest, read_bytes, read_u16, read_u32, read_u8, write_bytes, write_u16,
    write_u32, write_u8,
};

/// The ICMPv6 type field (IANA "ICMPv6 Type Numbers").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Message {
    /// Destination unreachable, 1.
    DstUnreachable,
    /// Packet too big, 2.
    PacketTooBig,
    /// Time exceeded, 3.
    TimeExceeded,
    /// Parameter problem, 4.
    ParamProblem,
    /// Echo request, 128.
    EchoRequest,
    /// Echo reply, 129.
    EchoReply,
    /// Router solicitation, 133.
    RouterSolicit,
    /// Router advertisement, 134: recognised only to be ignored (routes are configured).
    RouterAdvert,
    /// Neighbour solicitation, 135.
    NeighborSolicit,
    /// Neighbour advertisement, 136.
    NeighborAdvert,
    /// Redirect, 137.
    Redirect,
    /// Any other type.
    Unknown(u8),
}

impl From<u8> for Message {
    fn from(value: u8) -> Self {
        match value {
            1 => Message::DstUnreachable,
            2 => Message::PacketTooBig,
            3 => Message::TimeExceeded,
            4 => Message::ParamProblem,
            128 => Message::EchoRequest,
            129 => Message::EchoReply,
            133 => Message::RouterSolicit,
            134 => Message::RouterAdvert,
            135 => Message::NeighborSolicit,
            136 => Message::NeighborAdvert,
            137 => Message::Redirect,
            other => Message::Unknown(other),
        }
    }
}

impl From<Message> for u8 {
    fn from(value: Message) -> Self {
        match value {
            Message::DstUnreachable => 1,
            Message::PacketTooBig => 2,
            Message::TimeExceeded => 3,
            Message::ParamProblem => 4,
            Message::EchoRequest => 128,
            Message::EchoReply => 129,
            Message::RouterSolicit => 133,
            Message::RouterAdvert => 134,
            Message::NeighborSolicit => 135,
            Message::NeighborAdvert => 136,
            Message::Redirect => 137,
            Message::Unknown(other) => other,
        }
    }
}

impl Message {
    /// Query whether this is an error message (types 0 to 127, RFC 4443 §2.1), about which
    /// no error may be sent (RFC 4443 §2.4(e.1)).
    pub fn is_error(self) -> bool {
        u8::from(self) < 128
    }

    /// Query whether this is an error message rvs relays to the connection it concerns
    /// (destination unreachable, packet too big, time exceeded: those `ip_vs_in_icmp_v6`
    /// handles).
    pub const fn is_relayed_error(self) -> bool {
        matches!(
            self,
            Message::DstUnreachable | Message::PacketTooBig | Message::TimeExceeded
        )
    }
}

/// Destination unreachable codes (RFC 4443 §3.1).
pub mod dst_unreachable {
    /// No route to destination.
    pub const NO_ROUTE: u8 = 0;
    /// Communication with destination administratively prohibited.
    pub const ADMIN_PROHIBITED: u8 = 1;
    /// Address unreachable.
    pub const ADDR_UNREACHABLE: u8 = 3;
    /// Port unreachable.
    pub const PORT_UNREACHABLE: u8 = 4;
}

/// Time exceeded codes (RFC 4443 §3.3).
pub mod time_exceeded {
    /// Hop limit exceeded in transit.
    pub const HOP_LIMIT: u8 = 0;
    /// Fragment reassembly time exceeded.
    pub const REASSEMBLY: u8 = 1;
}

/// Parameter problem codes (RFC 4443 §3.4).
pub mod param_problem {
    /// Erroneous header field encountered.
    pub const HEADER_FIELD: u8 = 0;
    /// Unrecognized next header type encountered.
    pub const NEXT_HEADER: u8 = 1;
    /// Unrecognized IPv6 option encountered.
    pub const OPTION: u8 = 2;
}

/// Why an ICMPv6 message cannot be read or built. The `as_str` names are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// The buffer is shorter than the message's fixed part (or, to emit, than the message).
    Truncated,
    /// The checksum does not verify.
    BadChecksum,
    /// A neighbour discovery option of length 0 or running past the message (RFC 4861 §4.6).
    BadOption,
    /// A link-layer address option whose length is not one of an Ethernet address (RFC 2464
    /// §6: 8 bytes; Linux's `ndisc_opt_addr_data` refuses it too).
    BadLinkLayerOption,
    /// Not an error message (for [`Packet::embedded`]), or a type [`Repr::parse`] does not
    /// represent.
    Unsupported,
    /// The embedded packet of an error message is not IPv6.
    BadEmbeddedVersion,
}

impl Error {
    /// The stable name of the reason.
    pub const fn as_str(self) -> &'static str {
        match self {
            Error::Truncated => "truncated",
            Error::BadChecksum => "bad_checksum",
            Error::BadOption => "bad_option",
            Error::BadLinkLayerOption => "bad_link_layer_option",
            Error::Unsupported => "unsupported",
            Error::BadEmbeddedVersion => "bad_embedded_version",
        }
    }
}

mod field {
    use super::{Field, Rest};
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    pub const REST_OF_HEADER: Field = 4..8;
    pub const ECHO_IDENT: Field = 4..6;
    pub const ECHO_SEQNO: Field = 6..8;
    pub const ND_FLAGS: usize = 4;
    pub const DATA: Rest = 8..;
    pub const ND_TARGET: Field = 8..24;
    pub const ND_OPTIONS: Rest = 24..;
    pub const RA_OPTIONS: Rest = 16..;

    // An ND option: type, length in 8-octet units (the whole option), data.
    pub const OPT_TYPE: usize = 0;
    pub const OPT_LEN: usize = 1;
    pub const OPT_LLADDR: Field = 2..8;
}

/// Length of the ICMPv6 header: type, code, checksum and the four type-specific bytes.
pub const HEADER_LEN: usize = field::DATA.start;

/// Length of a neighbour solicitation or advertisement without options.
pub const ND_LEN: usize = field::ND_OPTIONS.start;

/// Length of a router advertisement without options.
pub const RA_LEN: usize = field::RA_OPTIONS.start;

/// Length of an Ethernet link-layer address option (RFC 2464 §6).
pub const LLADDR_OPTION_LEN: usize = field::OPT_LLADDR.end;

/// Most of an invoking packet an error message carries: the message must fit the IPv6
/// minimum MTU of 1280 bytes with its IPv6 and ICMPv6 headers (RFC 4443 §2.4(c)).
pub const MAX_INVOKING_LEN: usize = 1280 - ipv6::HEADER_LEN - HEADER_LEN;

/// The IPv6 next header value of ICMPv6, for the pseudo-header.
const NEXT_HEADER: u8 = 58;

/// ND option types (RFC 4861 §4.6).
pub mod option {
    /// Source link-layer address.
    pub const SOURCE_LLADDR: u8 = 1;
    /// Target link-layer address.
    pub const TARGET_LLADDR: u8 = 2;
    /// Prefix information.
    pub const PREFIX_INFO: u8 = 3;
    /// Redirected header.
    pub const REDIRECTED_HEADER: u8 = 4;
    /// MTU.
    pub const MTU: u8 = 5;
}

/// Neighbour advertisement flags (RFC 4861 §4.4), the first byte after the checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NdFlags {
    /// R: the sender is a router.
    pub router: bool,
    /// S: sent in response to a solicitation.
    pub solicited: bool,
    /// O: override an existing cache entry.
    pub override_: bool,
}

impl NdFlags {
    const ROUTER: u8 = 0x80;
    const SOLICITED: u8 = 0x40;
    const OVERRIDE: u8 = 0x20;

    /// Return the flags from their byte (the reserved bits are ignored).
    pub const fn from_byte(byte: u8) -> NdFlags {
        NdFlags {
            router: byte & Self::ROUTER != 0,
            solicited: byte & Self::SOLICITED != 0,
            override_: byte & Self::OVERRIDE != 0,
        }
    }

    /// Return the flags as their byte (reserved bits zero).
    pub const fn to_byte(self) -> u8 {
        (if self.router { Self::ROUTER } else { 0 })
            | (if self.solicited { Self::SOLICITED } else { 0 })
            | (if self.override_ { Self::OVERRIDE } else { 0 })
    }
}

/// One neighbour discovery option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NdOption<'a> {
    /// The option type ([`option`]).
    pub kind: u8,
    /// The whole option, type and length bytes included (a multiple of 8 bytes).
    pub bytes: &'a [u8],
}

impl NdOption<'_> {
    /// The Ethernet address of a link-layer address option.
    ///
    /// # Errors
    /// [`Error::BadLinkLayerOption`] if the option is not 8 bytes long.
    pub fn lladdr(&self) -> Result<EthernetAddress, Error> {
        if self.bytes.len() != LLADDR_OPTION_LEN {
            return Err(Error::BadLinkLayerOption);
        }
        Ok(EthernetAddress(read_bytes(self.bytes, field::OPT_LLADDR)))
    }
}

/// The walk over a neighbour discovery message's options: each option, or
/// [`Error::BadOption`] once (length 0, or past the end; RFC 4861 §4.6 and §7.1: the message
/// must then be discarded), after which the walk ends.
#[derive(Debug, Clone)]
pub struct NdOptions<'a> {
    rest: &'a [u8],
}

impl<'a> NdOptions<'a> {
    /// Walk the options in `bytes`.
    pub const fn new(bytes: &'a [u8]) -> NdOptions<'a> {
        NdOptions { rest: bytes }
    }

    /// Check every option's length and return the first source and target link-layer address
    /// options (Linux keeps the first of duplicates too).
    ///
    /// # Errors
    /// [`Error::BadOption`], or [`Error::BadLinkLayerOption`] for a link-layer address option
    /// of the wrong length.
    pub fn lladdrs(self) -> Result<LinkLayerAddrs, Error> {
        let mut found = LinkLayerAddrs::default();
        for opt in self {
            let opt = opt?;
            let slot = match opt.kind {
                option::SOURCE_LLADDR => &mut found.source,
                option::TARGET_LLADDR => &mut found.target,
                _ => continue,
            };
            let lladdr = opt.lladdr()?;
            slot.get_or_insert(lladdr);
        }
        Ok(found)
    }
}

impl<'a> Iterator for NdOptions<'a> {
    type Item = Result<NdOption<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let len = usize::from(read_u8(self.rest, field::OPT_LEN)) * 8;
        match (len, self.rest.split_at_checked(len)) {
            (8.., Some((bytes, rest))) => {
                self.rest = rest;
                Some(Ok(NdOption {
                    kind: read_u8(bytes, field::OPT_TYPE),
                    bytes,
                }))
            }
            _ => {
                self.rest = &[];
                Some(Err(Error::BadOption))
            }
        }
    }
}

/// The link-layer address options of a neighbour discovery message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkLayerAddrs {
    /// The source link-layer address option.
    pub source: Option<EthernetAddress>,
    /// The target link-layer address option.
    pub target: Option<EthernetAddress>,
}

/// The invoking packet embedded in an error message: its fixed IPv6 header and the bytes after
/// it (extension headers, then as much of the upper layer as fitted).
#[derive(Debug, PartialEq, Eq)]
pub struct Embedded<T: AsRef<[u8]>> {
    /// The embedded fixed header. Its payload length is the original's: see the module
    /// documentation.
    pub header: ipv6::Packet<T>,
    /// What follows the embedded fixed header, possibly empty.
    pub data: T,
}

/// A read/write view of an ICMPv6 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wrap a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wrap a received message, checking its length with [`Packet::check_len`].
    ///
    /// # Errors
    /// As [`Packet::check_len`].
    pub fn new_checked(buffer: T) -> Result<Packet<T>, Error> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Check that the buffer holds the 8-byte header, and the 24 bytes of a neighbour
    /// solicitation or advertisement, or the 16 of a router advertisement (RFC 4861 §6.1.2,
    /// §7.1: "ICMP length is 24 or more octets").
    ///
    /// # Errors
    /// [`Error::Truncated`] if it is shorter.
    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        let needed = match self.msg_type() {
            Message::NeighborSolicit | Message::NeighborAdvert => ND_LEN,
            Message::RouterAdvert => RA_LEN,
            _ => HEADER_LEN,
        };
        if len < needed {
            Err(Error::Truncated)
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

    /// Return the four type-specific bytes after the checksum as one big-endian word: the MTU
    /// of a packet too big, the pointer of a parameter problem.
    #[inline]
    pub fn rest_of_header(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::REST_OF_HEADER)
    }

    /// Return the MTU field of a packet too big message.
    #[inline]
    pub fn mtu(&self) -> u32 {
        self.rest_of_header()
    }

    /// Return the pointer field of a parameter problem message.
    #[inline]
    pub fn pointer(&self) -> u32 {
        self.rest_of_header()
    }

    /// Return the flags of a neighbour advertisement.
    #[inline]
    pub fn nd_flags(&self) -> NdFlags {
        NdFlags::from_byte(read_u8(self.buffer.as_ref(), field::ND_FLAGS))
    }

    /// Return the target address of a neighbour solicitation or advertisement.
    #[inline]
    pub fn target_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(read_bytes::<16>(self.buffer.as_ref(), field::ND_TARGET))
    }

    /// Return the data after the 8-byte header: echo data, or an error's invoking packet.
    #[inline]
    pub fn data(&self) -> &[u8] {
        self.buffer.as_ref().get(field::DATA).unwrap_or(&[])
    }

    /// Return the options of a neighbour solicitation or advertisement, or of a router
    /// advertisement (nothing for other types).
    #[inline]
    pub fn nd_options(&self) -> NdOptions<'_> {
        let options = match self.msg_type() {
            Message::NeighborSolicit | Message::NeighborAdvert => field::ND_OPTIONS,
            Message::RouterAdvert => field::RA_OPTIONS,
            _ => return NdOptions::new(&[]),
        };
        NdOptions::new(self.buffer.as_ref().get(options).unwrap_or(&[]))
    }

    /// Query whether the checksum verifies for a message from `src_addr` to `dst_addr` (the
    /// IPv6 header's, or a routing header's final destination).
    #[inline]
    pub fn verify_checksum(&self, src_addr: &Ipv6Addr, dst_addr: &Ipv6Addr) -> bool {
        let message = self.buffer.as_ref();
        let pseudo = checksum::pseudo_header_v6(src_addr, dst_addr, NEXT_HEADER, message.len());
        checksum::combine(&[pseudo, checksum::data(message)]) == 0xffff
    }

    /// Return the invoking packet embedded in an error message.
    ///
    /// # Errors
    /// - [`Error::Unsupported`]: not an error message (type ≥ 128);
    /// - [`Error::Truncated`]: the data is shorter than a fixed IPv6 header;
    /// - [`Error::BadEmbeddedVersion`]: the embedded version is not 6.
    pub fn embedded(&self) -> Result<Embedded<&[u8]>, Error> {
        self.check_embedded()?;
        let (header, data) = self
            .data()
            .split_at_checked(ipv6::HEADER_LEN)
            .ok_or(Error::Truncated)?;
        Ok(Embedded {
            header: ipv6::Packet::new_unchecked(header),
            data,
        })
    }

    /// Check that the message is an error message embedding at least a fixed IPv6 header.
    fn check_embedded(&self) -> Result<(), Error> {
        if !self.msg_type().is_error() {
            return Err(Error::Unsupported);
        }
        let header = ipv6::Packet::new_unchecked(self.data());
        if self.data().len() < ipv6::HEADER_LEN {
            return Err(Error::Truncated);
        }
        if header.version() != 6 {
            return Err(Error::BadEmbeddedVersion);
        }
        Ok(())
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

    /// Set the four type-specific bytes after the checksum (the MTU, the pointer, 0 for a
    /// reserved field).
    #[inline]
    pub fn set_rest_of_header(&mut self, value: u32) {
        write_u32(self.buffer.as_mut(), field::REST_OF_HEADER, value);
    }

    /// Set the flags of a neighbour advertisement (clearing the rest of the word's first
    /// byte).
    #[inline]
    pub fn set_nd_flags(&mut self, value: NdFlags) {
        write_u8(self.buffer.as_mut(), field::ND_FLAGS, value.to_byte());
    }

    /// Set the target address of a neighbour solicitation or advertisement.
    #[inline]
    pub fn set_target_addr(&mut self, value: Ipv6Addr) {
        write_bytes(self.buffer.as_mut(), field::ND_TARGET, value.octets());
    }

    /// Return the data after the header, mutably.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut().get_mut(field::DATA).unwrap_or(&mut [])
    }

    /// Return the invoking packet embedded in an error message, mutably (for NAT66, which
    /// rewrites the embedded addresses and ports). Errors as for [`Packet::embedded`].
    pub fn embedded_mut(&mut self) -> Result<Embedded<&mut [u8]>, Error> {
        self.check_embedded()?;
        let (header, data) = self
            .data_mut()
            .split_at_mut_checked(ipv6::HEADER_LEN)
            .ok_or(Error::Truncated)?;
        Ok(Embedded {
            header: ipv6::Packet::new_unchecked(header),
            data,
        })
    }

    /// Compute the checksum over the whole message for `src_addr` to `dst_addr` and store it.
    #[inline]
    pub fn fill_checksum(&mut self, src_addr: &Ipv6Addr, dst_addr: &Ipv6Addr) {
        self.set_checksum(0);
        let message = self.buffer.as_ref();
        let pseudo = checksum::pseudo_header_v6(src_addr, dst_addr, NEXT_HEADER, message.len());
        let sum = checksum::combine(&[pseudo, checksum::data(message)]);
        self.set_checksum(checksum::finish(sum));
    }
}

/// A high-level representation of the ICMPv6 messages rvs reads or builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repr<'a> {
    /// Echo request (RFC 4443 §4.1).
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Echo data.
        data: &'a [u8],
    },
    /// Echo reply (RFC 4443 §4.2).
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Echo data.
        data: &'a [u8],
    },
    /// Destination unreachable (RFC 4443 §3.1).
    DstUnreachable {
        /// Code ([`dst_unreachable`]).
        code: u8,
        /// The invoking packet (cut to [`MAX_INVOKING_LEN`] when emitted).
        invoking: &'a [u8],
    },
    /// Packet too big (RFC 4443 §3.2).
    PacketTooBig {
        /// The MTU of the next-hop link.
        mtu: u32,
        /// The invoking packet (cut to [`MAX_INVOKING_LEN`] when emitted).
        invoking: &'a [u8],
    },
    /// Time exceeded (RFC 4443 §3.3).
    TimeExceeded {
        /// Code ([`time_exceeded`]).
        code: u8,
        /// The invoking packet (cut to [`MAX_INVOKING_LEN`] when emitted).
        invoking: &'a [u8],
    },
    /// Parameter problem (RFC 4443 §3.4).
    ParamProblem {
        /// Code ([`param_problem`]).
        code: u8,
        /// Offset in the invoking packet of the error.
        pointer: u32,
        /// The invoking packet (cut to [`MAX_INVOKING_LEN`] when emitted).
        invoking: &'a [u8],
    },
    /// Neighbour solicitation (RFC 4861 §4.3).
    NeighborSolicit {
        /// The address whose link-layer address is asked.
        target: Ipv6Addr,
        /// The source link-layer address option (absent in a DAD probe).
        source_lladdr: Option<EthernetAddress>,
    },
    /// Neighbour advertisement (RFC 4861 §4.4).
    NeighborAdvert {
        /// R, S, O.
        flags: NdFlags,
        /// The address advertised.
        target: Ipv6Addr,
        /// The target link-layer address option.
        target_lladdr: Option<EthernetAddress>,
    },
    /// Router advertisement (RFC 4861 §4.2): recognised so that it can be ignored; only its
    /// options' structure is checked.
    RouterAdvert,
}

impl<'a> Repr<'a> {
    /// Parse a received message from `src_addr` to `dst_addr`: length, checksum, and for
    /// neighbour discovery the options (structure and link-layer address lengths). The
    /// neighbour discovery validity rules that involve the IPv6 header (hop limit, code,
    /// addresses) are [`l2::nd`](crate::l2::nd)'s.
    ///
    /// # Errors
    /// [`Error::Truncated`], [`Error::BadChecksum`], [`Error::BadOption`],
    /// [`Error::BadLinkLayerOption`], or [`Error::Unsupported`] for another type.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Packet<&'a T>,
        src_addr: &Ipv6Addr,
        dst_addr: &Ipv6Addr,
    ) -> Result<Repr<'a>, Error> {
        packet.check_len()?;
        if !packet.verify_checksum(src_addr, dst_addr) {
            return Err(Error::BadChecksum);
        }
        // The data borrows the buffer, not the view.
        let buffer: &'a T = packet.buffer;
        let data = buffer.as_ref().get(field::DATA).unwrap_or(&[]);
        let repr = match packet.msg_type() {
            Message::EchoRequest => Repr::EchoRequest {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data,
            },
            Message::EchoReply => Repr::EchoReply {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data,
            },
            Message::DstUnreachable => Repr::DstUnreachable {
                code: packet.msg_code(),
                invoking: data,
            },
            Message::PacketTooBig => Repr::PacketTooBig {
                mtu: packet.mtu(),
                invoking: data,
            },
            Message::TimeExceeded => Repr::TimeExceeded {
                code: packet.msg_code(),
                invoking: data,
            },
            Message::ParamProblem => Repr::ParamProblem {
                code: packet.msg_code(),
                pointer: packet.pointer(),
                invoking: data,
            },
            Message::NeighborSolicit => Repr::NeighborSolicit {
                target: packet.target_addr(),
                source_lladdr: packet.nd_options().lladdrs()?.source,
            },
            Message::NeighborAdvert => Repr::NeighborAdvert {
                flags: packet.nd_flags(),
                target: packet.target_addr(),
                target_lladdr: packet.nd_options().lladdrs()?.target,
            },
            Message::RouterAdvert => {
                packet.nd_options().lladdrs()?;
                Repr::RouterAdvert
            }
            Message::RouterSolicit | Message::Redirect | Message::Unknown(_) => {
                return Err(Error::Unsupported)
            }
        };
        Ok(repr)
    }

    /// The invoking packet an error message carries, cut to [`MAX_INVOKING_LEN`].
    fn invoking(invoking: &[u8]) -> &[u8] {
        invoking.get(..MAX_INVOKING_LEN).unwrap_or(invoking)
    }

    /// Return the length of the message this emits.
    pub fn buffer_len(&self) -> usize {
        let lladdr_len = |lladdr: &Option<EthernetAddress>| {
            if lladdr.is_some() {
                LLADDR_OPTION_LEN
            } else {
                0
            }
        };
        match self {
            Repr::EchoRequest { data, .. } | Repr::EchoReply { data, .. } => {
                HEADER_LEN + data.len()
            }
            Repr::DstUnreachable { invoking, .. }
            | Repr::PacketTooBig { invoking, .. }
            | Repr::TimeExceeded { invoking, .. }
            | Repr::ParamProblem { invoking, .. } => HEADER_LEN + Self::invoking(invoking).len(),
            Repr::NeighborSolicit { source_lladdr, .. } => ND_LEN + lladdr_len(source_lladdr),
            Repr::NeighborAdvert { target_lladdr, .. } => ND_LEN + lladdr_len(target_lladdr),
            Repr::RouterAdvert => RA_LEN,
        }
    }

    /// Write the message into the first [`Repr::buffer_len`] bytes of `packet`, with the
    /// checksum for `src_addr` to `dst_addr`. Bytes after those are not touched and not
    /// covered by the checksum.
    ///
    /// # Errors
    /// [`Error::Truncated`] if the buffer is shorter than the message; [`Error::Unsupported`]
    /// for [`Repr::RouterAdvert`], which rvs never sends. Nothing is written.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
        src_addr: &Ipv6Addr,
        dst_addr: &Ipv6Addr,
    ) -> Result<(), Error> {
        if matches!(self, Repr::RouterAdvert) {
            return Err(Error::Unsupported);
        }
        let len = self.buffer_len();
        let mut packet = Packet::new_unchecked(
            packet
                .buffer
                .as_mut()
                .get_mut(..len)
                .ok_or(Error::Truncated)?,
        );
        // The reserved bytes of every type are zero.
        packet.set_rest_of_header(0);
        let (msg_type, code, data) = match *self {
            Repr::EchoRequest {
                ident,
                seq_no,
                data,
            }
            | Repr::EchoReply {
                ident,
                seq_no,
                data,
            } => {
                packet.set_echo_ident(ident);
                packet.set_echo_seq_no(seq_no);
                let msg_type = if matches!(self, Repr::EchoRequest { .. }) {
                    Message::EchoRequest
                } else {
                    Message::EchoReply
                };
                (msg_type, 0, data)
            }
            Repr::DstUnreachable { code, invoking } => {
                (Message::DstUnreachable, code, Self::invoking(invoking))
            }
            Repr::PacketTooBig { mtu, invoking } => {
                packet.set_rest_of_header(mtu);
                (Message::PacketTooBig, 0, Self::invoking(invoking))
            }
            Repr::TimeExceeded { code, invoking } => {
                (Message::TimeExceeded, code, Self::invoking(invoking))
            }
            Repr::ParamProblem {
                code,
                pointer,
                invoking,
            } => {
                packet.set_rest_of_header(pointer);
                (Message::ParamProblem, code, Self::invoking(invoking))
            }
            Repr::NeighborSolicit {
                target,
                source_lladdr,
            } => {
                packet.set_target_addr(target);
                emit_lladdr(&mut packet, option::SOURCE_LLADDR, source_lladdr);
                (Message::NeighborSolicit, 0, &[][..])
            }
            Repr::NeighborAdvert {
                flags,
                target,
                target_lladdr,
            } => {
                packet.set_nd_flags(flags);
                packet.set_target_addr(target);
                emit_lladdr(&mut packet, option::TARGET_LLADDR, target_lladdr);
                (Message::NeighborAdvert, 0, &[][..])
            }
            Repr::RouterAdvert => return Err(Error::Unsupported),
        };
        packet.set_msg_type(msg_type);
        packet.set_msg_code(code);
        if let Some(dst) = packet.data_mut().get_mut(..data.len()) {
            dst.copy_from_slice(data);
        }
        packet.fill_checksum(src_addr, dst_addr);
        Ok(())
    }
}

/// Write a link-layer address option of type `kind` after a neighbour solicitation or
/// advertisement's target address, if there is one.
fn emit_lladdr<T: AsRef<[u8]> + AsMut<[u8]>>(
    packet: &mut Packet<T>,
    kind: u8,
    lladdr: Option<EthernetAddress>,
) {
    let Some(lladdr) = lladdr else { return };
    if let Some(opt) = packet.buffer.as_mut().get_mut(field::ND_OPTIONS) {
        write_u8(opt, field::OPT_TYPE, kind);
        // One 8-octet unit: type, length, six bytes of Ethernet address.
        write_u8(opt, field::OPT_LEN, 1);
        write_bytes(opt, field::OPT_LLADDR, lladdr.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{ether, golden_v6};

    const A: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const B: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
    const MAC_A: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0x0a]);
    const MAC_B: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0x0b]);

    /// The IPv6 header and the ICMPv6 message of a captured frame without extension headers.
    fn split(frame: &[u8]) -> (ipv6::Packet<&[u8]>, &[u8]) {
        let ip = ipv6::Packet::new_checked(&frame[ether::HEADER_LEN..]).unwrap();
        assert_eq!(ip.next_header(), ipv6::NextHeader::Icmpv6);
        let message = &frame[ether::HEADER_LEN + ipv6::HEADER_LEN..];
        assert_eq!(message.len(), usize::from(ip.payload_len()));
        (ip, message)
    }

    /// Parse a captured frame's message.
    fn parse(frame: &[u8]) -> Result<Repr<'_>, Error> {
        let (ip, message) = split(frame);
        Repr::parse(
            &Packet::new_checked(message)?,
            &ip.src_addr(),
            &ip.dst_addr(),
        )
    }

    /// Emit `repr` from `src` to `dst` into a fresh buffer of exactly its length.
    fn emit(repr: &Repr<'_>, src: &Ipv6Addr, dst: &Ipv6Addr) -> Vec<u8> {
        let mut bytes = vec![0xa5; repr.buffer_len()];
        repr.emit(&mut Packet::new_unchecked(&mut bytes[..]), src, dst)
            .unwrap();
        bytes
    }

    #[test]
    fn echo_request_and_reply() {
        let (_, request) = split(&golden_v6::ECHO_REQUEST);
        let packet = Packet::new_checked(request).unwrap();
        assert_eq!(packet.msg_type(), Message::EchoRequest);
        assert_eq!(packet.msg_code(), 0);
        assert_eq!(packet.echo_ident(), 30270);
        assert_eq!(packet.echo_seq_no(), 1);
        assert_eq!(packet.data(), b"abcd");
        assert!(packet.verify_checksum(&A, &B));
        // The pseudo-header is covered: another destination does not verify (swapped
        // addresses would: the sum is commutative).
        assert!(!packet.verify_checksum(&A, &Ipv6Addr::LOCALHOST));
        assert_eq!(packet.embedded(), Err(Error::Unsupported));
        let repr = parse(&golden_v6::ECHO_REQUEST).unwrap();
        assert_eq!(
            repr,
            Repr::EchoRequest {
                ident: 30270,
                seq_no: 1,
                data: b"abcd"
            }
        );
        assert_eq!(emit(&repr, &A, &B), request);
        // The reply rvs would build is Linux's, byte for byte.
        let (_, reply) = split(&golden_v6::ECHO_REPLY);
        let ours = Repr::EchoReply {
            ident: 30270,
            seq_no: 1,
            data: b"abcd",
        };
        assert_eq!(emit(&ours, &B, &A), reply);
        assert_eq!(parse(&golden_v6::ECHO_REPLY), Ok(ours));
        // Cross-check with an independent implementation.
        let (theirs, _) = etherparse::Icmpv6Header::from_slice(reply).unwrap();
        let expected = theirs
            .icmp_type
            .calc_checksum(B.octets(), A.octets(), b"abcd")
            .unwrap();
        assert_eq!(theirs.checksum, expected);
    }

    #[test]
    fn bad_checksum() {
        let (ip, message) = split(&golden_v6::ECHO_REQUEST);
        for at in 0..message.len() {
            let mut bytes = message.to_vec();
            bytes[at] ^= 0x10;
            let packet = Packet::new_unchecked(&bytes[..]);
            assert!(
                !packet.verify_checksum(&ip.src_addr(), &ip.dst_addr()),
                "byte {at}"
            );
            assert_eq!(
                Repr::parse(&Packet::new_unchecked(&bytes[..]), &A, &B),
                Err(Error::BadChecksum)
            );
        }
    }

    #[test]
    fn destination_unreachable() {
        let repr = parse(&golden_v6::PORT_UNREACHABLE).unwrap();
        let invoking = &golden_v6::UDP_HELLO[ether::HEADER_LEN..];
        assert_eq!(
            repr,
            Repr::DstUnreachable {
                code: dst_unreachable::PORT_UNREACHABLE,
                invoking
            }
        );
        let (_, message) = split(&golden_v6::PORT_UNREACHABLE);
        assert_eq!(emit(&repr, &B, &A), message);
        let packet = Packet::new_checked(message).unwrap();
        assert!(packet.msg_type().is_error());
        assert!(packet.msg_type().is_relayed_error());
        let embedded = packet.embedded().unwrap();
        assert_eq!(embedded.header.src_addr(), A);
        assert_eq!(embedded.header.dst_addr(), B);
        assert_eq!(embedded.header.next_header(), ipv6::NextHeader::Udp);
        let upper = ipv6::walk(embedded.header.next_header(), embedded.data).unwrap();
        assert_eq!(upper.protocol, ipv6::NextHeader::Udp);
        assert_eq!(upper.offset, 0);
        assert_eq!(&embedded.data[..4], &[0x12, 0x34, 0x00, 0x35]);
        // NAT66 rewrites the embedded destination through the mutable view; the checksum is
        // then updated for the change in the message body (the words of the address).
        let mut bytes = message.to_vec();
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        let real: Ipv6Addr = "2001:db8:1::11".parse().unwrap();
        let checksum = packet.checksum();
        let mut embedded = packet.embedded_mut().unwrap();
        embedded.header.set_dst_addr(real);
        embedded.data[2..4].copy_from_slice(&8080u16.to_be_bytes());
        let updated = checksum::Delta::default()
            .ipv6(&B, &real)
            .u16(53, 8080)
            .apply(checksum);
        packet.set_checksum(updated);
        assert!(packet.verify_checksum(&B, &A));
        assert_eq!(&bytes[HEADER_LEN + 24..HEADER_LEN + 40], &real.octets());
        assert_eq!(&bytes[HEADER_LEN + 42..HEADER_LEN + 44], &[0x1f, 0x90]);
    }

    #[test]
    fn embedded_errors() {
        let (_, message) = split(&golden_v6::PORT_UNREACHABLE);
        // Cut inside the embedded fixed header.
        for len in HEADER_LEN..HEADER_LEN + ipv6::HEADER_LEN {
            assert_eq!(
                Packet::new_unchecked(&message[..len]).embedded(),
                Err(Error::Truncated),
                "len {len}"
            );
        }
        // Only the fixed header: accepted, no data.
        let packet = Packet::new_unchecked(&message[..HEADER_LEN + ipv6::HEADER_LEN]);
        assert_eq!(packet.embedded().unwrap().data, &[] as &[u8]);
        let mut bytes = message.to_vec();
        bytes[HEADER_LEN] = 0x45;
        assert_eq!(
            Packet::new_unchecked(&bytes[..]).embedded(),
            Err(Error::BadEmbeddedVersion)
        );
        assert_eq!(
            Packet::new_unchecked(&mut bytes[..])
                .embedded_mut()
                .map(|_| ()),
            Err(Error::BadEmbeddedVersion)
        );
        let mut short = message[..HEADER_LEN + 39].to_vec();
        assert_eq!(
            Packet::new_unchecked(&mut short[..])
                .embedded_mut()
                .map(|_| ()),
            Err(Error::Truncated)
        );
        for (ty, ok) in [
            (1, true),
            (2, true),
            (3, true),
            (4, true),
            (127, true),
            (128, false),
            (135, false),
        ] {
            let mut bytes = message.to_vec();
            bytes[0] = ty;
            let got = Packet::new_unchecked(&bytes[..]).embedded().map(|_| ());
            assert_eq!(
                got,
                if ok { Ok(()) } else { Err(Error::Unsupported) },
                "type {ty}"
            );
        }
    }

    #[test]
    fn error_messages_match_hand_written_bytes_and_etherparse() {
        let invoking = &golden_v6::UDP_HELLO[ether::HEADER_LEN..];
        let cases = [
            (
                Repr::PacketTooBig {
                    mtu: 1280,
                    invoking,
                },
                [0x02, 0x00, 0x00, 0x00, 0x05, 0x00],
                etherparse::Icmpv6Type::PacketTooBig { mtu: 1280 },
            ),
            (
                Repr::TimeExceeded {
                    code: time_exceeded::HOP_LIMIT,
                    invoking,
                },
                [0x03, 0x00, 0x00, 0x00, 0x00, 0x00],
                etherparse::Icmpv6Type::TimeExceeded(
                    etherparse::icmpv6::TimeExceededCode::HopLimitExceeded,
                ),
            ),
            (
                Repr::ParamProblem {
                    code: param_problem::NEXT_HEADER,
                    pointer: 6,
                    invoking,
                },
                [0x04, 0x01, 0x00, 0x00, 0x00, 0x06],
                etherparse::Icmpv6Type::ParameterProblem(
                    etherparse::icmpv6::ParameterProblemHeader {
                        code: etherparse::icmpv6::ParameterProblemCode::UnrecognizedNextHeader,
                        pointer: 6,
                    },
                ),
            ),
            (
                Repr::DstUnreachable {
                    code: dst_unreachable::ADDR_UNREACHABLE,
                    invoking,
                },
                [0x01, 0x03, 0x00, 0x00, 0x00, 0x00],
                etherparse::Icmpv6Type::DestinationUnreachable(
                    etherparse::icmpv6::DestUnreachableCode::Address,
                ),
            ),
        ];
        for (repr, head, theirs) in cases {
            let bytes = emit(&repr, &B, &A);
            // Type, code, then (after the checksum) the low bytes of the type-specific word.
            assert_eq!([bytes[0], bytes[1]], [head[0], head[1]], "{repr:?}");
            assert_eq!(&bytes[4..8], &[0, 0, head[4], head[5]], "{repr:?}");
            assert_eq!(&bytes[8..], invoking, "{repr:?}");
            let theirs =
                etherparse::Icmpv6Header::with_checksum(theirs, B.octets(), A.octets(), invoking)
                    .unwrap();
            assert_eq!(bytes[..8], theirs.to_bytes()[..], "{repr:?}");
            let packet = Packet::new_checked(&bytes[..]).unwrap();
            assert_eq!(Repr::parse(&packet, &B, &A), Ok(repr));
        }
    }

    #[test]
    fn invoking_packet_is_cut_to_the_minimum_mtu() {
        let invoking = vec![0x60; 2000];
        let repr = Repr::PacketTooBig {
            mtu: 1400,
            invoking: &invoking,
        };
        assert_eq!(repr.buffer_len(), 1240);
        assert_eq!(ipv6::HEADER_LEN + repr.buffer_len(), 1280);
        let bytes = emit(&repr, &B, &A);
        assert_eq!(&bytes[8..], &invoking[..1232]);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.mtu(), 1400);
        assert!(packet.verify_checksum(&B, &A));
        // Exactly the limit is kept whole.
        let repr = Repr::TimeExceeded {
            code: 0,
            invoking: &invoking[..1232],
        };
        assert_eq!(repr.buffer_len(), 1240);
    }

    #[test]
    fn emit_into_a_short_or_long_buffer() {
        let repr = Repr::EchoReply {
            ident: 1,
            seq_no: 2,
            data: b"xyz",
        };
        let mut short = [0u8; 10];
        assert_eq!(
            repr.emit(&mut Packet::new_unchecked(&mut short[..]), &A, &B),
            Err(Error::Truncated)
        );
        assert_eq!(short, [0; 10]);
        // A longer buffer: the bytes after the message are neither written nor summed.
        let mut long = [0xeeu8; 16];
        repr.emit(&mut Packet::new_unchecked(&mut long[..]), &A, &B)
            .unwrap();
        assert_eq!(&long[11..], &[0xee; 5]);
        assert!(Packet::new_unchecked(&long[..11]).verify_checksum(&A, &B));
        let mut bytes = [0u8; 24];
        assert_eq!(
            Repr::RouterAdvert.emit(&mut Packet::new_unchecked(&mut bytes[..]), &A, &B),
            Err(Error::Unsupported)
        );
        assert_eq!(bytes, [0; 24]);
    }

    #[test]
    fn neighbor_solicitation_and_advertisement() {
        let ns = parse(&golden_v6::NS).unwrap();
        assert_eq!(
            ns,
            Repr::NeighborSolicit {
                target: B,
                source_lladdr: Some(MAC_A)
            }
        );
        let (ip, message) = split(&golden_v6::NS);
        assert_eq!(emit(&ns, &A, &ip.dst_addr()), message);
        let na = parse(&golden_v6::NA_SOLICITED).unwrap();
        assert_eq!(
            na,
            Repr::NeighborAdvert {
                flags: NdFlags {
                    router: false,
                    solicited: true,
                    override_: true
                },
                target: B,
                target_lladdr: Some(MAC_B)
            }
        );
        let (_, message) = split(&golden_v6::NA_SOLICITED);
        assert_eq!(emit(&na, &B, &A), message);
        assert_eq!(Packet::new_unchecked(message).nd_flags().to_byte(), 0x60);
        assert_eq!(Packet::new_unchecked(message).target_addr(), B);
        // A probe's nonce option is walked over; there is no source link-layer address.
        let dad = parse(&golden_v6::DAD_NS).unwrap();
        assert_eq!(
            dad,
            Repr::NeighborSolicit {
                target: "2001:db8::3".parse().unwrap(),
                source_lladdr: None
            }
        );
        let (_, message) = split(&golden_v6::DAD_NS);
        let kinds: Vec<_> = Packet::new_unchecked(message)
            .nd_options()
            .map(|o| o.map(|o| (o.kind, o.bytes.len())))
            .collect();
        assert_eq!(kinds, [Ok((14, 8))]);
    }

    #[test]
    fn nd_flags() {
        for byte in 0..=255u8 {
            let flags = NdFlags::from_byte(byte);
            assert_eq!(flags.to_byte(), byte & 0xe0);
        }
        let flags = NdFlags {
            router: true,
            solicited: false,
            override_: true,
        };
        assert_eq!(flags.to_byte(), 0xa0);
    }

    /// A neighbour solicitation for B with `options` after the target, checksummed from A.
    fn ns_with(options: &[u8]) -> Vec<u8> {
        let mut bytes = vec![135, 0, 0, 0, 0, 0, 0, 0];
        bytes.extend_from_slice(&B.octets());
        bytes.extend_from_slice(options);
        Packet::new_unchecked(&mut bytes[..]).fill_checksum(&A, &B);
        bytes
    }

    #[test]
    fn nd_option_rules() {
        let lla = |kind: u8, mac: u8| [kind, 1, 2, 0, 0, 0, 0, mac];
        let cases: Vec<(&str, Vec<u8>, Result<LinkLayerAddrs, Error>)> = vec![
            ("no options", vec![], Ok(LinkLayerAddrs::default())),
            (
                "source",
                lla(1, 0x0a).to_vec(),
                Ok(LinkLayerAddrs {
                    source: Some(MAC_A),
                    target: None,
                }),
            ),
            (
                "duplicate source: the first is kept",
                [lla(1, 0x0a), lla(1, 0x0b)].concat(),
                Ok(LinkLayerAddrs {
                    source: Some(MAC_A),
                    target: None,
                }),
            ),
            (
                "unknown option, then target",
                [
                    vec![200, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                    lla(2, 0x0b).to_vec(),
                ]
                .concat(),
                Ok(LinkLayerAddrs {
                    source: None,
                    target: Some(MAC_B),
                }),
            ),
            (
                "length 0",
                vec![1, 0, 2, 0, 0, 0, 0, 0x0a],
                Err(Error::BadOption),
            ),
            (
                "length 0 after a good option",
                [lla(1, 0x0a), [14, 0, 0, 0, 0, 0, 0, 0]].concat(),
                Err(Error::BadOption),
            ),
            (
                "length 2 with 8 bytes",
                vec![14, 2, 0, 0, 0, 0, 0, 0],
                Err(Error::BadOption),
            ),
            ("one byte left", vec![1], Err(Error::BadOption)),
            (
                "7 bytes left",
                lla(1, 0x0a)[..7].to_vec(),
                Err(Error::BadOption),
            ),
            (
                "link-layer address of 16 bytes",
                vec![1, 2, 2, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0],
                Err(Error::BadLinkLayerOption),
            ),
        ];
        for (name, options, expected) in cases {
            assert_eq!(NdOptions::new(&options).lladdrs(), expected, "{name}");
            let bytes = ns_with(&options);
            let got = Repr::parse(&Packet::new_checked(&bytes[..]).unwrap(), &A, &B);
            let expected = expected.map(|found| Repr::NeighborSolicit {
                target: B,
                source_lladdr: found.source,
            });
            assert_eq!(got, expected, "{name}");
        }
        // The walk reports a bad option once, then ends.
        let mut walk = NdOptions::new(&[0, 0, 1, 1]);
        assert_eq!(walk.next(), Some(Err(Error::BadOption)));
        assert_eq!(walk.next(), None);
    }

    #[test]
    fn router_advertisement_is_recognised() {
        // Hop limit 64, M/O clear, lifetime 1800 s, reachable and retransmit 0, then a source
        // link-layer address option.
        let mut bytes = vec![134, 0, 0, 0, 64, 0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0];
        bytes.extend_from_slice(&[1, 1, 2, 0, 0, 0, 0, 0x0b]);
        let link_local: Ipv6Addr = "fe80::ff:fe00:b".parse().unwrap();
        Packet::new_unchecked(&mut bytes[..]).fill_checksum(&link_local, &ipv6::ALL_NODES);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.msg_type(), Message::RouterAdvert);
        assert_eq!(
            Repr::parse(&packet, &link_local, &ipv6::ALL_NODES),
            Ok(Repr::RouterAdvert)
        );
        // Its options are checked as any neighbour discovery message's.
        bytes[17] = 0;
        Packet::new_unchecked(&mut bytes[..]).fill_checksum(&link_local, &ipv6::ALL_NODES);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            Repr::parse(&packet, &link_local, &ipv6::ALL_NODES),
            Err(Error::BadOption)
        );
        assert_eq!(Packet::new_checked(&bytes[..15]), Err(Error::Truncated));
        // Router solicitations are not represented.
        assert_eq!(parse(&golden_v6::ROUTER_SOLICIT), Err(Error::Unsupported));
    }

    #[test]
    fn truncated() {
        for len in 0..HEADER_LEN {
            assert_eq!(
                Packet::new_checked(&[128, 0, 0, 0, 0, 0, 0, 0][..len]),
                Err(Error::Truncated)
            );
        }
        let (_, ns) = split(&golden_v6::NS);
        let (_, na) = split(&golden_v6::NA_SOLICITED);
        for message in [ns, na] {
            for len in 0..ND_LEN {
                assert_eq!(
                    Packet::new_checked(&message[..len]),
                    Err(Error::Truncated),
                    "len {len}"
                );
            }
            assert!(Packet::new_checked(&message[..ND_LEN]).is_ok());
        }
        // An unchecked view never panics.
        let packet = Packet::new_unchecked(&ns[..3]);
        assert_eq!(packet.checksum(), 0);
        assert_eq!(packet.target_addr(), Ipv6Addr::UNSPECIFIED);
        assert_eq!(packet.nd_options().next(), None);
        assert_eq!(packet.data(), &[] as &[u8]);
    }

    #[test]
    fn messages() {
        for (value, message) in [
            (1, Message::DstUnreachable),
            (2, Message::PacketTooBig),
            (3, Message::TimeExceeded),
            (4, Message::ParamProblem),
            (128, Message::EchoRequest),
            (129, Message::EchoReply),
            (133, Message::RouterSolicit),
            (134, Message::RouterAdvert),
            (135, Message::NeighborSolicit),
            (136, Message::NeighborAdvert),
            (137, Message::Redirect),
            (5, Message::Unknown(5)),
            (200, Message::Unknown(200)),
        ] {
            assert_eq!(Message::from(value), message);
            assert_eq!(u8::from(message), value);
            assert_eq!(message.is_error(), value < 128);
            assert_eq!(message.is_relayed_error(), (1..=3).contains(&value));
        }
        let all = [
            Error::Truncated,
            Error::BadChecksum,
            Error::BadOption,
            Error::BadLinkLayerOption,
            Error::Unsupported,
            Error::BadEmbeddedVersion,
        ];
        let mut names: Vec<_> = all.iter().map(|e| e.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
    }

    proptest::proptest! {
        /// Every message rvs builds parses back to itself, and its checksum verifies.
        #[test]
        fn emit_parse_round_trip(
            kind in 0u8..10,
            word in proptest::prelude::any::<u32>(),
            code in proptest::prelude::any::<u8>(),
            target in proptest::prelude::any::<u128>(),
            mac in proptest::prelude::any::<[u8; 6]>(),
            with_mac in proptest::prelude::any::<bool>(),
            flags in proptest::prelude::any::<u8>(),
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1300),
        ) {
            let [a, b, c, d] = word.to_be_bytes();
            let (ident, seq_no) = (u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]));
            let lladdr = with_mac.then_some(EthernetAddress(mac));
            let target = Ipv6Addr::from(target);
            let cut = &data[..data.len().min(MAX_INVOKING_LEN)];
            let (repr, parsed) = match kind {
                0 => (Repr::EchoRequest { ident, seq_no, data: &data }, None),
                1 => (Repr::EchoReply { ident, seq_no, data: &data }, None),
                2 => (
                    Repr::DstUnreachable { code, invoking: &data },
                    Some(Repr::DstUnreachable { code, invoking: cut }),
                ),
                3 => (
                    Repr::PacketTooBig { mtu: word, invoking: &data },
                    Some(Repr::PacketTooBig { mtu: word, invoking: cut }),
                ),
                4 => (
                    Repr::TimeExceeded { code, invoking: &data },
                    Some(Repr::TimeExceeded { code, invoking: cut }),
                ),
                5 => (
                    Repr::ParamProblem { code, pointer: word, invoking: &data },
                    Some(Repr::ParamProblem { code, pointer: word, invoking: cut }),
                ),
                6 | 7 => (Repr::NeighborSolicit { target, source_lladdr: lladdr }, None),
                _ => (
                    Repr::NeighborAdvert {
                        flags: NdFlags::from_byte(flags),
                        target,
                        target_lladdr: lladdr,
                    },
                    None,
                ),
            };
            let bytes = emit(&repr, &A, &B);
            let packet = Packet::new_checked(&bytes[..]).unwrap();
            proptest::prop_assert!(packet.verify_checksum(&A, &B));
            proptest::prop_assert_eq!(Repr::parse(&packet, &A, &B), Ok(parsed.unwrap_or(repr)));
        }

        /// Arbitrary bytes never panic any accessor or parser.
        #[test]
        fn arbitrary_bytes(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..120)) {
            let packet = Packet::new_unchecked(&bytes[..]);
            let _ = (
                packet.check_len(),
                packet.msg_type(),
                packet.echo_ident(),
                packet.mtu(),
                packet.nd_flags(),
                packet.target_addr(),
                packet.data(),
                packet.verify_checksum(&A, &B),
            );
            let _ = packet.nd_options().collect::<Vec<_>>();
            let _ = packet.nd_options().lladdrs();
            if let Ok(embedded) = packet.embedded() {
                let _ = ipv6::walk(embedded.header.next_header(), embedded.data);
            }
            let _ = Repr::parse(&packet, &A, &B);
            // Each bad option is reported once and ends the walk: never more items than
            // 8-byte options fit.
            proptest::prop_assert!(NdOptions::new(&bytes).count() <= bytes.len() / 8 + 1);
        }
    }
}
