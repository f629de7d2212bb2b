//! What happens to each packet of a burst: a closed set of verdicts, and a closed set of
//! counted drop reasons. Parse errors are drop reasons, so every packet that is not sent is
//! accounted for under a stable name that `rvsadm` and `--stats-json` print.

/// What the pipeline decided for one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send the (rewritten) frame out of this port (index into the snapshot's ports), on the
    /// worker's own tx queue.
    Tx { port: usize },
    /// Free the frame and count the reason.
    Drop(DropReason),
    /// The frame is ready for `port` except for the Ethernet destination: the MAC of
    /// `next_hop` is not known yet. The worker queues it and asks with ARP.
    Resolve {
        port: usize,
        next_hop: std::net::Ipv4Addr,
    },
    /// The flow belongs to another worker: hand the frame to worker `worker` unchanged.
    Redirect { worker: usize },
    /// The frame is ready for `port`, but its IPv4 packet is larger than the port's MTU `mtu`
    /// and may be fragmented: the worker sends it as fragments of at most `mtu` bytes, each
    /// in a new buffer ([`crate::xmit::fragment`]).
    Fragment { port: usize, mtu: u16 },
    /// [`Verdict::Fragment`] once the MAC of `next_hop` is known, as [`Verdict::Resolve`].
    /// (Two variants rather than an optional next hop keep every verdict's fields at the
    /// same places, which lets a verdict be copied as two words on the fast path.)
    ResolveFragment {
        port: usize,
        next_hop: std::net::Ipv4Addr,
        mtu: u16,
    },
    /// [`Verdict::Resolve`] for IPv6: the next hop, whose MAC neighbour discovery is to
    /// find, is [`Pipeline::resolving6`](crate::pipeline::Pipeline::resolving6) until the
    /// pipeline's next packet (an IPv6 address here would double every verdict's size).
    Resolve6 { port: usize },
    /// Hand the frame, unchanged, to the kernel through the receiving port's twin
    /// (`host::punt::Punter`), rate-limited and counted under the reason.
    Punt(PuntReason),
    /// An IPv4 fragment that came before its datagram's first fragment: the worker keeps the
    /// frame under `key` in its [`Held`](crate::pipeline::Held) until the pipeline says what
    /// becomes of it ([`Pipeline::take_released`](crate::pipeline::Pipeline::take_released)).
    Hold(crate::pipeline::FragmentKey),
}

/// Why a frame goes to the kernel (the receiving port's twin interface). The discriminant
/// indexes the punt counters; the `as_str` names are an interface (stats JSON, rvsadm).
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PuntReason {
    /// ARP the kernel must see to keep its neighbour table right.
    Arp,
    /// Not IPv4 (IPv6, LLDP, ...), when the port has a twin.
    NonIpv4,
    /// TCP to an address the kernel owns, at a port no service uses.
    LocalTcp,
    /// UDP to an address the kernel owns, at a port no service uses.
    LocalUdp,
    /// ICMP for the kernel (other than the echo rvs answers itself).
    LocalIcmp,
    /// Link-local multicast (224.0.0.0/24: VRRP, OSPF, IGMP, the sync group).
    Multicast,
    /// Another IP protocol to an address the kernel owns (GRE, ESP, ...).
    OtherProto,
    /// IPv6 neighbour discovery for the kernel: solicitations for addresses rvs does not
    /// answer for, advertisements (its neighbour cache), router messages, redirects.
    Nd,
}

impl PuntReason {
    /// Every reason, in discriminant order.
    pub const ALL: [PuntReason; 8] = [
        PuntReason::Arp,
        PuntReason::NonIpv4,
        PuntReason::LocalTcp,
        PuntReason::LocalUdp,
        PuntReason::LocalIcmp,
        PuntReason::Multicast,
        PuntReason::OtherProto,
        PuntReason::Nd,
    ];
    /// Number of reasons, the length of a punt counter array.
    pub const COUNT: usize = Self::ALL.len();

    /// The stable name used in stats output.
    pub const fn as_str(self) -> &'static str {
        match self {
            PuntReason::Arp => "arp",
            PuntReason::NonIpv4 => "non_ipv4",
            PuntReason::LocalTcp => "local_tcp",
            PuntReason::LocalUdp => "local_udp",
            PuntReason::LocalIcmp => "local_icmp",
            PuntReason::Multicast => "multicast",
            PuntReason::OtherProto => "other_proto",
            PuntReason::Nd => "nd",
        }
    }

    /// Whether the frame keeps the link and its routing protocols alive (ARP, VRRP, OSPF):
    /// such frames have a token bucket of their own, so a flood of other traffic to the
    /// balancer's addresses can never starve them.
    pub const fn is_control(self) -> bool {
        matches!(
            self,
            PuntReason::Arp | PuntReason::Multicast | PuntReason::Nd
        )
    }
}

/// Why a packet was dropped. The discriminant indexes the per-worker drop counters, so the
/// order is part of no interface; the `as_str` names are (stats JSON, rvsadm).
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Frame shorter than the headers it claims to carry.
    Truncated,
    /// Ethertype that rvs does not handle (IPv6, LLDP, ...).
    UnsupportedEthertype,
    /// 802.1Q / QinQ tagged frame (VLANs are not configured).
    VlanTagged,
    /// ARP that is malformed or not Ethernet/IPv4.
    BadArp,
    /// ARP request for an address the balancer does not own.
    ArpNotOurs,
    /// ARP reply or other ARP op that needs no answer.
    ArpIgnored,
    /// IPv4 header invalid: version, IHL, total length or header checksum.
    BadIpv4Header,
    /// IPv4 fragment rvs cannot forward without reassembling its datagram: not TCP or UDP, a
    /// first fragment too short for its TCP or UDP header or a later one overlapping that
    /// header (RFC 1858), FULLNAT TCP where TOA or PROXY would insert bytes, to an address of
    /// the host's (`pipeline::fragment`).
    Fragment,
    /// IPv4 destination the balancer neither owns nor serves.
    NotOurs,
    /// ICMP to an owned address that is not an echo request, or a bad ICMP message.
    IcmpIgnored,
    /// ICMP message whose checksum does not verify.
    BadIcmpChecksum,
    /// TCP or UDP header invalid or truncated.
    BadL4Header,
    /// L4 protocol that rvs does not balance.
    UnsupportedProtocol,
    /// TTL expired on a packet that would be routed, and no ICMP time exceeded may be sent
    /// about it (an ICMP error, a broadcast, ...); answered ones count in `icmp_errors_sent`.
    TtlExceeded,
    /// No route to the destination.
    NoRoute,
    /// Next hop not yet resolved and its ARP queue is full.
    NoNeighbor,
    /// Packet for a VIP that matches no service.
    NoService,
    /// The scheduler found no destination (all quiesced or overloaded).
    NoDest,
    /// The connection table is full; the new flow is refused.
    TableFull,
    /// The transmit queue did not take the packet.
    TxFull,
    /// No mbuf available for a reply or an encapsulation.
    NoMbuf,
    /// Unicast frame addressed to another host's MAC (promiscuous or shared-medium devices).
    ForeignMac,
    /// Not enough headroom in the buffer to prepend a header (TUN encapsulation, an ICMP
    /// answer).
    NoHeadroom,
    /// Packet larger than the egress MTU with DF set about which no ICMP "fragmentation
    /// needed" may be sent (RFC 1122 §3.2.2: an ICMP error, a non-unicast source or
    /// destination), or an MTU too small to fragment for.
    TooBig,
    /// TCP segment without SYN that belongs to no connection (on a `sloppy` service: a RST,
    /// or a segment the scheduler would give a FULLNAT real, which cannot resume a flow).
    NoConn,
    /// The owning worker's hand-over queue was full.
    RedirectFull,
    /// FULLNAT: no local address and port of the service is free towards the chosen real
    /// server (`laddr::Pool::alloc`); the new connection is refused.
    LaddrExhausted,
    /// FULLNAT: the PROXY protocol header did not fit the client's first data segment (egress
    /// MTU or buffer room); the segment is dropped and the client retransmits it.
    ProxyNoRoom,
    /// A source no packet may come from (Linux's "martian source"): 0/8, 127/8, 224/4,
    /// 240/4, a connected subnet's network or broadcast address, one of the balancer's own.
    MartianSource,
    /// Traffic to the VIP of a `kernel` service while no kernel twin holds the address (a
    /// backup director's), dropped as the backup's kernel would drop it.
    VipNotOwned,
    /// A received frame longer than one packet buffer, which the driver delivered in chained
    /// buffers that could not be joined into one (longer than any port's MTU allows).
    OversizeFrame,
    /// A later IPv4 fragment whose datagram's first fragment did not come in time (held
    /// [`HOLD_MS`](crate::pipeline::HOLD_MS) at most, or still held when the worker stopped),
    /// or was lost on the way between workers.
    FragNoFirst,
    /// A later IPv4 fragment that came before its first fragment while the worker already held
    /// as many as it may ([`HOLD_MAX`](crate::pipeline::HOLD_MAX)).
    FragHoldFull,
    /// A first IPv4 fragment (and with it its datagram) refused: the worker's fragment table
    /// already follows [`TABLE_MAX`](crate::pipeline::TABLE_MAX) datagrams.
    FragTableFull,
    /// A first IPv4 fragment seen again for a datagram already followed (a duplicate, absorbed
    /// as the kernel's reassembly absorbs it: the connection sees the datagram once).
    FragDuplicate,
    /// Traffic to a virtual service while a backup sync daemon runs with `backup_only` (the
    /// kernel's sysctl: a director that only receives connections forwards nothing, so that
    /// DR/TUN directors syncing each other cannot loop packets).
    BackupOnly,
    /// IPv6 header or extension-header chain that is malformed, truncated, too long to walk,
    /// or ends in AH, ESP or an unknown header.
    BadIpv6Header,
    /// A neighbour solicitation or advertisement that breaks RFC 4861's validity rules
    /// (hop limit not 255, bad checksum or options, multicast target, malformed probe, ...).
    BadNd,
    /// A neighbour solicitation for an address the balancer does not own, on a port without a
    /// kernel twin (a twin gets it: the kernel may own the address).
    NdNotOurs,
    /// Neighbour discovery that needs no answer (advertisements, router messages, redirects)
    /// or another ICMPv6 message to a link group, on a port without a kernel twin.
    NdIgnored,
}

impl DropReason {
    /// Every reason, in discriminant order.
    pub const ALL: [DropReason; 40] = [
        DropReason::Truncated,
        DropReason::UnsupportedEthertype,
        DropReason::VlanTagged,
        DropReason::BadArp,
        DropReason::ArpNotOurs,
        DropReason::ArpIgnored,
        DropReason::BadIpv4Header,
        DropReason::Fragment,
        DropReason::NotOurs,
        DropReason::IcmpIgnored,
        DropReason::BadIcmpChecksum,
        DropReason::BadL4Header,
        DropReason::UnsupportedProtocol,
        DropReason::TtlExceeded,
        DropReason::NoRoute,
        DropReason::NoNeighbor,
        DropReason::NoService,
        DropReason::NoDest,
        DropReason::TableFull,
        DropReason::TxFull,
        DropReason::NoMbuf,
        DropReason::ForeignMac,
        DropReason::NoHeadroom,
        DropReason::TooBig,
        DropReason::NoConn,
        DropReason::RedirectFull,
        DropReason::LaddrExhausted,
        DropReason::ProxyNoRoom,
        DropReason::MartianSource,
        DropReason::VipNotOwned,
        DropReason::OversizeFrame,
        DropReason::FragNoFirst,
        DropReason::FragHoldFull,
        DropReason::FragTableFull,
        DropReason::FragDuplicate,
        DropReason::BackupOnly,
        DropReason::BadIpv6Header,
        DropReason::BadNd,
        DropReason::NdNotOurs,
        DropReason::NdIgnored,
    ];
    /// Number of reasons, the length of a drop counter array.
    pub const COUNT: usize = Self::ALL.len();

    /// The stable name used in stats output.
    pub const fn as_str(self) -> &'static str {
        match self {
            DropReason::Truncated => "truncated",
            DropReason::UnsupportedEthertype => "unsupported_ethertype",
            DropReason::VlanTagged => "vlan_tagged",
            DropReason::BadArp => "bad_arp",
            DropReason::ArpNotOurs => "arp_not_ours",
            DropReason::ArpIgnored => "arp_ignored",
            DropReason::BadIpv4Header => "bad_ipv4_header",
            DropReason::Fragment => "fragment",
            DropReason::NotOurs => "not_ours",
            DropReason::IcmpIgnored => "icmp_ignored",
            DropReason::BadIcmpChecksum => "bad_icmp_checksum",
            DropReason::BadL4Header => "bad_l4_header",
            DropReason::UnsupportedProtocol => "unsupported_protocol",
            DropReason::TtlExceeded => "ttl_exceeded",
            DropReason::NoRoute => "no_route",
            DropReason::NoNeighbor => "no_neighbor",
            DropReason::NoService => "no_service",
            DropReason::NoDest => "no_dest",
            DropReason::TableFull => "table_full",
            DropReason::TxFull => "tx_full",
            DropReason::NoMbuf => "no_mbuf",
            DropReason::ForeignMac => "foreign_mac",
            DropReason::NoHeadroom => "no_headroom",
            DropReason::TooBig => "too_big",
            DropReason::NoConn => "no_conn",
            DropReason::RedirectFull => "redirect_full",
            DropReason::LaddrExhausted => "laddr_exhausted",
            DropReason::ProxyNoRoom => "proxy_no_room",
            DropReason::MartianSource => "martian_source",
            DropReason::VipNotOwned => "vip_not_owned",
            DropReason::OversizeFrame => "oversize_frame",
            DropReason::FragNoFirst => "frag_no_first",
            DropReason::FragHoldFull => "frag_hold_full",
            DropReason::FragTableFull => "frag_table_full",
            DropReason::FragDuplicate => "frag_duplicate",
            DropReason::BackupOnly => "backup_only",
            DropReason::BadIpv6Header => "bad_ipv6_header",
            DropReason::BadNd => "bad_nd",
            DropReason::NdNotOurs => "nd_not_ours",
            DropReason::NdIgnored => "nd_ignored",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_is_in_discriminant_order_and_names_are_unique() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
    }

    #[test]
    fn punt_reasons_in_discriminant_order_with_stable_names() {
        for (i, r) in PuntReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
        let names: Vec<_> = PuntReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            names,
            [
                "arp",
                "non_ipv4",
                "local_tcp",
                "local_udp",
                "local_icmp",
                "multicast",
                "other_proto",
                "nd"
            ]
        );
        let control: Vec<_> = PuntReason::ALL.iter().filter(|r| r.is_control()).collect();
        assert_eq!(
            control,
            [&PuntReason::Arp, &PuntReason::Multicast, &PuntReason::Nd]
        );
    }
}
