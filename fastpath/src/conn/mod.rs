//! The per-worker connection table: IPVS connections and persistence templates.
//!
//! Each worker owns one [`Table`] per address family; nothing in it is shared or locked. It
//! knows nothing of schedulers or DPDK: the real server is an opaque handle `D` (an index,
//! an `Arc` to the server's counters, …) that the table stores and hands back on lookup and
//! on removal.
//!
//! # Address families
//!
//! The table, its entries and keys take the address type as a last type parameter `A`
//! ([`Family`]: [`Ipv4Addr`](std::net::Ipv4Addr), the default, or
//! [`Ipv6Addr`](std::net::Ipv6Addr)): `Table<D>` is the IPv4 table, `Table<D, Ipv6Addr>`
//! the IPv6 one, with the same methods. Each is compiled for its family alone: the IPv4
//! table has no branch on the family and its entry stays one line (see Memory).
//!
//! NAT64 (an IPv6 client and VIP, an IPv4 real server and, FULLNAT, an IPv4 local address)
//! and a TUN real server of the other family are IPv6 connections: they live in the IPv6
//! table, their IPv4 addresses mapped (`::ffff:a.b.c.d`, as [`NewConn`] is given them and
//! [`Conn::real`], [`Conn::local`] and [`Removed::local`] give them back). The out key of a
//! NAT64 FULLNAT connection, RIP:rport → LIP:lport, is therefore in the IPv6 table's index,
//! mapped. The real server's replies arrive as IPv4 packets: for one addressed to a local
//! address that NAT64 services use, the pipeline looks in the IPv6 table with
//! [`Table::lookup_mapped`] (or [`FlowKey::to_ipv6_mapped`] and the staged lookup) rather
//! than in the IPv4 table. Keeping the connection in one table (rather than its out key in
//! the other table's index, pointing across) keeps every removal, expiry and check within
//! one slab. No native IPv6 key can collide with a mapped one: mapped addresses are not
//! used on the wire (RFC 4291 §2.5.5.2), and the pipeline is to drop IPv6 packets carrying
//! them.
//! (An IPv4 client served by an IPv6 real server would need the converse and is not
//! supported.)
//!
//! # Time
//!
//! Every function that needs the time takes `now`: **milliseconds as `u64` on a monotonic
//! clock of the caller's choosing** (e.g. TSC converted by the worker). Timeouts are in
//! **seconds**, as `ipvsadm` sets them. Expiries are `now + timeout * 1000`.
//!
//! # Lookup
//!
//! Every connection is indexed by the [`FlowKey`] (protocol, source, destination, as on the
//! wire) of each direction it can be seen in: "in" (client → VIP) always, "out" (RIP:rport →
//! CIP:cport) for NAT. DR and TUN connections have no out key (their replies bypass the
//! balancer); FULLNAT indexes RIP:rport → LIP:lport the same way. [`Table::lookup`] answers
//! with the connection and the direction that matched ([`Hit`]).
//!
//! The index (`conn/index.rs`) maps `ahash` of the key's bytes (IPv4: 13 packed in one
//! `u128`; IPv6: 37, both addresses whole and protocol and ports in a `u64`) to values (slab index and direction bit) in 64-byte buckets whose address comes from the hash
//! alone; the key is compared against the slab entry itself (the entry the caller is about to
//! use anyway). A lookup is one hash, one bucket line and one entry line.
//!
//! In a large table those are two cache misses, the second waiting for the first. A worker
//! therefore takes a whole burst through the lookup in stages: [`Table::probe`] hashes every
//! packet's key and prefetches its bucket, [`Table::candidate`] reads every bucket and
//! prefetches the entry the key's tag points at, then each packet is processed with
//! [`Table::lookup_hinted`], which takes the candidate after comparing the key in the entry
//! (and searches again otherwise). The misses of the whole burst overlap.
//!
//! An insertion has one more miss the prefetch cannot take: the bucket of a NAT or FULLNAT
//! connection's out key, known only once the connection is scheduled. Out keys therefore
//! wait in a small array and go into the index four at a time, so that their misses overlap
//! ([`Table::lookup`] also looks in that array; a removal empties it first).
//!
//! Everything is allocated by [`Table::new`]: the slab of `capacity` entries (`None` =
//! free, free entries on a stack), the links of the expiry wheel, and the index with room
//! for two keys per entry at most 80 % full, so no insertion allocates (a removal leaves no
//! tombstone; the churn test checks that the allocation never changes). A full table
//! refuses an insertion with [`TableFull`], handing the `D` back, and changes nothing.
//!
//! # State machine
//!
//! [`Table::packet`] applies the kernel's TCP tables ([`tcp_next`]: INPUT,
//! OUTPUT, INPUT_ONLY for connections that have not seen a reply, flags RST > SYN > FIN >
//! ACK, no flag → CLOSE) or UDP's single state, re-arms the connection for its new state's
//! [`Timeouts`] (`ipvsadm --set tcp tcpfin udp` via [`Table::set_timeouts`]), and returns a
//! [`Transition`] whose [`Move`] tells the caller when to move the connection between its
//! real server's ActiveConn and InActConn (only ESTABLISHED is active). A new connection
//! starts in NONE (UDP: UDP) with 3 s and counts as inactive ([`Counter`]); the caller feeds
//! it its first packet at once. Templates count as persistent.
//!
//! Conn reuse ([`Table::reusable`]): a SYN that hits a TCP connection controlled by no
//! template, in TIME_WAIT or CLOSE (or, with `conn_reuse_mode` bit 1, FIN_WAIT without a
//! reply seen) is to be scheduled afresh: the caller [`Table::remove`]s the old one, unbinds
//! it, and inserts the new one. CLOSE is in the list as in current mainline kernels
//! (`is_new_conn_expected`); the 2015 original, which spec §0.4 quotes, had TIME_WAIT only.
//!
//! # Expiry
//!
//! [`Table::expire`] is called once per worker loop with `now` and a budget (e.g. 64); it
//! does at most `budget` units of work (one entry examined or one wheel tick visited) and
//! hands each removed entry's `D`, final state and counter to a visitor.
//!
//! The design is a **lazy timer wheel** of 65536 slots of 16 ms (one revolution ≈ 1049 s,
//! longer than the default ESTABLISHED timeout), with intrusive doubly-linked lists over
//! slab indices. An entry is put in the slot of its expiry when inserted; a packet that
//! pushes the expiry later only stores the new expiry in the entry (no list operation on the
//! fast path); when the slot comes due the entry is examined and either removed or placed
//! again for its real expiry. Only an expiry that moves *earlier* (a state with a shorter
//! timeout, a lowered timeout) re-places the entry at once. Cost: one examination per entry
//! when it is due, plus one per revolution for timeouts above 1049 s, plus one for each time
//! its slot came due while it was being refreshed (at most once per timeout period of a busy
//! connection); an examination touches the entry and three links. Visiting an empty tick is
//! one read. A scanning cursor over the slab was rejected: its cost grows with the table, not
//! with what expires (it streams the whole slab through the cache every sweep, evicting the
//! hot entries), and its precision is the sweep period (seconds for 1M entries at a budget
//! of 64 per loop) instead of 16 ms.
//!
//! An entry lives until **the end of the 16 ms tick in which its expiry falls** and is
//! removed by the first `expire` call after that (within the budget). Until then it is
//! alive: a lookup finds it and a packet re-arms it, as the kernel's connection lives until
//! its timer runs (`ip_vs_conn_expire`) and every packet re-arms that timer. Lookups never
//! look at the clock.
//!
//! # Persistence templates
//!
//! Templates (spec §3) are entries of the same slab and index with the key `(proto, client
//! & netmask, 0, vip, vport or 0)` ([`FlowKey::template`]), found only by
//! [`Table::lookup_template`] (and never by [`Table::lookup`]). [`Table::control`] ties a
//! connection to its template (`n_control`) and re-arms the template for its persistence
//! timeout; removing or expiring the connection lets go of it. A template past its expiry
//! that still controls connections is kept (off the wheel) and leaves with its last
//! connection, so it lives until max(last new connection + timeout, last controlled
//! connection's end). (The kernel instead re-checks such a template every 60 s and, as a side
//! effect, shortens its timeout to 60 s for later connections; rvs keeps the spec's rule.)
//! [`Table::invalidate_template`] takes a template whose real server became unusable out of
//! the index while it lives on for its connections.
//!
//! # Memory
//!
//! | what | bytes |
//! |---|---|
//! | slab entry `Option<Conn<D>>`, `D` of 8 bytes (`Arc`, `u64`), aligned to a cache line | 64 (56 used) |
//! | FULLNAT's sequence state (`conn::TcpSeq`), in an array of its own, aligned to 16 | 16 |
//! | wheel links per entry | 8 |
//! | index: 64-byte buckets of 10 slots, 2 keys per entry at most 80 % full | 16 to 32 per entry |
//! | per table: wheel sentinels (65537 × 8) | 512 KiB |
//! | IPv6: slab entry `Option<Conn<D, Ipv6Addr>>`, two lines aligned to 64 | 128 (104 used) |
//!
//! Per connection, including its share of the index, with an 8-byte `D`: **104.5 bytes** at
//! the default `conn_table_size` of 2^20 (16 index bytes per entry), **120.5 bytes** in the
//! worst case just above a power of two (32); IPv6: **168.5** and **184.5** bytes (the index
//! holds hashes and slab indices, the same for both families). The tests
//! `entry_and_index_sizes_and_bytes_per_connection` (`conn/tests/v4.rs`, `v6.rs`) measure
//! them; a constant assertion in `table.rs` checks both layouts.
//!
//! IPv6 needs 64 bytes for the four addresses alone, so its entry is two lines. They are
//! laid out (`repr(C)`) so that the first holds the in key (protocol, client and virtual
//! address and port), kind, state, flags, expiry, timeout, template link and `D`: what a
//! client packet's lookup compares and its transition writes. The second holds the count
//! and the real server's and local addresses and ports (the forwarding rewrite, the out
//! key). The staged lookup prefetches the entry's first and last byte, so both lines.
//!
//! The IPv4 entry holds everything a lookup compares and the established path reads and
//! writes, in one aligned line: the client, virtual and real addresses and ports
//! (everything NAT, DR and TUN rewrite with), FULLNAT's local address and port (the key of
//! its replies), protocol, forwarding method, state, flags, expiry, timeout, template link,
//! counts and `D`.
//! A 72-byte entry (as it was, with the sequence state inside) spanned two lines, the second
//! one not prefetched by the staged lookup; a 56-byte unaligned one would still split
//! three entries in four. FULLNAT's TCP sequence translation (16 bytes: client ISN, delta,
//! the real server's first data sequence number, inserted header length) went to a parallel
//! array indexed like the slab ([`Table::seq`], [`Table::seq_mut`]): only FULLNAT connections
//! read or write their slot, so the other methods never load it. That costs 8 bytes per
//! entry more than the 72-byte layout (96.5 bytes then) in exchange for one line per
//! connection instead of two.
//!
//! The sequence state cannot come back into the line: with it the entry needs 72 bytes.
//! Packing the timeout (at most 2,678,400 s: 22 bits), state, method and protocol into one
//! word saves 3; the expiry as a `u32` (ticks, or ms on a wrapping clock) would save 4 at
//! the price of wrap-safe comparisons everywhere and of the exact ms [`Conn::expires`]
//! gives the listings and the sync code; both together still leave 65 bytes. The template
//! link (a slab index up to 2^31) and the count (`n_control`, or `in_pkts` whose period
//! arithmetic a wrap would disturb) need their 32 bits. Below 64 bytes nothing is gained
//! either: an unaligned 56- or 48-byte entry splits lines again.

mod family;
mod index;
mod seq;
mod state;
mod table;
mod wheel;

#[cfg(test)]
mod tests;

pub use family::{ipv6_prefix_mask, Family};
pub use seq::TcpSeq;
pub use state::{
    tcp_next, Counter, Dir, Move, State, TcpTable, Timeouts, Transition, NEW_CONN_TIMEOUT,
};
pub use table::{
    Config, Conn, ConnId, FlowKey, Fwd, Hit, NewConn, NewTemplate, Probe, Removed, Sweep,
    SyncRules, SyncedConn, Table, TableError, TableFull, MAX_CAPACITY,
};
