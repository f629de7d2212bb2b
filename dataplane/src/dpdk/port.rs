//! Ethernet ports: configuration with one rx/tx queue pair per worker (plus, for a port with a
//! kernel twin, one transmit queue of the exception thread), start/stop, counters.

use super::mempool::Mempool;
use super::{check, Error, MacAddr};
use std::marker::PhantomData;

/// Descriptors per rx and per tx queue.
const RX_DESC: u16 = 1024;
const TX_DESC: u16 = 1024;

/// DPDK's (negated) return code for a device operation the driver does not implement.
const NOT_SUPPORTED: i32 = -95;

/// How a port is brought up.
pub struct PortSetup {
    /// DPDK port id.
    pub id: u16,
    /// Queue pairs: one per worker.
    pub queues: u16,
    /// MAC address to program, or `None` to keep the device's.
    pub mac: Option<MacAddr>,
    /// MTU to program, or `None` to keep the device's.
    pub mtu: Option<u16>,
    /// One more tx queue (index `queues`), for the exception thread: what the kernel sends on
    /// the port's twin leaves through it, so no worker's queue is ever shared.
    ///
    /// The device must offer `queues + 1` tx queues: `net_af_packet` with
    /// `qpairs=<workers + 1>`, `net_pcap` with one `tx_pcap=`/`tx_iface=` more than workers
    /// (the kernel's frames go to the last one).
    ///
    /// Devices without RSS that tie rx queues to tx queues (`net_af_packet`'s `qpairs`,
    /// multi-queue `net_tap`) spread received frames over *every* queue they have (measured:
    /// af_packet with `qpairs=2` and one rx queue polled received 139 of 310 frames, its
    /// `PACKET_FANOUT` hash sends the rest to the unpolled socket): there the extra queue is
    /// a pair, and its rx side is drained by the exception thread, which hands what arrives
    /// to worker 0 ([`ExceptionQueue::strays`]), so those flows take one more ring hop.
    pub exception_tx: bool,
}

/// A started port. Stopped and closed when dropped.
pub struct Port<'pool> {
    id: u16,
    queues: u16,
    mac: MacAddr,
    name: String,
    queues_taken: std::cell::Cell<bool>,
    /// The exception thread's queue: `None` without one, or once handed out.
    exception: std::cell::Cell<Option<ExceptionQueue<'static>>>,
    _pool: PhantomData<&'pool Mempool>,
}

/// Device counters (`rte_eth_stats`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PortStats {
    pub ipackets: u64,
    pub opackets: u64,
    pub ibytes: u64,
    pub obytes: u64,
    /// Packets the NIC dropped because rx queues were full.
    pub imissed: u64,
    pub ierrors: u64,
    pub oerrors: u64,
    pub rx_nombuf: u64,
}

impl<'pool> Port<'pool> {
    /// Configures and starts a port; receive buffers come from `pool`.
    pub fn start(setup: &PortSetup, pool: &'pool Mempool) -> Result<Port<'pool>, Error> {
        let id = setup.id;
        // SAFETY: plain query.
        if unsafe { dpdk_sys::rte_eth_dev_is_valid_port(id) } == 0 {
            return Err(Error::new(
                format!("DPDK port {id} does not exist (check the EAL --vdev/-a arguments)"),
                19,
            ));
        }
        let mut info = dpdk_sys::rte_eth_dev_info::default();
        // SAFETY: valid port, info is a writable struct of the right type.
        let rc = unsafe { dpdk_sys::rte_eth_dev_info_get(id, &mut info) };
        check(rc, || format!("port {id}: rte_eth_dev_info_get"))?;
        if setup.queues == 0
            || setup.queues > info.max_rx_queues
            || setup.queues > info.max_tx_queues
        {
            return Err(Error::new(
                format!(
                    "port {id}: {} queue pairs requested, device supports {} rx / {} tx",
                    setup.queues, info.max_rx_queues, info.max_tx_queues
                ),
                22,
            ));
        }
        let tx_queues = setup.queues + u16::from(setup.exception_tx);
        if tx_queues > info.max_tx_queues {
            return Err(Error::new(
                format!(
                    "port {id}: {} worker queues plus the exception thread's need {tx_queues} tx \
                     queues, device supports {} (net_af_packet: qpairs={tx_queues}; net_pcap: \
                     one more tx_pcap= or tx_iface=)",
                    setup.queues, info.max_tx_queues
                ),
                22,
            ));
        }
        let mut conf = dpdk_sys::rte_eth_conf::default();
        let wanted =
            dpdk_sys::RTE_ETH_RSS_IP | dpdk_sys::RTE_ETH_RSS_TCP | dpdk_sys::RTE_ETH_RSS_UDP;
        let rss = info.flow_type_rss_offloads & wanted;
        if setup.queues > 1 && rss != 0 {
            conf.rxmode.mq_mode = dpdk_sys::rte_eth_rx_mq_mode_RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_hf = rss;
        }
        // See `PortSetup::exception_tx`: without RSS, a device with as many rx as tx queues
        // delivers to all of them.
        let strays = setup.exception_tx
            && info.flow_type_rss_offloads == 0
            && info.max_rx_queues >= tx_queues;
        let rx_queues = setup.queues + u16::from(strays);
        // SAFETY: valid port, conf outlives the call.
        let rc = unsafe { dpdk_sys::rte_eth_dev_configure(id, rx_queues, tx_queues, &conf) };
        check(rc, || {
            format!("port {id}: configure {rx_queues} rx / {tx_queues} tx queues")
        })?;
        // SAFETY: plain query; -1 (unknown NUMA node) is accepted by the queue setup calls.
        let socket = unsafe { dpdk_sys::rte_eth_dev_socket_id(id) };
        let socket = u32::try_from(socket).unwrap_or(dpdk_sys::SOCKET_ID_ANY as u32);
        for q in 0..rx_queues {
            // SAFETY: configured port, valid pool pointer; NULL conf selects driver defaults.
            let rc = unsafe {
                dpdk_sys::rte_eth_rx_queue_setup(
                    id,
                    q,
                    RX_DESC,
                    socket,
                    std::ptr::null(),
                    pool.as_ptr(),
                )
            };
            check(rc, || format!("port {id}: rx queue {q} setup"))?;
        }
        for q in 0..tx_queues {
            // SAFETY: as above.
            let rc = unsafe {
                dpdk_sys::rte_eth_tx_queue_setup(id, q, TX_DESC, socket, std::ptr::null())
            };
            check(rc, || format!("port {id}: tx queue {q} setup"))?;
        }
        if let Some(mtu) = setup.mtu {
            let mut current = 0u16;
            // SAFETY: valid port, `current` writable.
            let known = unsafe { dpdk_sys::rte_eth_dev_get_mtu(id, &mut current) } == 0;
            if !known || current != mtu {
                // SAFETY: valid configured port.
                let rc = unsafe { dpdk_sys::rte_eth_dev_set_mtu(id, mtu) };
                // Virtual devices such as net_pcap have no MTU to set; they pass any size.
                if rc == NOT_SUPPORTED {
                    log::warn!("port {id}: device cannot set MTU {mtu}; keeping its own");
                } else {
                    check(rc, || format!("port {id}: set MTU {mtu}"))?;
                }
            }
        }
        if let Some(mac) = setup.mac {
            let mut addr = dpdk_sys::rte_ether_addr { addr_bytes: mac };
            // SAFETY: valid port, addr is a valid rte_ether_addr.
            let rc = unsafe { dpdk_sys::rte_eth_dev_default_mac_addr_set(id, &mut addr) };
            // Capture devices (net_pcap) have no address filter to program; rvs then uses the
            // configured address in software, which is all such a device needs.
            if rc == NOT_SUPPORTED {
                log::warn!(
                    "port {id}: device cannot set its MAC address; using it in software only"
                );
            } else {
                check(rc, || format!("port {id}: set MAC address"))?;
            }
        }
        // SAFETY: configured port with all queues set up.
        check(unsafe { dpdk_sys::rte_eth_dev_start(id) }, || {
            format!("port {id}: start")
        })?;
        let mut addr = dpdk_sys::rte_ether_addr::default();
        // SAFETY: valid port, addr writable.
        let rc = unsafe { dpdk_sys::rte_eth_macaddr_get(id, &mut addr) };
        check(rc, || format!("port {id}: read MAC address"))?;
        let mut name = [0 as std::ffi::c_char; 64];
        // SAFETY: the buffer is RTE_ETH_NAME_MAX_LEN (64) bytes as the API requires.
        unsafe { dpdk_sys::rte_eth_dev_get_name_by_port(id, name.as_mut_ptr()) };
        // SAFETY: the buffer was zeroed and DPDK writes a NUL-terminated name shorter than it.
        let name = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }
            .to_string_lossy()
            .into_owned();
        Ok(Port {
            id,
            queues: setup.queues,
            mac: setup.mac.unwrap_or(addr.addr_bytes),
            name,
            queues_taken: std::cell::Cell::new(false),
            exception: std::cell::Cell::new(setup.exception_tx.then_some(ExceptionQueue {
                port: id,
                queue: setup.queues,
                strays,
                _port: PhantomData,
            })),
            _pool: PhantomData,
        })
    }

    /// DPDK port id.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// The port's MAC address.
    pub fn mac(&self) -> MacAddr {
        self.mac
    }

    /// The device name (e.g. `net_pcap0`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The queue pairs, one handle each, to hand one to each worker. Handles are given out once;
    /// later calls return none, so two workers can never poll the same queue.
    pub fn take_queues(&self) -> Vec<Queue<'_>> {
        let n = if self.queues_taken.replace(true) {
            0
        } else {
            self.queues
        };
        (0..n)
            .map(|queue| Queue {
                port: self.id,
                queue,
                _port: PhantomData,
            })
            .collect()
    }

    /// The exception thread's queue (see [`PortSetup::exception_tx`]), given out once; `None`
    /// for a port started without one.
    pub fn take_exception_queue(&self) -> Option<ExceptionQueue<'_>> {
        self.exception.take()
    }

    /// Device counters.
    pub fn stats(&self) -> PortStats {
        let mut s = dpdk_sys::rte_eth_stats::default();
        // SAFETY: valid started port, s writable.
        unsafe { dpdk_sys::rte_eth_stats_get(self.id, &mut s) };
        PortStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            ibytes: s.ibytes,
            obytes: s.obytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        }
    }
}

impl Drop for Port<'_> {
    fn drop(&mut self) {
        // SAFETY: no queue handle is alive (they borrow the port), so no lcore polls it.
        unsafe {
            dpdk_sys::rte_eth_dev_stop(self.id);
            dpdk_sys::rte_eth_dev_close(self.id);
        }
    }
}

/// One rx/tx queue pair of a port, owned by exactly one worker (not `Clone`).
pub struct Queue<'port> {
    port: u16,
    queue: u16,
    _port: PhantomData<&'port ()>,
}

// SAFETY: a queue pair may be polled from any single lcore; the handle is unique.
unsafe impl Send for Queue<'_> {}

impl Queue<'_> {
    /// DPDK port id.
    pub fn port_id(&self) -> u16 {
        self.port
    }

    /// Queue index within the port.
    pub fn queue_id(&self) -> u16 {
        self.queue
    }
}

/// A queue a burst can be received from: its port and rx queue, `None` when it receives
/// nothing.
pub trait Receive {
    /// (DPDK port id, rx queue index), or `None`.
    fn rx_ids(&self) -> Option<(u16, u16)>;
}

/// A queue a burst can be sent on: its port and tx queue.
pub trait Transmit {
    /// (DPDK port id, tx queue index).
    fn tx_ids(&self) -> (u16, u16);
}

impl Receive for Queue<'_> {
    fn rx_ids(&self) -> Option<(u16, u16)> {
        Some((self.port, self.queue))
    }
}

impl Transmit for Queue<'_> {
    fn tx_ids(&self) -> (u16, u16) {
        (self.port, self.queue)
    }
}

/// The exception thread's queue on a port: tx queue number `workers`, and on devices that
/// deliver to every queue (see [`PortSetup::exception_tx`]) the rx queue of the same number,
/// whose frames belong to the data path. Not `Clone`: exactly one thread owns it.
pub struct ExceptionQueue<'port> {
    port: u16,
    queue: u16,
    strays: bool,
    _port: PhantomData<&'port ()>,
}

// SAFETY: as `Queue`: one owner polls it, from any single thread.
unsafe impl Send for ExceptionQueue<'_> {}

impl ExceptionQueue<'_> {
    /// Whether the queue also receives data-path frames (which must be drained).
    pub fn strays(&self) -> bool {
        self.strays
    }
}

impl Receive for ExceptionQueue<'_> {
    fn rx_ids(&self) -> Option<(u16, u16)> {
        self.strays.then_some((self.port, self.queue))
    }
}

impl Transmit for ExceptionQueue<'_> {
    fn tx_ids(&self) -> (u16, u16) {
        (self.port, self.queue)
    }
}
