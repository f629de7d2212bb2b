//! NIC flow rules that steer FULLNAT replies to the worker that owns their connection
//! (`[dataplane] laddr_steering`).
//!
//! Worker `w` of `W` hands out only the local ports with `lport % W == w`
//! ([`laddr::owner`](fastpath::laddr::owner)), so a real server's reply, addressed to
//! `LIP:lport`, names its owner in its destination port. Without help the NIC's RSS spreads
//! replies over the queues by their addresses and ports, and a reply received by another
//! worker is handed to the owner through a lock-free queue (`handed_over` in the counters):
//! always correct, at the cost of a queue hop. When `W` is a power of two, `lport % W` is
//! `lport & (W − 1)`, which NIC flow rules can match; one rule per local address, protocol
//! and worker,
//!
//! ```text
//! ingress  ETH / IPV4 dst is LIP / TCP (UDP) dst spec w mask W−1  →  QUEUE (worker w's queue)
//! ```
//!
//! makes the NIC deliver every reply to its owner. The address is matched exactly so that
//! client traffic (to the virtual addresses) keeps its RSS spread; a local address that is
//! also a virtual address is therefore not steered at all (its rules would pull that
//! service's clients onto few queues), see [`targets`].
//!
//! [`plan`] computes the rules (pure); [`Steering`] validates and installs them through a
//! [`Device`] ([`Ports`] on real ports, a fake in the tests) and keeps them in step with the
//! published snapshots as local addresses come and go (`rvsadm -P/-Q`, SIGHUP). The hand-over
//! stays in place in every case: a missing, refused or not-yet-installed rule costs a queue
//! hop, never a wrong answer.
//!
//! Modes: `auto` validates the rules of every local address on the port that owns it and
//! installs them when all validate, otherwise logs why once (the driver's message) and uses
//! the hand-over; `rte_flow` makes a refusal at start-up an error; `handover` never tries.
//!
//! Untested here: the devices available to this project's tests (net_pcap, net_af_packet,
//! net_null; net_tap disables its flow support without the kernel's multiq qdisc) refuse
//! every rule, so the tests cover the plan, the controller against a fake device and the
//! refusal path of rvsd. Creating the rules on a NIC that supports them has not been run.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

use crate::dpdk::flow::{self, Flow, QueueRule, L4};
use crate::dpdk::port::Port;
use conf::LaddrSteering;
use fastpath::snapshot::Snapshot;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

/// A local address to steer and the index (in the snapshot's ports) of the port that owns it.
pub type Target = (Ipv4Addr, usize);

/// One flow rule on one port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rule {
    /// Index of the port in the snapshot's (and the configuration's) port list.
    pub port: usize,
    /// What the rule matches and where it sends it.
    pub flow: QueueRule,
}

/// The rules that steer replies to `targets` for `queues.len()` workers, worker `w`
/// receiving on rx queue `queues[w]` of every port: for each distinct target, TCP then UDP,
/// one rule per worker in worker order. Targets are taken in address order, duplicates once.
///
/// # Errors
/// Why no rule can express the ownership rule: one worker (nothing to steer), or a number of
/// workers that is not a power of two (`lport % W` is not a bit mask).
pub fn plan(queues: &[u16], targets: &[Target]) -> Result<Vec<Rule>, String> {
    let workers = queues.len();
    if workers <= 1 {
        return Err(format!(
            "{workers} worker: every reply is received by the worker that owns it"
        ));
    }
    if !workers.is_power_of_two() {
        return Err(format!(
            "{workers} workers is not a power of two: the owner of a local port \
             (lport % {workers}) is not a bit mask a flow rule can match"
        ));
    }
    let mask = u16::try_from(workers - 1)
        .map_err(|_| format!("{workers} workers: more than 16 bits of local port"))?;
    let targets: BTreeSet<Target> = targets.iter().copied().collect();
    let mut rules = Vec::with_capacity(targets.len() * 2 * workers);
    for &(dst, port) in &targets {
        for l4 in [L4::Tcp, L4::Udp] {
            for (w, &queue) in (0..=mask).zip(queues) {
                rules.push(Rule {
                    port,
                    flow: QueueRule {
                        dst,
                        l4,
                        port: w,
                        mask,
                        queue,
                    },
                });
            }
        }
    }
    Ok(rules)
}

/// The local addresses of `snapshot` to steer, each with the port that owns it, and apart
/// those that are also the address of a virtual service (not steered: see the module
/// documentation). A local address no port owns (which validation prevents) is left out.
pub fn targets(snapshot: &Snapshot) -> (Vec<Target>, Vec<Ipv4Addr>) {
    let mut steer = Vec::new();
    let mut shared = Vec::new();
    for &lip in snapshot.laddrs() {
        if snapshot.is_vip(lip) {
            shared.push(lip);
            continue;
        }
        steer.extend(
            (0..snapshot.ports.len())
                .filter(|&port| snapshot.owns_on(port, lip))
                .map(|port| (lip, port)),
        );
    }
    (steer, shared)
}

/// Where rules are validated and installed.
pub trait Device {
    /// An installed rule.
    type Flow;
    /// Whether the device would accept `rule` (installs nothing).
    fn validate(&self, rule: &Rule) -> Result<(), String>;
    /// Installs `rule`.
    fn create(&self, rule: &Rule) -> Result<Self::Flow, String>;
    /// Removes an installed rule.
    fn destroy(&self, flow: Self::Flow) -> Result<(), String>;
}

/// The started ports, indexed like the configuration's (and the snapshot's) port list.
pub struct Ports<'a, 'pool>(pub &'a [Port<'pool>]);

impl<'a, 'pool> Ports<'a, 'pool> {
    fn port(&self, rule: &Rule) -> Result<&'a Port<'pool>, String> {
        self.0
            .get(rule.port)
            .ok_or_else(|| format!("no port {} for {}", rule.port, rule.flow))
    }
}

impl<'a> Device for Ports<'a, '_> {
    type Flow = Flow<'a>;

    fn validate(&self, rule: &Rule) -> Result<(), String> {
        let port = self.port(rule)?;
        flow::validate(port, &rule.flow).map_err(|e| format!("{}: {e}", port.name()))
    }

    fn create(&self, rule: &Rule) -> Result<Flow<'a>, String> {
        let port = self.port(rule)?;
        flow::create(port, &rule.flow).map_err(|e| format!("{}: {e}", port.name()))
    }

    fn destroy(&self, flow: Flow<'a>) -> Result<(), String> {
        flow.destroy().map_err(|e| e.to_string())
    }
}

/// What is in effect, for the logs and `--stats-json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// `rte_flow` (rules are being kept in step with the local addresses) or `handover`.
    pub mode: &'static str,
    /// Rules installed now.
    pub rules: usize,
    /// Why the hand-over is used, or the last refusal of a rule since rules were installed.
    pub reason: Option<String>,
}

enum State {
    /// No rule, for good (mode `handover`, a worker count no rule can express, or a refusal
    /// in mode `auto`).
    Handover(String),
    /// No local address to steer yet: the decision waits for the first one.
    Pending,
    /// Rules are kept in step with the local addresses.
    Active,
}

/// The rules in effect on a set of ports, and what to do as local addresses change.
pub struct Steering<D: Device> {
    device: D,
    want: LaddrSteering,
    queues: Vec<u16>,
    state: State,
    installed: BTreeMap<Target, Vec<D::Flow>>,
    /// The last rule refused while rules were in effect.
    refused: Option<String>,
    /// Local addresses reported as not steered because they are also virtual addresses.
    shared: BTreeSet<Ipv4Addr>,
}

impl<D: Device> Steering<D> {
    /// Decides how replies are steered for workers receiving on `queues` (worker `w` on
    /// `queues[w]` of every port), as `want` asks, and installs the rules of `targets` if
    /// rules are used.
    ///
    /// # Errors
    /// With [`LaddrSteering::RteFlow`], the reason no rule can be used: the number of workers,
    /// or the driver's message for the first rule it refused.
    ///
    /// Logs nothing: the caller logs [`Steering::status`].
    pub fn start(
        device: D,
        want: LaddrSteering,
        queues: Vec<u16>,
        targets: &[Target],
    ) -> Result<Steering<D>, String> {
        let state = match want {
            LaddrSteering::Handover => State::Handover("laddr_steering = \"handover\"".into()),
            _ => match plan(&queues, &[]) {
                Ok(_) => State::Pending,
                Err(reason) if want == LaddrSteering::RteFlow => {
                    return Err(format!("laddr_steering = \"rte_flow\": {reason}"))
                }
                Err(reason) => State::Handover(reason),
            },
        };
        let mut steering = Steering {
            device,
            want,
            queues,
            state,
            installed: BTreeMap::new(),
            refused: None,
            shared: BTreeSet::new(),
        };
        steering.decide(targets, true)?;
        Ok(steering)
    }

    /// Follows a newly published snapshot: rules for local addresses that appeared, none for
    /// those that went. A refusal is logged; the hand-over covers what has no rule.
    pub fn update(&mut self, snapshot: &Snapshot) {
        let (targets, shared) = targets(snapshot);
        self.note_shared(&shared);
        self.sync(&targets);
    }

    /// Logs, once each, the local addresses left out because they are also virtual addresses
    /// (the second list of [`targets`]).
    pub fn note_shared(&mut self, shared: &[Ipv4Addr]) {
        for &lip in shared {
            if !matches!(self.state, State::Handover(_)) && self.shared.insert(lip) {
                log::warn!(
                    "local address {lip} is also a virtual address: replies to it are not \
                     steered by flow rules (they would pull the service's clients onto few \
                     queues); the hand-over delivers them"
                );
            }
        }
    }

    /// As [`Steering::update`], from the targets themselves.
    pub fn sync(&mut self, targets: &[Target]) {
        // Errors are only returned while starting.
        let _ = self.decide(targets, false);
    }

    fn decide(&mut self, targets: &[Target], starting: bool) -> Result<(), String> {
        match self.state {
            State::Handover(_) => Ok(()),
            State::Pending if targets.is_empty() => Ok(()),
            State::Pending => self.first_install(targets, starting),
            State::Active => {
                self.follow(targets);
                Ok(())
            }
        }
    }

    /// Validates every rule, then installs them all; any refusal means no rule at all.
    fn first_install(&mut self, targets: &[Target], starting: bool) -> Result<(), String> {
        let outcome = plan(&self.queues, targets).and_then(|rules| {
            for rule in &rules {
                self.device.validate(rule)?;
            }
            for rule in &rules {
                let flow = self.device.create(rule)?;
                let target = (rule.flow.dst, rule.port);
                self.installed.entry(target).or_default().push(flow);
            }
            Ok(())
        });
        match outcome {
            Ok(()) => {
                self.state = State::Active;
                if !starting {
                    log::info!("FULLNAT reply steering: {}", self.status().describe());
                }
                Ok(())
            }
            Err(reason) => {
                self.remove_all();
                match self.want {
                    LaddrSteering::RteFlow if starting => {
                        Err(format!("laddr_steering = \"rte_flow\": {reason}"))
                    }
                    LaddrSteering::RteFlow => {
                        log::error!(
                            "laddr_steering = \"rte_flow\": {reason}; FULLNAT replies received \
                             by another worker are handed over"
                        );
                        self.refused = Some(reason);
                        self.state = State::Active;
                        Ok(())
                    }
                    // At start the caller logs what is in effect, with this reason.
                    _ if starting => {
                        self.state = State::Handover(reason);
                        Ok(())
                    }
                    _ => {
                        log::warn!(
                            "laddr_steering = \"{}\": no flow rules, FULLNAT replies received by \
                             another worker are handed over: {reason}",
                            self.want
                        );
                        self.state = State::Handover(reason);
                        Ok(())
                    }
                }
            }
        }
    }

    /// Removes the rules of targets that went, installs those of targets that came.
    fn follow(&mut self, targets: &[Target]) {
        let wanted: BTreeSet<Target> = targets.iter().copied().collect();
        let gone: Vec<Target> = self
            .installed
            .keys()
            .filter(|t| !wanted.contains(t))
            .copied()
            .collect();
        for target in gone {
            if let Some(flows) = self.installed.remove(&target) {
                self.destroy(flows);
                log::info!("flow rules for local address {} removed", target.0);
            }
        }
        for &target in &wanted {
            if self.installed.contains_key(&target) {
                continue;
            }
            let mut flows = Vec::new();
            let outcome = plan(&self.queues, &[target]).and_then(|rules| {
                for rule in &rules {
                    flows.push(self.device.create(rule)?);
                }
                Ok(rules.len())
            });
            match outcome {
                Ok(n) => {
                    self.installed.insert(target, flows);
                    log::info!("flow rules for local address {}: {n} installed", target.0);
                }
                Err(reason) => {
                    self.destroy(flows);
                    log::warn!(
                        "no flow rules for local address {}, its replies are handed over: \
                         {reason}",
                        target.0
                    );
                    self.refused = Some(reason);
                }
            }
        }
    }

    fn destroy(&self, flows: Vec<D::Flow>) {
        for flow in flows {
            if let Err(e) = self.device.destroy(flow) {
                log::warn!("{e}");
            }
        }
    }

    fn remove_all(&mut self) {
        let installed = std::mem::take(&mut self.installed);
        for flows in installed.into_values() {
            self.destroy(flows);
        }
    }

    /// Removes every rule (at shutdown, before the ports stop); the hand-over remains.
    pub fn shutdown(&mut self) {
        let rules = self.rules();
        self.remove_all();
        if rules > 0 {
            log::info!("{rules} flow rules removed");
        }
    }

    /// Rules installed now.
    pub fn rules(&self) -> usize {
        self.installed.values().map(Vec::len).sum()
    }

    /// What is in effect.
    pub fn status(&self) -> Status {
        match &self.state {
            State::Handover(reason) => Status {
                mode: "handover",
                rules: 0,
                reason: Some(reason.clone()),
            },
            State::Pending => Status {
                mode: "handover",
                rules: 0,
                reason: Some(
                    "no FULLNAT local address to steer yet (rules are tried when one is added)"
                        .into(),
                ),
            },
            State::Active => Status {
                mode: "rte_flow",
                rules: self.rules(),
                reason: self.refused.clone(),
            },
        }
    }
}

impl Status {
    /// One line for the log.
    pub fn describe(&self) -> String {
        match (self.mode, &self.reason) {
            ("rte_flow", None) => format!("NIC flow rules (rte_flow), {} rules", self.rules),
            ("rte_flow", Some(r)) => {
                format!(
                    "NIC flow rules (rte_flow), {} rules; last refusal: {r}",
                    self.rules
                )
            }
            (_, Some(r)) => format!("hand-over between workers ({r})"),
            (_, None) => "hand-over between workers".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn rule(port: usize, dst: &str, l4: L4, w: u16, mask: u16, queue: u16) -> Rule {
        Rule {
            port,
            flow: QueueRule {
                dst: ip(dst),
                l4,
                port: w,
                mask,
                queue,
            },
        }
    }

    #[test]
    fn two_workers_two_ports() {
        let targets = [(ip("10.0.0.201"), 0), (ip("192.168.1.200"), 1)];
        let rules = plan(&[0, 1], &targets).unwrap();
        let expected: Vec<Rule> = [("10.0.0.201", 0), ("192.168.1.200", 1)]
            .into_iter()
            .flat_map(|(dst, port)| {
                [L4::Tcp, L4::Udp]
                    .into_iter()
                    .flat_map(move |l4| (0..2).map(move |w| rule(port, dst, l4, w, 1, w)))
            })
            .collect();
        assert_eq!(rules, expected);
        assert_eq!(rules.len(), 8);
        assert_eq!(rules[0], rule(0, "10.0.0.201", L4::Tcp, 0, 1, 0));
        assert_eq!(rules[3], rule(0, "10.0.0.201", L4::Udp, 1, 1, 1));
        assert_eq!(rules[7], rule(1, "192.168.1.200", L4::Udp, 1, 1, 1));
    }

    #[test]
    fn four_workers_several_addresses_sorted_and_deduplicated() {
        // Worker w receives on queue 3 - w: the rule follows the worker, not the bits.
        let targets = [
            (ip("10.0.0.202"), 0),
            (ip("192.168.1.200"), 1),
            (ip("10.0.0.201"), 0),
            (ip("10.0.0.202"), 0),
            (ip("192.168.1.200"), 1),
        ];
        let rules = plan(&[3, 2, 1, 0], &targets).unwrap();
        let mut expected = Vec::new();
        for (dst, port) in [("10.0.0.201", 0), ("10.0.0.202", 0), ("192.168.1.200", 1)] {
            for l4 in [L4::Tcp, L4::Udp] {
                for w in 0..4 {
                    expected.push(rule(port, dst, l4, w, 3, 3 - w));
                }
            }
        }
        assert_eq!(rules, expected);
        assert_eq!(rules.len(), 3 * 2 * 4);
        // Every local port reaches exactly the worker that owns it.
        for lport in [1025u16, 1026, 4000, 65535] {
            let owner = fastpath::laddr::owner(lport, 4);
            let matching: Vec<&Rule> = rules
                .iter()
                .filter(|r| r.port == 0 && r.flow.dst == ip("10.0.0.201") && r.flow.l4 == L4::Tcp)
                .filter(|r| lport & r.flow.mask == r.flow.port)
                .collect();
            assert_eq!(matching.len(), 1, "{lport}");
            assert_eq!(usize::from(matching[0].flow.queue), 3 - owner, "{lport}");
        }
    }

    #[test]
    fn no_rules_for_one_or_three_workers() {
        let targets = [(ip("10.0.0.201"), 0)];
        let one = plan(&[0], &targets).unwrap_err();
        assert!(one.contains("1 worker"), "{one}");
        let three = plan(&[0, 1, 2], &targets).unwrap_err();
        assert!(three.contains("3 workers is not a power of two"), "{three}");
        assert!(plan(&[], &targets).is_err());
        assert_eq!(plan(&[0, 1], &[]), Ok(Vec::new()));
    }

    const CONFIG: &str = r#"
[eal]
args = []
[[port]]
name = "dpdk0"
addrs = ["10.0.0.1/24", "10.0.0.100/32", "10.0.0.201/32", "10.0.0.202/32"]
[[port]]
name = "dpdk1"
addrs = ["192.168.1.1/24", "192.168.1.200/32"]
[[service]]
vip = "10.0.0.100:80"
proto = "tcp"
laddrs = ["10.0.0.202", "192.168.1.200", "10.0.0.201"]
  [[service.real]]
  addr = "192.168.1.11:8080"
  mode = "fullnat"
[[service]]
vip = "10.0.0.100:53"
proto = "udp"
laddrs = ["10.0.0.201", "10.0.0.100"]
  [[service.real]]
  addr = "192.168.1.11:53"
  mode = "fullnat"
"#;

    #[test]
    fn targets_of_a_snapshot() {
        let config = conf::Config::parse(CONFIG, "t.toml").unwrap();
        let snapshot =
            Snapshot::build(&config, &[[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]], None, 2).unwrap();
        let (steer, shared) = targets(&snapshot);
        assert_eq!(
            steer,
            vec![
                (ip("10.0.0.201"), 0),
                (ip("10.0.0.202"), 0),
                (ip("192.168.1.200"), 1)
            ]
        );
        assert_eq!(shared, vec![ip("10.0.0.100")], "a VIP is never steered");
    }

    /// A device that refuses rules for `refuse` and records what it holds.
    #[derive(Default)]
    struct Fake {
        refuse: RefCell<BTreeSet<Ipv4Addr>>,
        validated: RefCell<usize>,
        held: RefCell<BTreeSet<Rule>>,
    }

    impl Device for &Fake {
        type Flow = Rule;

        fn validate(&self, rule: &Rule) -> Result<(), String> {
            *self.validated.borrow_mut() += 1;
            if self.refuse.borrow().contains(&rule.flow.dst) {
                return Err(format!("refused {}", rule.flow));
            }
            Ok(())
        }

        fn create(&self, rule: &Rule) -> Result<Rule, String> {
            self.validate(rule)?;
            assert!(self.held.borrow_mut().insert(*rule), "created twice");
            Ok(*rule)
        }

        fn destroy(&self, flow: Rule) -> Result<(), String> {
            assert!(self.held.borrow_mut().remove(&flow), "destroyed twice");
            Ok(())
        }
    }

    #[test]
    fn auto_installs_when_every_rule_validates_and_follows_changes() {
        let fake = Fake::default();
        let a = (ip("10.0.0.201"), 0);
        let b = (ip("192.168.1.200"), 1);
        let mut s = Steering::start(&fake, LaddrSteering::Auto, vec![0, 1], &[a]).unwrap();
        assert_eq!(s.status().mode, "rte_flow");
        assert_eq!(s.rules(), 4);
        assert_eq!(*fake.validated.borrow(), 4 + 4, "validated, then created");
        s.sync(&[a, b]);
        assert_eq!(s.rules(), 8);
        assert_eq!(fake.held.borrow().len(), 8);
        s.sync(&[b]);
        assert_eq!(s.rules(), 4);
        assert!(fake.held.borrow().iter().all(|r| r.flow.dst == b.0));
        // A refused address keeps the others; the reason is reported.
        fake.refuse.borrow_mut().insert(a.0);
        s.sync(&[a, b]);
        let status = s.status();
        assert_eq!((status.mode, status.rules), ("rte_flow", 4));
        assert!(status.reason.unwrap().contains("refused"));
        assert_eq!(
            fake.held.borrow().len(),
            4,
            "nothing left of the refused address"
        );
        s.shutdown();
        assert!(fake.held.borrow().is_empty());
    }

    #[test]
    fn auto_falls_back_to_the_handover_when_a_rule_is_refused() {
        let fake = Fake::default();
        fake.refuse.borrow_mut().insert(ip("192.168.1.200"));
        let targets = [(ip("10.0.0.201"), 0), (ip("192.168.1.200"), 1)];
        let mut s = Steering::start(&fake, LaddrSteering::Auto, vec![0, 1], &targets).unwrap();
        let status = s.status();
        assert_eq!((status.mode, status.rules), ("handover", 0));
        assert!(status
            .reason
            .unwrap()
            .starts_with("refused ipv4 dst 192.168.1.200"));
        assert!(fake.held.borrow().is_empty(), "validation installs nothing");
        // It does not try again.
        fake.refuse.borrow_mut().clear();
        s.sync(&targets);
        assert_eq!(s.status().mode, "handover");
        assert!(fake.held.borrow().is_empty());
    }

    #[test]
    fn rte_flow_refusal_at_start_is_an_error() {
        let fake = Fake::default();
        fake.refuse.borrow_mut().insert(ip("10.0.0.201"));
        let targets = [(ip("10.0.0.201"), 0)];
        let e = Steering::start(&fake, LaddrSteering::RteFlow, vec![0, 1], &targets)
            .err()
            .unwrap();
        assert!(
            e.starts_with("laddr_steering = \"rte_flow\": refused"),
            "{e}"
        );
        let e = Steering::start(&fake, LaddrSteering::RteFlow, vec![0, 1, 2], &[])
            .err()
            .unwrap();
        assert!(e.contains("not a power of two"), "{e}");
    }

    #[test]
    fn pending_until_a_local_address_appears() {
        let fake = Fake::default();
        let mut s = Steering::start(&fake, LaddrSteering::Auto, vec![0, 1], &[]).unwrap();
        assert_eq!(s.status().mode, "handover");
        assert!(s
            .status()
            .reason
            .unwrap()
            .contains("no FULLNAT local address"));
        s.sync(&[(ip("10.0.0.201"), 0)]);
        assert_eq!((s.status().mode, s.rules()), ("rte_flow", 4));
    }

    #[test]
    fn handover_and_unsuitable_worker_counts_never_touch_the_device() {
        let fake = Fake::default();
        let targets = [(ip("10.0.0.201"), 0)];
        for (want, queues) in [
            (LaddrSteering::Handover, vec![0, 1]),
            (LaddrSteering::Auto, vec![0]),
            (LaddrSteering::Auto, vec![0, 1, 2]),
        ] {
            let mut s = Steering::start(&fake, want, queues, &targets).unwrap();
            s.sync(&targets);
            assert_eq!(s.status().mode, "handover");
        }
        assert_eq!(*fake.validated.borrow(), 0);
    }
}
