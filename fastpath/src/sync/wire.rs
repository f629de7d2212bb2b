//! The IPVS sync protocol, version 1, as Linux `net/netfilter/ipvs/ip_vs_sync.c` writes and
//! reads it (`ip_vs_sync_conn`, `ip_vs_process_message`, `ip_vs_proc_sync_conn`), so that an
//! rvs backup takes connections from a kernel IPVS master and a kernel backup from rvs.
//!
//! # Message
//!
//! One UDP datagram (to [`SYNC_GROUP`]:[`SYNC_PORT`] by default), all fields in network order:
//!
//! ```text
//!  0        1        2        3
//! +--------+--------+--------+--------+
//! |   0    | syncid |      size       |   size: the whole datagram, header included
//! +--------+--------+--------+--------+
//! |nr_conns| ver 1  |    spare 0      |
//! +--------+--------+--------+--------+
//! | entry 1, padding to 4 bytes, entry 2, ..., entry n (not padded)
//! ```
//!
//! The first byte is 0 so that a version 0 receiver (whose first byte is `nr_conns`) sees an
//! empty message; a message whose first byte is not 0 *is* version 0, which rvs does not
//! read ([`MessageError::V0Message`]).
//!
//! # Entry (type 0: IPv4, [`V4_CONN_LEN`] bytes before its options)
//!
//! ```text
//! +--------+--------+--------+--------+
//! |  type  |protocol| ver(4)| size(12)|   size: the entry with its options, not the padding
//! +--------+--------+--------+--------+
//! |               flags               |   IP_VS_CONN_F_* (CONN_F_* here)
//! +--------+--------+--------+--------+
//! |      state      |      cport      |
//! |      vport      |      dport      |
//! |              fwmark               |
//! |         timeout (seconds)         |
//! |               caddr               |
//! |               vaddr               |
//! |               daddr               |
//! +--------+--------+--------+--------+
//! | opt type | opt len | opt data ... (len bytes; len 0 is malformed)
//! ```
//!
//! The kernel pads *before* an entry that follows one whose end is not 4-byte aligned: the
//! padding is counted in the message's `size` but not in any entry's, and the last entry is
//! not padded. A reader finds entry n+1 at entry n's start plus its size rounded up to 4.
//! Type bit 0 marks an IPv6 entry (72 bytes before the options; rvs reports it as
//! [`EntryError::Ipv6`]); any other type bit set is malformed.
//!
//! Options: [`OPT_SEQ_DATA`] (24 bytes: the in then out sequence adjustment, each
//! `init_seq`, `delta`, `previous_delta`), which the kernel sends exactly when the flags have
//! [`CONN_F_SEQ_MASK`] bits; `PE_DATA` and `PE_NAME` (persistence engines, e.g. SIP callid,
//! which rvs has none of). Bit [`OPT_F_OPTIONAL`] (0x40) marks an option a receiver may skip;
//! a receiver matches the known options with that bit masked off (as the kernel does: 0x41
//! is read as SEQ_DATA). The content of the padding is not read.
//!
//! # What a receiver does with errors (as the kernel)
//!
//! - Message checks ([`decode`]): shorter than its header, `size` not the datagram's length,
//!   syncid not the filter's (filter 0 accepts any), not version 1 with reserved and spare 0:
//!   the message is dropped ([`MessageError`]).
//! - Then `nr_conns` entries are read; bytes after them are ignored. An entry that does not
//!   fit in the datagram, has an entry version other than 0, a size shorter than its fixed
//!   part, another type, an option that runs past the entry or a known option of the wrong
//!   length or twice ends the message: this entry and the rest are dropped
//!   ([`EntryError::ends_message`]; the kernel's "Dropping buffer").
//! - An unknown mandatory option, persistence-engine data and (in rvs) an IPv6 entry drop
//!   that connection only; the next entry is read.
//! - Protocol, state and flags are not checked here: the kernel masks the flags with
//!   [`CONN_F_BACKUP_MASK`] and checks protocol and state on install, and so does rvs's
//!   receiver.
//!
//! # rvs's FULLNAT option ([`OPT_FULLNAT`] = 0x60)
//!
//! FULLNAT connections need their local address and port and the sequence translation on a
//! backup. They travel in one optional option, so a kernel peer skips it. A kernel backup
//! still installs the connection with forwarding method 5, for which it has no transmitter
//! (`ip_vs_bind_xmit` knows 0 to 4): its packets would be accepted locally (`packet_xmit is
//! null`, `NF_ACCEPT`), not forwarded, so FULLNAT connections are for rvs peers only.
//!
//! Layout, network order, [`FULLNAT_V1_LEN`] = 22 data bytes (24 with type and length, so an
//! entry with only this option is 60 bytes and stays 4-byte aligned; with SEQ_DATA it is 86
//! and the next entry is padded):
//!
//! ```text
//! data offset  0: version (1)
//!              1: flags, bit 0: fdata_seq is valid; other bits 0 when sent, ignored read
//!              2: lport (be16)
//!              4: laddr
//!              8: client_isn (be32)
//!             12: delta (be32)
//!             16: fdata_seq (be32; 0 when not valid)
//!             20: inserted (be16)
//! ```
//!
//! A receiver that sees option 0x60 with another version skips it (the connection decodes
//! without FULLNAT state), so a later layout gets a new version number rather than a new
//! option type; version 1 of another length is malformed (and, like a known kernel option
//! of the wrong length, ends the message). Why type 0x20 (| 0x40): the kernel numbers its
//! options from 1 up (1, 2, 3, unchanged since version 1 came in 2010) and spends 7 on the
//! optional bit's own definition (`IPVS_OPT_PARAM`, `IPVS_OPT_F_PARAM` = `1 << (7 - 1)`), so
//! new kernel options would be 4, 5, 6, and its bitmap of options seen (`IPVS_OPT_F_*` =
//! `1 << (type - 1)` in a u32) keeps kernel types within 1 to 32. 0x20 = 32 is the far end of
//! that range from where the kernel allocates, and with 0x40 set a kernel backup skips it
//! whatever it comes to mean there.

use std::fmt;
use std::net::Ipv4Addr;

/// The kernel's default multicast group (`IP_VS_SYNC_GROUP`).
pub const SYNC_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 81);
/// The kernel's default UDP port (`IP_VS_SYNC_PORT`).
pub const SYNC_PORT: u16 = 8848;
/// The message version this codec writes and reads (`SYNC_PROTO_VER`).
pub const SYNC_PROTO_VER: u8 = 1;
/// Length of the version 1 message header.
pub const MESSAGE_HEADER_LEN: usize = 8;
/// Length of an IPv4 entry without options (`struct ip_vs_sync_v4`).
pub const V4_CONN_LEN: usize = 36;
/// Length of an IPv6 entry without options (`struct ip_vs_sync_v6`).
pub const V6_CONN_LEN: usize = 72;
/// Longest IPv4 entry rvs writes: the fixed part, SEQ_DATA and the FULLNAT option.
pub const MAX_V4_ENTRY_LEN: usize =
    V4_CONN_LEN + OPT_HEADER_LEN + SEQ_DATA_LEN + OPT_HEADER_LEN + FULLNAT_V1_LEN;

/// Option type and length bytes in front of each option's data.
pub const OPT_HEADER_LEN: usize = 2;
/// Option: sequence adjustment (`IPVS_OPT_SEQ_DATA`).
pub const OPT_SEQ_DATA: u8 = 1;
/// Option: persistence engine data (`IPVS_OPT_PE_DATA`).
pub const OPT_PE_DATA: u8 = 2;
/// Option: persistence engine name (`IPVS_OPT_PE_NAME`).
pub const OPT_PE_NAME: u8 = 3;
/// Option type bit: a receiver that does not know the option skips it
/// (`IPVS_OPT_F_PARAM`).
pub const OPT_F_OPTIONAL: u8 = 0x40;
/// rvs's FULLNAT option (optional; see the module doc).
pub const OPT_FULLNAT: u8 = OPT_F_OPTIONAL | 0x20;
/// Data length of SEQ_DATA.
pub const SEQ_DATA_LEN: usize = 24;
/// The FULLNAT option's version this codec writes and reads.
pub const FULLNAT_VERSION: u8 = 1;
/// Data length of the FULLNAT option, version 1.
pub const FULLNAT_V1_LEN: usize = 22;
/// FULLNAT option flag: `fdata_seq` is valid.
const FULLNAT_F_FDATA_SEQ: u8 = 0x01;
/// Longest persistence engine name (`IP_VS_PENAME_MAXLEN`).
const PE_NAME_MAXLEN: usize = 16;

/// Entry type bit: IPv6 addresses (`STYPE_F_INET6`).
const STYPE_F_INET6: u8 = 0x01;
/// Entry version in the top 4 bits of `ver_size` (`SVER_SHIFT`), length in the rest.
const SVER_SHIFT: u16 = 12;
const SVER_MASK: u16 = 0x0fff;

/// Forwarding method bits of the flags (`IP_VS_CONN_F_FWD_MASK`).
pub const CONN_F_FWD_MASK: u32 = 0x0007;
/// Forwarding method NAT (`IP_VS_CONN_F_MASQ`).
pub const CONN_F_MASQ: u32 = 0x0000;
/// Forwarding method local node (`IP_VS_CONN_F_LOCALNODE`).
pub const CONN_F_LOCALNODE: u32 = 0x0001;
/// Forwarding method tunnel, TUN (`IP_VS_CONN_F_TUNNEL`).
pub const CONN_F_TUNNEL: u32 = 0x0002;
/// Forwarding method direct routing, DR (`IP_VS_CONN_F_DROUTE`).
pub const CONN_F_DROUTE: u32 = 0x0003;
/// Forwarding method cache bypass (`IP_VS_CONN_F_BYPASS`).
pub const CONN_F_BYPASS: u32 = 0x0004;
/// Forwarding method FULLNAT: DPVS's value (`DPVS_FWD_MODE_FNAT`), unknown to the kernel, so
/// only rvs peers understand it.
pub const CONN_F_FULLNAT: u32 = 0x0005;
/// Entry created by sync (`IP_VS_CONN_F_SYNC`): set by the receiver, not sent.
pub const CONN_F_SYNC: u32 = 0x0020;
/// Hashed entry (`IP_VS_CONN_F_HASHED`): kernel-internal, the kernel clears it when sending.
pub const CONN_F_HASHED: u32 = 0x0040;
/// No output packets (`IP_VS_CONN_F_NOOUTPUT`).
pub const CONN_F_NOOUTPUT: u32 = 0x0080;
/// Not established (`IP_VS_CONN_F_INACTIVE`).
pub const CONN_F_INACTIVE: u32 = 0x0100;
/// Output sequence adjustment (`IP_VS_CONN_F_OUT_SEQ`).
pub const CONN_F_OUT_SEQ: u32 = 0x0200;
/// Input sequence adjustment (`IP_VS_CONN_F_IN_SEQ`).
pub const CONN_F_IN_SEQ: u32 = 0x0400;
/// Either sequence adjustment (`IP_VS_CONN_F_SEQ_MASK`): the kernel sends SEQ_DATA then.
pub const CONN_F_SEQ_MASK: u32 = CONN_F_OUT_SEQ | CONN_F_IN_SEQ;
/// Client port not known yet (`IP_VS_CONN_F_NO_CPORT`).
pub const CONN_F_NO_CPORT: u32 = 0x0800;
/// Persistence template, not a connection (`IP_VS_CONN_F_TEMPLATE`).
pub const CONN_F_TEMPLATE: u32 = 0x1000;
/// One-packet scheduling (`IP_VS_CONN_F_ONE_PACKET`): never synced.
pub const CONN_F_ONE_PACKET: u32 = 0x2000;
/// The flags a backup takes from a new entry (`IP_VS_CONN_F_BACKUP_MASK`).
pub const CONN_F_BACKUP_MASK: u32 = CONN_F_FWD_MASK
    | CONN_F_NOOUTPUT
    | CONN_F_INACTIVE
    | CONN_F_SEQ_MASK
    | CONN_F_NO_CPORT
    | CONN_F_TEMPLATE;
/// The flags a backup updates on an entry it has (`IP_VS_CONN_F_BACKUP_UPD_MASK`).
pub const CONN_F_BACKUP_UPD_MASK: u32 = CONN_F_INACTIVE | CONN_F_SEQ_MASK;

/// One connection as a sync message carries it (IPv4 entries; type 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncConn {
    /// IPPROTO_TCP 6, UDP 17 (any value decodes; the receiver decides).
    pub protocol: u8,
    /// `CONN_F_*` exactly as on the wire (forwarding method in bits 0-2). Written as given:
    /// the kernel leaves out its internal [`CONN_F_HASHED`] when it sends, and a receiver
    /// keeps only [`CONN_F_BACKUP_MASK`].
    pub flags: u32,
    /// IPVS state number (TCP 0..=10, UDP 0; templates 0..=1).
    pub state: u16,
    pub cport: u16,
    pub vport: u16,
    pub dport: u16,
    pub fwmark: u32,
    /// Seconds; 0 asks the receiver for the protocol's timeout of `state`.
    pub timeout: u32,
    pub caddr: Ipv4Addr,
    pub vaddr: Ipv4Addr,
    pub daddr: Ipv4Addr,
    /// [`OPT_SEQ_DATA`]: sent when `Some` (the kernel sends it exactly when `flags` has
    /// [`CONN_F_SEQ_MASK`] bits).
    pub seq: Option<SeqData>,
    /// rvs's [`OPT_FULLNAT`]: sent when `Some`.
    pub fullnat: Option<FullNatSync>,
}

/// One direction's sequence adjustment (`struct ip_vs_seq`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SeqPart {
    pub init_seq: u32,
    pub delta: u32,
    pub previous_delta: u32,
}

/// Both directions' sequence adjustment (`struct ip_vs_sync_conn_options`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SeqData {
    pub in_seq: SeqPart,
    pub out_seq: SeqPart,
}

/// FULLNAT state only rvs peers understand (version 1 of the option).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FullNatSync {
    pub laddr: Ipv4Addr,
    pub lport: u16,
    /// Sequence number of the client's SYN.
    pub client_isn: u32,
    /// Balancer ISN towards the real server minus client ISN.
    pub delta: u32,
    /// Real server's ISN+1 once its SYN+ACK passed.
    pub fdata_seq: Option<u32>,
    /// Bytes of a PROXY header inserted into the client's stream (0 = none).
    pub inserted: u16,
}

impl SyncConn {
    /// Length of this connection's entry with its options, without padding (the entry's
    /// `size`).
    pub fn entry_len(&self) -> usize {
        let seq = if self.seq.is_some() {
            OPT_HEADER_LEN + SEQ_DATA_LEN
        } else {
            0
        };
        let fullnat = if self.fullnat.is_some() {
            OPT_HEADER_LEN + FULLNAT_V1_LEN
        } else {
            0
        };
        V4_CONN_LEN + seq + fullnat
    }

    /// Appends the entry (without padding) to `out`.
    fn write(&self, out: &mut Vec<u8>) {
        // entry_len() is at most MAX_V4_ENTRY_LEN, far below the 12 bits of size; version 0.
        let ver_size = (self.entry_len() as u16) & SVER_MASK;
        out.push(0);
        out.push(self.protocol);
        out.extend_from_slice(&ver_size.to_be_bytes());
        out.extend_from_slice(&self.flags.to_be_bytes());
        out.extend_from_slice(&self.state.to_be_bytes());
        out.extend_from_slice(&self.cport.to_be_bytes());
        out.extend_from_slice(&self.vport.to_be_bytes());
        out.extend_from_slice(&self.dport.to_be_bytes());
        out.extend_from_slice(&self.fwmark.to_be_bytes());
        out.extend_from_slice(&self.timeout.to_be_bytes());
        out.extend_from_slice(&self.caddr.octets());
        out.extend_from_slice(&self.vaddr.octets());
        out.extend_from_slice(&self.daddr.octets());
        if let Some(seq) = &self.seq {
            out.push(OPT_SEQ_DATA);
            out.push(SEQ_DATA_LEN as u8);
            for part in [&seq.in_seq, &seq.out_seq] {
                out.extend_from_slice(&part.init_seq.to_be_bytes());
                out.extend_from_slice(&part.delta.to_be_bytes());
                out.extend_from_slice(&part.previous_delta.to_be_bytes());
            }
        }
        if let Some(fullnat) = &self.fullnat {
            out.push(OPT_FULLNAT);
            out.push(FULLNAT_V1_LEN as u8);
            out.push(FULLNAT_VERSION);
            out.push(if fullnat.fdata_seq.is_some() {
                FULLNAT_F_FDATA_SEQ
            } else {
                0
            });
            out.extend_from_slice(&fullnat.lport.to_be_bytes());
            out.extend_from_slice(&fullnat.laddr.octets());
            out.extend_from_slice(&fullnat.client_isn.to_be_bytes());
            out.extend_from_slice(&fullnat.delta.to_be_bytes());
            out.extend_from_slice(&fullnat.fdata_seq.unwrap_or(0).to_be_bytes());
            out.extend_from_slice(&fullnat.inserted.to_be_bytes());
        }
    }
}

/// [`MessageBuilder::push`]'s answer when the connection does not go into this message: it
/// would pass `maxlen`, or the message has 255 connections. Send the message
/// ([`MessageBuilder::take`] or [`MessageBuilder::as_bytes`] + [`MessageBuilder::clear`])
/// and push again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

impl fmt::Display for Full {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sync message full")
    }
}

impl std::error::Error for Full {}

/// Builds one message (header + entries) of at most `maxlen` bytes into a buffer allocated
/// once: [`push`](Self::push) never allocates.
#[derive(Debug, Clone)]
pub struct MessageBuilder {
    buf: Vec<u8>,
    syncid: u8,
    maxlen: usize,
}

impl MessageBuilder {
    /// A builder for messages of `syncid` of at most `maxlen` bytes. `maxlen` is raised to
    /// hold at least one entry of any shape (the kernel likewise grows a buffer for an entry
    /// larger than `sync_maxlen`) and lowered to 65,535 (the `size` field is 16 bits).
    pub fn new(syncid: u8, maxlen: usize) -> MessageBuilder {
        let maxlen = maxlen.clamp(MESSAGE_HEADER_LEN + MAX_V4_ENTRY_LEN, usize::from(u16::MAX));
        let mut builder = MessageBuilder {
            buf: Vec::with_capacity(maxlen),
            syncid,
            maxlen,
        };
        builder.clear();
        builder
    }

    /// The message length limit in force (after `new`'s clamping).
    pub fn maxlen(&self) -> usize {
        self.maxlen
    }

    /// Appends one entry (with its options; padding before it if the previous one ended off
    /// 4-byte alignment). `Err(Full)` when it does not fit in `maxlen` or 255 entries are
    /// already in (`nr_conns` is a u8); the message is unchanged then.
    pub fn push(&mut self, conn: &SyncConn) -> Result<(), Full> {
        let pad = self.buf.len().wrapping_neg() & 3;
        let len = conn.entry_len();
        if self.len() == usize::from(u8::MAX) || self.buf.len() + pad + len > self.maxlen {
            return Err(Full);
        }
        self.buf.resize(self.buf.len() + pad, 0);
        conn.write(&mut self.buf);
        let nr_conns = self.header_byte(4).wrapping_add(1);
        self.set_header(nr_conns);
        Ok(())
    }

    /// True when no connection is in the message.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of connections in the message.
    pub fn len(&self) -> usize {
        usize::from(self.header_byte(4))
    }

    /// The message so far, a valid message at any time (size and `nr_conns` kept up to date).
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Empties the message, keeping the buffer.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.buf
            .extend_from_slice(&[0, self.syncid, 0, 0, 0, SYNC_PROTO_VER, 0, 0]);
        self.set_header(0);
    }

    /// The message bytes; the builder starts a new message in a new buffer of `maxlen`
    /// capacity (one allocation per message).
    pub fn take(&mut self) -> Vec<u8> {
        let message = std::mem::replace(&mut self.buf, Vec::with_capacity(self.maxlen));
        self.clear();
        message
    }

    fn header_byte(&self, at: usize) -> u8 {
        self.buf.get(at).copied().unwrap_or(0)
    }

    /// Writes `size` (the buffer's length, at most `maxlen` ≤ 65,535) and `nr_conns`.
    fn set_header(&mut self, nr_conns: u8) {
        let size = u16::try_from(self.buf.len())
            .unwrap_or(u16::MAX)
            .to_be_bytes();
        if let Some(header) = self.buf.get_mut(..MESSAGE_HEADER_LEN) {
            header[2..4].copy_from_slice(&size);
            header[4] = nr_conns;
        }
    }
}

/// Why a whole received message is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageError {
    /// Shorter than a message header.
    Short,
    /// The first byte is not 0: a version 0 message (its first byte is `nr_conns`).
    V0Message,
    /// The header's version is not 1.
    BadVersion(u8),
    /// Version 1 with a spare field other than 0 (the kernel reads it as an empty version 0
    /// message).
    BadSpare(u16),
    /// The header's `size` is not the datagram's length.
    BadSize { size: u16, len: usize },
    /// Another sync group's message (the syncid received).
    SyncIdMismatch(u8),
}

impl MessageError {
    /// Every [`MessageError::reason`], in a fixed order (for counters that list zeros).
    pub const REASONS: [&'static str; 6] = [
        "short",
        "v0_message",
        "version",
        "spare",
        "bad_size",
        "syncid",
    ];

    /// Counter name.
    pub fn reason(&self) -> &'static str {
        match self {
            MessageError::Short => "short",
            MessageError::V0Message => "v0_message",
            MessageError::BadVersion(_) => "version",
            MessageError::BadSpare(_) => "spare",
            MessageError::BadSize { .. } => "bad_size",
            MessageError::SyncIdMismatch(_) => "syncid",
        }
    }
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageError::Short => write!(f, "sync message shorter than its header"),
            MessageError::V0Message => write!(f, "sync message of version 0 (not supported)"),
            MessageError::BadVersion(v) => write!(f, "sync message of version {v}"),
            MessageError::BadSpare(spare) => {
                write!(f, "sync message with spare field {spare:#06x}, not 0")
            }
            MessageError::BadSize { size, len } => {
                write!(
                    f,
                    "sync message size field {size} for a datagram of {len} bytes"
                )
            }
            MessageError::SyncIdMismatch(id) => write!(f, "sync message of syncid {id}"),
        }
    }
}

impl std::error::Error for MessageError {}

/// Why one entry of a message is not a connection. After those for which
/// [`ends_message`](Self::ends_message) is true, the rest of the message is not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryError {
    /// The entry's fixed part or its `size` runs past the datagram.
    Truncated,
    /// Entry version (top 4 bits of `ver_size`) other than 0.
    BadEntryVersion(u8),
    /// Entry `size` shorter than the fixed part of its type.
    BadEntrySize(u16),
    /// Type with bits other than the IPv6 bit.
    BadType(u8),
    /// IPv6 entry (type bit 0): not supported yet; the next entry is read.
    Ipv6,
    /// An option without the optional bit that rvs does not know (its type); the kernel drops
    /// that connection too, and the next entry is read.
    UnknownMandatoryOption(u8),
    /// An option with no data, cut short or running past the entry, or a known option of the
    /// wrong length (its type).
    BadOptionLength(u8),
    /// A known option twice (its type).
    DuplicateOption(u8),
    /// Persistence engine data (e.g. SIP's callid): rvs has no persistence engine, as a kernel
    /// without the engine's module drops the connection.
    PersistenceEngine,
}

impl EntryError {
    /// Every [`EntryError::reason`], in a fixed order (for counters that list zeros).
    pub const REASONS: [&'static str; 9] = [
        "truncated",
        "entry_version",
        "entry_size",
        "entry_type",
        "ipv6",
        "unknown_option",
        "option_length",
        "duplicate_option",
        "pe_data",
    ];

    /// Counter name.
    pub fn reason(&self) -> &'static str {
        match self {
            EntryError::Truncated => "truncated",
            EntryError::BadEntryVersion(_) => "entry_version",
            EntryError::BadEntrySize(_) => "entry_size",
            EntryError::BadType(_) => "entry_type",
            EntryError::Ipv6 => "ipv6",
            EntryError::UnknownMandatoryOption(_) => "unknown_option",
            EntryError::BadOptionLength(_) => "option_length",
            EntryError::DuplicateOption(_) => "duplicate_option",
            EntryError::PersistenceEngine => "pe_data",
        }
    }

    /// True when the rest of the message is dropped too, as the kernel drops it.
    pub fn ends_message(&self) -> bool {
        !matches!(
            self,
            EntryError::Ipv6
                | EntryError::UnknownMandatoryOption(_)
                | EntryError::PersistenceEngine
        )
    }
}

impl fmt::Display for EntryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntryError::Truncated => write!(f, "sync entry runs past the message"),
            EntryError::BadEntryVersion(v) => write!(f, "sync entry of version {v}"),
            EntryError::BadEntrySize(size) => write!(f, "sync entry size {size} too short"),
            EntryError::BadType(t) => write!(f, "sync entry of type {t:#04x}"),
            EntryError::Ipv6 => write!(f, "IPv6 sync entry (not supported)"),
            EntryError::UnknownMandatoryOption(t) => {
                write!(f, "unknown mandatory sync option {t:#04x}")
            }
            EntryError::BadOptionLength(t) => write!(f, "sync option {t:#04x} of bad length"),
            EntryError::DuplicateOption(t) => write!(f, "sync option {t:#04x} twice"),
            EntryError::PersistenceEngine => {
                write!(f, "sync entry with persistence engine data (not supported)")
            }
        }
    }
}

impl std::error::Error for EntryError {}

/// Decodes one received datagram's header. `syncid_filter`: 0 accepts any syncid (as the
/// kernel's backup). The entries are read as the iterator goes.
pub fn decode(datagram: &[u8], syncid_filter: u8) -> Result<Entries<'_>, MessageError> {
    // The kernel's order: the version 0 header's 4 bytes, size, syncid, then the version.
    let (Some(&reserved), Some(&syncid), Some(&size_hi), Some(&size_lo)) = (
        datagram.first(),
        datagram.get(1),
        datagram.get(2),
        datagram.get(3),
    ) else {
        return Err(MessageError::Short);
    };
    let size = u16::from_be_bytes([size_hi, size_lo]);
    if usize::from(size) != datagram.len() {
        return Err(MessageError::BadSize {
            size,
            len: datagram.len(),
        });
    }
    if syncid_filter != 0 && syncid != syncid_filter {
        return Err(MessageError::SyncIdMismatch(syncid));
    }
    if reserved != 0 {
        return Err(MessageError::V0Message);
    }
    let Some(&[nr_conns, version, spare_hi, spare_lo]) = datagram.get(4..MESSAGE_HEADER_LEN) else {
        return Err(MessageError::Short);
    };
    if version != SYNC_PROTO_VER {
        return Err(MessageError::BadVersion(version));
    }
    let spare = u16::from_be_bytes([spare_hi, spare_lo]);
    if spare != 0 {
        return Err(MessageError::BadSpare(spare));
    }
    Ok(Entries {
        datagram,
        syncid,
        nr_conns,
        at: MESSAGE_HEADER_LEN,
        left: nr_conns,
    })
}

/// The entries of a decoded message: each `Ok(SyncConn)` or `Err(EntryError)`; after an error
/// that [ends the message](EntryError::ends_message) the iterator ends.
#[derive(Debug, Clone)]
pub struct Entries<'a> {
    datagram: &'a [u8],
    syncid: u8,
    nr_conns: u8,
    /// Where the next entry starts (can pass the end after the last entry's padding).
    at: usize,
    left: u8,
}

impl Entries<'_> {
    /// The message's syncid.
    pub fn syncid(&self) -> u8 {
        self.syncid
    }

    /// The message's `nr_conns`.
    pub fn nr_conns(&self) -> u8 {
        self.nr_conns
    }

    fn entry(&mut self) -> Result<SyncConn, EntryError> {
        let rest = self.datagram.get(self.at..).unwrap_or(&[]);
        if rest.len() < V4_CONN_LEN {
            return Err(EntryError::Truncated);
        }
        let ver_size = be16(rest, 2);
        let size = ver_size & SVER_MASK;
        let Some(entry) = rest.get(..usize::from(size)) else {
            return Err(EntryError::Truncated);
        };
        let version = (ver_size >> SVER_SHIFT) as u8;
        if version != 0 {
            return Err(EntryError::BadEntryVersion(version));
        }
        self.at += (usize::from(size) + 3) & !3;
        // The type is the first byte even of an entry whose size is too short to hold it.
        parse_entry(rest.first().copied().unwrap_or(0), entry, size)
    }
}

impl Iterator for Entries<'_> {
    type Item = Result<SyncConn, EntryError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let entry = self.entry();
        if let Err(e) = &entry {
            if e.ends_message() {
                self.left = 0;
            }
        }
        Some(entry)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(usize::from(self.left)))
    }
}

/// Reads one entry of exactly its `size` bytes.
fn parse_entry(entry_type: u8, entry: &[u8], size: u16) -> Result<SyncConn, EntryError> {
    let fixed_len = if entry_type & STYPE_F_INET6 != 0 {
        V6_CONN_LEN
    } else if entry_type == 0 {
        V4_CONN_LEN
    } else {
        return Err(EntryError::BadType(entry_type));
    };
    let Some(mut options) = entry.get(fixed_len..) else {
        return Err(EntryError::BadEntrySize(size));
    };
    let mut seq = None;
    let mut fullnat = None;
    let mut pe_data = false;
    let mut pe_name = false;
    while let Some((&opt_type, rest)) = options.split_first() {
        let Some((&opt_len, rest)) = rest.split_first() else {
            return Err(EntryError::BadOptionLength(opt_type));
        };
        let opt_len = usize::from(opt_len);
        let Some(data) = rest.get(..opt_len).filter(|_| opt_len != 0) else {
            return Err(EntryError::BadOptionLength(opt_type));
        };
        options = rest.get(opt_len..).unwrap_or(&[]);
        match opt_type & !OPT_F_OPTIONAL {
            OPT_SEQ_DATA => {
                if opt_len != SEQ_DATA_LEN {
                    return Err(EntryError::BadOptionLength(opt_type));
                }
                if seq.is_some() {
                    return Err(EntryError::DuplicateOption(opt_type));
                }
                seq = Some(parse_seq(data));
            }
            OPT_PE_DATA => {
                if pe_data {
                    return Err(EntryError::DuplicateOption(opt_type));
                }
                pe_data = true;
            }
            OPT_PE_NAME => {
                if opt_len > PE_NAME_MAXLEN {
                    return Err(EntryError::BadOptionLength(opt_type));
                }
                if pe_name {
                    return Err(EntryError::DuplicateOption(opt_type));
                }
                pe_name = true;
            }
            _ if opt_type == OPT_FULLNAT && data.first() == Some(&FULLNAT_VERSION) => {
                if opt_len != FULLNAT_V1_LEN {
                    return Err(EntryError::BadOptionLength(opt_type));
                }
                if fullnat.is_some() {
                    return Err(EntryError::DuplicateOption(opt_type));
                }
                fullnat = Some(parse_fullnat(data));
            }
            _ if opt_type & OPT_F_OPTIONAL != 0 => {}
            _ => return Err(EntryError::UnknownMandatoryOption(opt_type)),
        }
    }
    if fixed_len == V6_CONN_LEN {
        return Err(EntryError::Ipv6);
    }
    // A PE name alone is harmless (the kernel ignores it without data); data needs an engine.
    if pe_data {
        return Err(EntryError::PersistenceEngine);
    }
    Ok(SyncConn {
        protocol: entry.get(1).copied().unwrap_or(0),
        flags: be32(entry, 4),
        state: be16(entry, 8),
        cport: be16(entry, 10),
        vport: be16(entry, 12),
        dport: be16(entry, 14),
        fwmark: be32(entry, 16),
        timeout: be32(entry, 20),
        caddr: Ipv4Addr::from(be32(entry, 24)),
        vaddr: Ipv4Addr::from(be32(entry, 28)),
        daddr: Ipv4Addr::from(be32(entry, 32)),
        seq,
        fullnat,
    })
}

fn parse_seq(data: &[u8]) -> SeqData {
    let part = |at| SeqPart {
        init_seq: be32(data, at),
        delta: be32(data, at + 4),
        previous_delta: be32(data, at + 8),
    };
    SeqData {
        in_seq: part(0),
        out_seq: part(12),
    }
}

fn parse_fullnat(data: &[u8]) -> FullNatSync {
    let flags = data.get(1).copied().unwrap_or(0);
    FullNatSync {
        lport: be16(data, 2),
        laddr: Ipv4Addr::from(be32(data, 4)),
        client_isn: be32(data, 8),
        delta: be32(data, 12),
        fdata_seq: (flags & FULLNAT_F_FDATA_SEQ != 0).then(|| be32(data, 16)),
        inserted: be16(data, 20),
    }
}

/// The big-endian u16 at `at`, or 0 past the end (callers check lengths first).
fn be16(buf: &[u8], at: usize) -> u16 {
    buf.get(at..at + 2)
        .and_then(|b| <[u8; 2]>::try_from(b).ok())
        .map_or(0, u16::from_be_bytes)
}

/// The big-endian u32 at `at`, or 0 past the end (callers check lengths first).
fn be32(buf: &[u8], at: usize) -> u32 {
    buf.get(at..at + 4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map_or(0, u32::from_be_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> SyncConn {
        SyncConn {
            protocol: 6,
            flags: CONN_F_MASQ,
            state: 1,
            cport: 40000,
            vport: 80,
            dport: 8080,
            fwmark: 0,
            timeout: 900,
            caddr: Ipv4Addr::new(192, 0, 2, 1),
            vaddr: Ipv4Addr::new(10, 0, 0, 100),
            daddr: Ipv4Addr::new(192, 168, 10, 2),
            seq: None,
            fullnat: None,
        }
    }

    #[test]
    fn entry_len_counts_each_option() {
        let mut c = conn();
        assert_eq!(c.entry_len(), 36);
        c.seq = Some(SeqData::default());
        assert_eq!(c.entry_len(), 62);
        c.fullnat = Some(FullNatSync {
            laddr: Ipv4Addr::new(10, 0, 0, 200),
            lport: 1025,
            client_isn: 1,
            delta: 2,
            fdata_seq: None,
            inserted: 0,
        });
        assert_eq!(c.entry_len(), 86);
        assert_eq!(c.entry_len(), MAX_V4_ENTRY_LEN);
    }

    #[test]
    fn empty_builder_is_a_valid_empty_message() {
        let builder = MessageBuilder::new(7, 1500);
        assert_eq!(builder.as_bytes(), [0, 7, 0, 8, 0, 1, 0, 0]);
        assert!(builder.is_empty());
        let entries = decode(builder.as_bytes(), 7).expect("valid header");
        assert_eq!((entries.syncid(), entries.nr_conns()), (7, 0));
        assert_eq!(entries.count(), 0);
    }

    #[test]
    fn maxlen_is_clamped_to_one_entry_and_to_the_size_field() {
        assert_eq!(MessageBuilder::new(0, 0).maxlen(), 8 + 86);
        assert_eq!(MessageBuilder::new(0, 1 << 20).maxlen(), 65535);
        let mut builder = MessageBuilder::new(0, 0);
        let mut big = conn();
        big.seq = Some(SeqData::default());
        big.fullnat = Some(FullNatSync {
            laddr: Ipv4Addr::new(10, 0, 0, 200),
            lport: 1025,
            client_isn: 0,
            delta: 0,
            fdata_seq: Some(5),
            inserted: 0,
        });
        assert_eq!(builder.push(&big), Ok(()));
        assert_eq!(builder.push(&conn()), Err(Full));
        assert_eq!(builder.as_bytes().len(), 94);
    }

    #[test]
    fn push_stops_at_255_connections() {
        let mut builder = MessageBuilder::new(1, 65535);
        for _ in 0..255 {
            assert_eq!(builder.push(&conn()), Ok(()));
        }
        assert_eq!(builder.push(&conn()), Err(Full));
        assert_eq!(builder.len(), 255);
        let message = builder.take();
        assert_eq!(message.len(), 8 + 255 * 36);
        assert_eq!(&message[..8], [0, 1, 0x23, 0xe4, 255, 1, 0, 0]);
        assert!(builder.is_empty());
        assert_eq!(builder.as_bytes(), [0, 1, 0, 8, 0, 1, 0, 0]);
        let decoded: Vec<_> = decode(&message, 1).expect("valid").collect();
        assert_eq!(decoded.len(), 255);
        assert!(decoded.iter().all(|c| *c == Ok(conn())));
    }

    #[test]
    fn error_reasons_are_distinct_counter_names() {
        let messages = [
            MessageError::Short,
            MessageError::V0Message,
            MessageError::BadVersion(2),
            MessageError::BadSpare(1),
            MessageError::BadSize { size: 1, len: 2 },
            MessageError::SyncIdMismatch(3),
        ];
        let entries = [
            EntryError::Truncated,
            EntryError::BadEntryVersion(1),
            EntryError::BadEntrySize(1),
            EntryError::BadType(2),
            EntryError::Ipv6,
            EntryError::UnknownMandatoryOption(5),
            EntryError::BadOptionLength(1),
            EntryError::DuplicateOption(1),
            EntryError::PersistenceEngine,
        ];
        // REASONS lists every variant's name, in variant order.
        let listed: Vec<&str> = messages.iter().map(MessageError::reason).collect();
        assert_eq!(listed, MessageError::REASONS);
        let listed: Vec<&str> = entries.iter().map(EntryError::reason).collect();
        assert_eq!(listed, EntryError::REASONS);
        let mut names: Vec<&str> = messages.iter().map(MessageError::reason).collect();
        names.extend(entries.iter().map(EntryError::reason));
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count);
        assert!(names.iter().all(|n| n
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit())));
        let fatal: Vec<bool> = entries.iter().map(EntryError::ends_message).collect();
        assert_eq!(
            fatal,
            [true, true, true, true, false, false, true, true, false]
        );
    }
}
