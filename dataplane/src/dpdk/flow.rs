//! NIC flow rules (`rte_flow`): the one kind rvs uses, "IPv4 packets to this address whose
//! TCP (or UDP) destination port has these bits go to that rx queue", validated, created and
//! destroyed on a started [`Port`].
//!
//! A [`Flow`] borrows its port, so a rule cannot outlive the port it was created on; dropping
//! it destroys the rule (before the port stops and closes).
//!
//! Untested on hardware here: the devices of this project's test machines (net_pcap,
//! net_af_packet, net_null, and net_tap without the kernel's multiq qdisc) have no flow
//! support, so only the refusal path runs in the tests. Rule creation on a NIC that supports
//! `rte_flow` (ixgbe, i40e, ice, mlx5, ...) has not been exercised.

use super::port::Port;
use std::ffi::CStr;
use std::fmt;
use std::marker::PhantomData;
use std::net::Ipv4Addr;
use std::ptr::NonNull;

/// The transport protocol a rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum L4 {
    Tcp,
    Udp,
}

impl L4 {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            L4::Tcp => "tcp",
            L4::Udp => "udp",
        }
    }
}

/// An ingress rule: `ETH / IPV4 dst is dst / TCP|UDP dst spec port mask mask → QUEUE queue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QueueRule {
    /// The IPv4 destination address, matched exactly.
    pub dst: Ipv4Addr,
    /// TCP or UDP.
    pub l4: L4,
    /// The destination port bits to match (`dst_port & mask == port`).
    pub port: u16,
    /// Which destination port bits are matched.
    pub mask: u16,
    /// The rx queue the matching packets go to.
    pub queue: u16,
}

impl fmt::Display for QueueRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ipv4 dst {} {} dst port {:#x}/{:#x} -> queue {}",
            self.dst,
            self.l4.as_str(),
            self.port,
            self.mask,
            self.queue
        )
    }
}

/// A refused rule: what was attempted and the driver's message (`rte_flow_error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowError(String);

impl fmt::Display for FlowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FlowError {}

/// A rule installed on a port; destroyed when dropped.
pub struct Flow<'port> {
    port: u16,
    rule: QueueRule,
    raw: NonNull<dpdk_sys::rte_flow>,
    _port: PhantomData<&'port ()>,
}

/// What `rte_flow_error.type` says went wrong.
fn cause(kind: dpdk_sys::rte_flow_error_type) -> &'static str {
    // Qualified paths: a pattern that is a bare name would bind anything if misspelt.
    use dpdk_sys as d;
    match kind {
        d::rte_flow_error_type_RTE_FLOW_ERROR_TYPE_NONE => "no error type",
        d::rte_flow_error_type_RTE_FLOW_ERROR_TYPE_ATTR_GROUP
        | d::rte_flow_error_type_RTE_FLOW_ERROR_TYPE_ATTR_PRIORITY
        | d::rte_flow_error_type_RTE_FLOW_ERROR_TYPE_ATTR_INGRESS
        | d::rte_flow_error_type_RTE_FLOW_ERROR_TYPE_ATTR_EGRESS
        | d::rte_flow_error_type_RTE_FLOW_ERROR_TYPE_ATTR_TRANSFER
        | d::rte_flow_error_type_RTE_FLOW_ERROR_TYPE_ATTR => "in the attributes",
        d::rte_flow_error_type_RTE_FLOW_ERROR_TYPE_ITEM_NUM
        | d::rte_flow_error_type_RTE_FLOW_ERROR_TYPE_ITEM_SPEC
        | d::rte_flow_error_type_RTE_FLOW_ERROR_TYPE_ITEM_LAST
        | d::rte_flow_error_type_RTE_FLOW_ERROR_TYPE_ITEM_MASK
        | d::rte_flow_error_type_RTE_FLOW_ERROR_TYPE_ITEM => "in the pattern",
        d::rte_flow_error_type_RTE_FLOW_ERROR_TYPE_ACTION_NUM
        | d::rte_flow_error_type_RTE_FLOW_ERROR_TYPE_ACTION_CONF
        | d::rte_flow_error_type_RTE_FLOW_ERROR_TYPE_ACTION => "in the actions",
        d::rte_flow_error_type_RTE_FLOW_ERROR_TYPE_HANDLE => "in the flow handle",
        d::rte_flow_error_type_RTE_FLOW_ERROR_TYPE_STATE => "device state",
        _ => "unspecified",
    }
}

/// The Rust error for a failed `call` on `port` that returned `errno` (positive) and filled
/// `error`.
fn flow_error(
    call: &str,
    port: u16,
    rule: Option<&QueueRule>,
    errno: i32,
    error: &dpdk_sys::rte_flow_error,
) -> FlowError {
    let message = if error.message.is_null() {
        // SAFETY: rte_strerror returns a pointer to a static or thread-local NUL-terminated
        // string.
        unsafe { CStr::from_ptr(dpdk_sys::rte_strerror(errno)) }
            .to_string_lossy()
            .into_owned()
    } else {
        // SAFETY: a driver that sets `message` points it at a NUL-terminated string that
        // lives at least until the next flow call on this thread (usually a literal).
        unsafe { CStr::from_ptr(error.message) }
            .to_string_lossy()
            .into_owned()
    };
    let rule = rule.map(|r| format!(" ({r})")).unwrap_or_default();
    FlowError(format!(
        "port {port}: {call}{rule}: {message} ({}, errno {errno})",
        cause(error.type_)
    ))
}

/// The C description of a [`QueueRule`]; `pattern` and `actions` point into the other
/// fields, so the value must stay where it is (boxed) while they are in use.
struct Description {
    attr: dpdk_sys::rte_flow_attr,
    ipv4_spec: dpdk_sys::rte_flow_item_ipv4,
    ipv4_mask: dpdk_sys::rte_flow_item_ipv4,
    tcp_spec: dpdk_sys::rte_flow_item_tcp,
    tcp_mask: dpdk_sys::rte_flow_item_tcp,
    udp_spec: dpdk_sys::rte_flow_item_udp,
    udp_mask: dpdk_sys::rte_flow_item_udp,
    queue: dpdk_sys::rte_flow_action_queue,
    pattern: [dpdk_sys::rte_flow_item; 4],
    actions: [dpdk_sys::rte_flow_action; 2],
}

impl Description {
    fn new(rule: &QueueRule) -> Box<Description> {
        let mut attr = dpdk_sys::rte_flow_attr::default();
        attr.set_ingress(1);
        let mut d = Box::new(Description {
            attr,
            ipv4_spec: dpdk_sys::rte_flow_item_ipv4::default(),
            ipv4_mask: dpdk_sys::rte_flow_item_ipv4::default(),
            tcp_spec: dpdk_sys::rte_flow_item_tcp::default(),
            tcp_mask: dpdk_sys::rte_flow_item_tcp::default(),
            udp_spec: dpdk_sys::rte_flow_item_udp::default(),
            udp_mask: dpdk_sys::rte_flow_item_udp::default(),
            queue: dpdk_sys::rte_flow_action_queue { index: rule.queue },
            pattern: [dpdk_sys::rte_flow_item::default(); 4],
            actions: [dpdk_sys::rte_flow_action::default(); 2],
        });
        // Header fields are big-endian in memory.
        d.ipv4_spec.hdr.dst_addr = u32::from(rule.dst).to_be();
        d.ipv4_mask.hdr.dst_addr = u32::MAX;
        d.tcp_spec.hdr.dst_port = rule.port.to_be();
        d.tcp_mask.hdr.dst_port = rule.mask.to_be();
        d.udp_spec.hdr.dst_port = rule.port.to_be();
        d.udp_mask.hdr.dst_port = rule.mask.to_be();
        let item = |type_, spec: *const std::ffi::c_void, mask: *const std::ffi::c_void| {
            dpdk_sys::rte_flow_item {
                type_,
                spec,
                last: std::ptr::null(),
                mask,
            }
        };
        let none = std::ptr::null();
        let (l4_type, l4_spec, l4_mask): (_, *const std::ffi::c_void, *const std::ffi::c_void) =
            match rule.l4 {
                L4::Tcp => (
                    dpdk_sys::rte_flow_item_type_RTE_FLOW_ITEM_TYPE_TCP,
                    std::ptr::from_ref(&d.tcp_spec).cast(),
                    std::ptr::from_ref(&d.tcp_mask).cast(),
                ),
                L4::Udp => (
                    dpdk_sys::rte_flow_item_type_RTE_FLOW_ITEM_TYPE_UDP,
                    std::ptr::from_ref(&d.udp_spec).cast(),
                    std::ptr::from_ref(&d.udp_mask).cast(),
                ),
            };
        d.pattern = [
            // Any Ethernet header (no spec: the item only says the stack starts with one).
            item(
                dpdk_sys::rte_flow_item_type_RTE_FLOW_ITEM_TYPE_ETH,
                none,
                none,
            ),
            item(
                dpdk_sys::rte_flow_item_type_RTE_FLOW_ITEM_TYPE_IPV4,
                std::ptr::from_ref(&d.ipv4_spec).cast(),
                std::ptr::from_ref(&d.ipv4_mask).cast(),
            ),
            item(l4_type, l4_spec, l4_mask),
            item(
                dpdk_sys::rte_flow_item_type_RTE_FLOW_ITEM_TYPE_END,
                none,
                none,
            ),
        ];
        d.actions = [
            dpdk_sys::rte_flow_action {
                type_: dpdk_sys::rte_flow_action_type_RTE_FLOW_ACTION_TYPE_QUEUE,
                conf: std::ptr::from_ref(&d.queue).cast(),
            },
            dpdk_sys::rte_flow_action {
                type_: dpdk_sys::rte_flow_action_type_RTE_FLOW_ACTION_TYPE_END,
                conf: none,
            },
        ];
        d
    }
}

/// Asks `port`'s driver whether it would accept `rule` (`rte_flow_validate`); installs
/// nothing.
pub fn validate(port: &Port<'_>, rule: &QueueRule) -> Result<(), FlowError> {
    let d = Description::new(rule);
    let mut error = dpdk_sys::rte_flow_error::default();
    // SAFETY: the port is started (a `Port` exists); attr, pattern (END-terminated) and
    // actions (END-terminated) point into `d`, which outlives the call; `error` is writable.
    let rc = unsafe {
        dpdk_sys::rte_flow_validate(
            port.id(),
            &d.attr,
            d.pattern.as_ptr(),
            d.actions.as_ptr(),
            &mut error,
        )
    };
    if rc < 0 {
        Err(flow_error(
            "rte_flow_validate",
            port.id(),
            Some(rule),
            rc.saturating_neg(),
            &error,
        ))
    } else {
        Ok(())
    }
}

/// Installs `rule` on `port` (`rte_flow_create`).
pub fn create<'port>(port: &'port Port<'_>, rule: &QueueRule) -> Result<Flow<'port>, FlowError> {
    let d = Description::new(rule);
    let mut error = dpdk_sys::rte_flow_error::default();
    // SAFETY: as in `validate`; the driver copies what it keeps, the description may go.
    let raw = unsafe {
        dpdk_sys::rte_flow_create(
            port.id(),
            &d.attr,
            d.pattern.as_ptr(),
            d.actions.as_ptr(),
            &mut error,
        )
    };
    match NonNull::new(raw) {
        Some(raw) => Ok(Flow {
            port: port.id(),
            rule: *rule,
            raw,
            _port: PhantomData,
        }),
        None => {
            // SAFETY: reads a thread-local integer, set by the failed call.
            let errno = unsafe { dpdk_sys::shim_errno() };
            Err(flow_error(
                "rte_flow_create",
                port.id(),
                Some(rule),
                errno,
                &error,
            ))
        }
    }
}

impl Flow<'_> {
    /// The rule this flow implements.
    pub fn rule(&self) -> &QueueRule {
        &self.rule
    }

    /// Removes the rule from the device (`rte_flow_destroy`), reporting a failure that drop
    /// would only log.
    pub fn destroy(self) -> Result<(), FlowError> {
        let this = std::mem::ManuallyDrop::new(self);
        this.destroy_raw()
    }

    fn destroy_raw(&self) -> Result<(), FlowError> {
        let mut error = dpdk_sys::rte_flow_error::default();
        // SAFETY: `raw` came from rte_flow_create on this port, which is still started (the
        // flow borrows it), and is destroyed only here, once (`destroy` takes the value and
        // skips drop; drop runs only for values not destroyed).
        let rc = unsafe { dpdk_sys::rte_flow_destroy(self.port, self.raw.as_ptr(), &mut error) };
        if rc < 0 {
            Err(flow_error(
                "rte_flow_destroy",
                self.port,
                Some(&self.rule),
                rc.saturating_neg(),
                &error,
            ))
        } else {
            Ok(())
        }
    }
}

impl Drop for Flow<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.destroy_raw() {
            log::warn!("{e}");
        }
    }
}
