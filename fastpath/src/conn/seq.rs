//! FULLNAT's TCP sequence-number translation state, kept in each connection entry: the
//! delta between the balancer's ISN towards the real server and the client's, the real
//! server's first data sequence number, and the length of a header rvs inserted in the
//! client's stream (PROXY protocol).

/// The sequence-number state of one FULLNAT TCP connection, for the connection table: small,
/// `Copy`, no allocation. See [`crate::xmit::fullnat`] for how the rewrites use it.
/// Aligned to its size so that the table's array of them never splits one across two
/// cache lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(align(16))]
pub struct TcpSeq {
    /// The sequence number of the client's SYN.
    client_isn: u32,
    /// The balancer's ISN towards the real server minus the client's.
    delta: u32,
    /// The real server's ISN + 1, from its SYN+ACK (DPVS `fdata_seq`); valid when
    /// `has_fdata_seq`. Not an `Option<u32>`: 16 bytes in all keeps the table's array small.
    fdata_seq: u32,
    /// Bytes inserted at the start of the client's stream (a PROXY protocol header, at most
    /// 107 bytes for v1); 0 if none yet.
    inserted: u16,
    has_fdata_seq: bool,
}

impl TcpSeq {
    /// The state for a client SYN with sequence number `client_isn`, the connection's ISN
    /// towards the real server being `isn` (from [`initial_seq`](crate::xmit::isn::initial_seq)).
    pub const fn new(client_isn: u32, isn: u32) -> TcpSeq {
        TcpSeq {
            client_isn,
            delta: isn.wrapping_sub(client_isn),
            fdata_seq: 0,
            inserted: 0,
            has_fdata_seq: false,
        }
    }

    /// The state a sync message carries for a connection made on another director (see
    /// `crate::sync`): the same translation continues here.
    pub const fn restore(
        client_isn: u32,
        delta: u32,
        fdata_seq: Option<u32>,
        inserted: u16,
    ) -> TcpSeq {
        TcpSeq {
            client_isn,
            delta,
            fdata_seq: match fdata_seq {
                Some(seq) => seq,
                None => 0,
            },
            inserted,
            has_fdata_seq: fdata_seq.is_some(),
        }
    }

    /// Return the balancer's ISN towards the real server minus the client's.
    pub const fn delta(&self) -> u32 {
        self.delta
    }

    /// Return the length of the header inserted at the start of the client's stream (0 if
    /// none).
    pub const fn inserted(&self) -> u16 {
        self.inserted
    }

    /// Return the sequence number of the client's SYN.
    pub const fn client_isn(&self) -> u32 {
        self.client_isn
    }

    /// Return the real server's ISN + 1, once its SYN+ACK has passed.
    pub const fn fdata_seq(&self) -> Option<u32> {
        if self.has_fdata_seq {
            Some(self.fdata_seq)
        } else {
            None
        }
    }

    /// Record the real server's SYN+ACK, whose sequence number is `seq` (every
    /// retransmission carries the same).
    pub fn server_syn_ack(&mut self, seq: u32) {
        self.fdata_seq = seq.wrapping_add(1);
        self.has_fdata_seq = true;
    }

    /// Record that a header of `len` bytes is inserted at the start of the client's stream
    /// ([`proxy::insert`](crate::xmit::proxy::insert)'s result). Idempotent: a retransmission
    /// inserts the same header and records the same length.
    pub fn set_inserted(&mut self, len: u16) {
        self.inserted = len;
    }

    /// Return what to add to the sequence number `seq` of a client segment carrying
    /// `payload_len` bytes: the delta for the first data segment (the one starting at the
    /// client's ISN + 1, which carries the inserted header in front of its data, first
    /// transmission or not), the delta plus the inserted length for every other segment.
    pub const fn in_delta(&self, seq: u32, payload_len: usize) -> u32 {
        if seq == self.client_isn.wrapping_add(1) && payload_len > 0 {
            self.delta
        } else {
            self.delta.wrapping_add(self.inserted as u32)
        }
    }

    /// Return what to subtract from the real server's acknowledgment number and SACK edges.
    pub const fn out_delta(&self) -> u32 {
        self.delta.wrapping_add(self.inserted as u32)
    }

    /// Return the real server's sequence numbers taken by the inserted header: its first
    /// (the balancer's ISN + 1) and its length (0 if none), for
    /// [`OutRewrite::header`](crate::xmit::fullnat::OutRewrite::header).
    pub const fn header(&self) -> (u32, u16) {
        (
            self.client_isn.wrapping_add(1).wrapping_add(self.delta),
            self.inserted,
        )
    }

    /// Return what to subtract from the sequence number `sent_seq` of a packet the balancer
    /// sent to the real server, quoted in an ICMP error: the inverse of [`Self::in_delta`].
    pub const fn embedded_delta(&self, sent_seq: u32) -> u32 {
        if sent_seq == self.client_isn.wrapping_add(1).wrapping_add(self.delta) {
            self.delta
        } else {
            self.delta.wrapping_add(self.inserted as u32)
        }
    }
}
