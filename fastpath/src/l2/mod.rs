//! Layer 2 and the balancer's own addresses: the responders that answer, on the receiving
//! port, for the IPv4 addresses rvs owns (VIPs, local addresses).
//!
//! - [`arp`]: ARP requests for an owned address become replies; every well-formed ARP packet
//!   is handed back so the caller can learn the sender. Also builds requests and the
//!   gratuitous ARP announced at start-up.
//! - [`icmp`]: ICMP echo requests to an owned address become echo replies.
//! - [`nd`]: IPv6 neighbour discovery: the validity rules of received solicitations and
//!   advertisements, and the advertisements and solicitations rvs sends.
//! - [`neighbor`]: the MAC behind each next hop, and packets waiting for ARP to resolve it.
//! - [`route`]: longest-prefix match from a destination to the egress port and next hop.
//! - [`egress`]: each worker's cache of the answer of both lookups for its real servers.
//!
//! Both are pure functions over the received frame's bytes: they rewrite it in place into the
//! reply (same length, Ethernet padding kept) or leave it untouched and say why, as a counted
//! [`DropReason`](crate::verdict::DropReason). They read every length through the `wire`
//! views and never panic, whatever the bytes.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

pub mod arp;
pub mod echo6;
pub mod egress;
pub mod icmp;
pub mod nd;
pub mod neighbor;
pub mod route;
