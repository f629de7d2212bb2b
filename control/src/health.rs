//! The health overlay: the live pool is the configured pool × health × quorum.
//!
//! The checker (`rvscheck`) reports each real server's state ([`HealthReport`]); the overlay
//! keeps it apart from the configuration [`Model`](crate::model::Model), so a reload or
//! `ipvsadm -e` never revives a real server the checker holds down. [`Overlay::live`] turns a
//! configured service into the one the data plane gets, as keepalived drives IPVS:
//!
//! - a down real leaves the pool (its connections continue, `expire_nodest_conn` applies), or
//!   stays with weight 0 under `inhibit_on_failure`;
//! - an up real has its configured weight, or the MISC_CHECK `dynamic` weight;
//! - quorum: the sum of live weights below `quorum - hysteresis` loses it, at or above
//!   `quorum + hysteresis` gains it; while it is lost a `sorry_server` takes all traffic (and
//!   stays at weight 0 under `sorry_server_inhibit` while unused).
//!
//! A real with checks starts up, or down with `alpha`; one added later (reload) likewise.

use std::collections::HashMap;
use std::net::SocketAddr;

use conf::health::ServiceHealth;
use conf::proto::{
    CheckState, DestEntry, HealthReport, RealHealthEntry, ServiceEntry, ServiceHealthEntry,
    ServiceKey,
};

/// What the checker last said about one real server.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RealState {
    up: bool,
    weight: Option<u32>,
    checks: Vec<CheckState>,
    since: u64,
    transitions: u64,
}

/// Quorum of one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Quorum {
    held: bool,
    transitions: u64,
}

/// A quorum change, for rvsd to log and to run `quorum_up`/`quorum_down`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumChange {
    /// The service.
    pub service: ServiceKey,
    /// Gained (`true`) or lost.
    pub held: bool,
    /// The live weight that decided it.
    pub live: u64,
    /// The command to run, if configured.
    pub command: Option<String>,
}

/// The health of every checked real server and the quorum of every service.
#[derive(Debug, Clone, Default)]
pub struct Overlay {
    health: HashMap<ServiceKey, ServiceHealth>,
    reals: HashMap<(ServiceKey, SocketAddr), RealState>,
    quorum: HashMap<ServiceKey, Quorum>,
}

fn key_of(h: &ServiceHealth) -> ServiceKey {
    ServiceKey {
        proto: h.proto,
        vip: h.vip,
    }
}

impl Overlay {
    /// The overlay of a freshly started rvsd: checked reals up, or down under `alpha`.
    pub fn new(health: &[ServiceHealth]) -> Overlay {
        let mut o = Overlay::default();
        o.reload(health);
        o
    }

    /// Takes new health settings (SIGHUP). Reals the checker holds keep their state; a checked
    /// real new to the overlay starts as `alpha` says; reals no longer checked are forgotten.
    pub fn reload(&mut self, health: &[ServiceHealth]) {
        self.health = health
            .iter()
            .filter(|h| h.is_checked() || h.sorry_server.is_some())
            .map(|h| (key_of(h), h.clone()))
            .collect();
        let checked: std::collections::HashSet<(ServiceKey, SocketAddr)> = self
            .health
            .values()
            .flat_map(|h| {
                h.reals
                    .iter()
                    .filter(|r| !r.checks.is_empty())
                    .map(move |r| (key_of(h), r.addr))
            })
            .collect();
        self.reals.retain(|k, _| checked.contains(k));
        for k in checked {
            let alpha = self.health[&k.0].alpha;
            self.reals.entry(k).or_insert(RealState {
                up: !alpha,
                weight: None,
                checks: Vec::new(),
                since: 0,
                transitions: 0,
            });
        }
        self.quorum.retain(|k, _| self.health.contains_key(k));
    }

    /// Takes a checker report at unix time `now`. Returns whether the live pool may have
    /// changed (state or weight), and whether the real went up or down.
    pub fn report(&mut self, r: &HealthReport, now: u64) -> Result<ReportEffect, String> {
        let Some(state) = self.reals.get_mut(&(r.service, r.real)) else {
            return Err(format!(
                "{} is not a checked real server of {}",
                r.real, r.service
            ));
        };
        let flipped = state.up != r.up;
        let reweighted = state.weight != r.weight;
        if flipped {
            state.up = r.up;
            state.since = now;
            state.transitions += 1;
        }
        state.weight = r.weight;
        state.checks = r.checks.clone();
        Ok(ReportEffect {
            flipped,
            pool_changed: flipped || (reweighted && state.up),
        })
    }

    /// Re-evaluates the quorum of `key` against the `configured` service (the model's); returns
    /// the change, if any.
    pub fn update_quorum(
        &mut self,
        key: ServiceKey,
        configured: Option<&conf::Service>,
    ) -> Option<QuorumChange> {
        let h = self.health.get(&key)?;
        let configured = configured?;
        let live: u64 = configured
            .reals
            .iter()
            .filter_map(|r| self.real_weight(key, r))
            .map(u64::from)
            .sum();
        let q = self.quorum.entry(key).or_insert(Quorum {
            held: true,
            transitions: 0,
        });
        let lose = u64::from(h.quorum.saturating_sub(h.hysteresis));
        let gain = u64::from(h.quorum) + u64::from(h.hysteresis);
        let held = if q.held { live >= lose } else { live >= gain };
        if held == q.held {
            return None;
        }
        q.held = held;
        q.transitions += 1;
        Some(QuorumChange {
            service: key,
            held,
            live,
            command: if held {
                h.quorum_up.clone()
            } else {
                h.quorum_down.clone()
            },
        })
    }

    /// The live weight of a configured real: `None` = out of the pool.
    fn real_weight(&self, key: ServiceKey, real: &conf::Real) -> Option<u32> {
        let Some(state) = self.reals.get(&(key, real.addr)) else {
            return Some(real.weight);
        };
        let inhibit = self
            .health
            .get(&key)
            .and_then(|h| h.real(real.addr))
            .is_some_and(|r| r.inhibit_on_failure);
        match (state.up, inhibit) {
            (true, _) => Some(state.weight.unwrap_or(real.weight)),
            (false, true) => Some(0),
            (false, false) => None,
        }
    }

    fn quorum_held(&self, key: ServiceKey) -> bool {
        self.quorum.get(&key).is_none_or(|q| q.held)
    }

    /// The service the data plane gets for the `configured` one.
    pub fn live(&self, configured: conf::Service) -> conf::Service {
        let key = ServiceKey {
            proto: configured.proto,
            vip: configured.vip,
        };
        let Some(h) = self.health.get(&key) else {
            return configured;
        };
        let mode = configured.reals.first().map_or(conf::Mode::Nat, |r| r.mode);
        let mut reals: Vec<conf::Real> = Vec::new();
        let held = self.quorum_held(key);
        // As keepalived: losing quorum removes the live reals only to hand the traffic to a
        // sorry server; without one they keep serving (only quorum_down runs).
        if held || h.sorry_server.is_none() {
            for r in &configured.reals {
                if let Some(weight) = self.real_weight(key, r) {
                    reals.push(conf::Real {
                        weight,
                        ..r.clone()
                    });
                }
            }
        }
        if let Some(sorry) = h.sorry_server {
            if !reals.iter().any(|r| r.addr == sorry) && (!held || h.sorry_server_inhibit) {
                reals.push(conf::Real {
                    addr: sorry,
                    mode,
                    weight: if held { 0 } else { 1 },
                    u_threshold: 0,
                    l_threshold: 0,
                    tunnel: conf::Tunnel::default(),
                });
            }
        }
        conf::Service {
            reals,
            ..configured
        }
    }

    /// Rewrites an `-L` entry made from the configured service to show the live pool, as
    /// ipvsadm shows the kernel's after keepalived's changes: down reals absent (or weight 0
    /// under inhibit), the sorry server present while it serves.
    pub fn list_entry(&self, entry: &mut ServiceEntry, configured: &conf::Service) {
        let live = self.live(configured.clone());
        let mut dests: Vec<DestEntry> = Vec::new();
        for d in &entry.dests {
            if let Some(r) = live.reals.iter().find(|r| r.addr == d.addr) {
                dests.push(DestEntry {
                    weight: r.weight,
                    ..d.clone()
                });
            }
        }
        for r in &live.reals {
            if !entry.dests.iter().any(|d| d.addr == r.addr) {
                dests.insert(
                    0,
                    DestEntry {
                        addr: r.addr,
                        mode: r.mode,
                        weight: r.weight,
                        u_threshold: 0,
                        l_threshold: 0,
                        tunnel: r.tunnel,
                        active_conns: 0,
                        inact_conns: 0,
                        persist_conns: 0,
                        counters: Default::default(),
                        rates: Default::default(),
                    },
                );
            }
        }
        entry.dests = dests;
    }

    /// `-L --health` for the `configured` service (reals in the order given).
    pub fn health_entry(&self, configured: &conf::Service) -> ServiceHealthEntry {
        let key = ServiceKey {
            proto: configured.proto,
            vip: configured.vip,
        };
        let q = self.quorum.get(&key).copied().unwrap_or(Quorum {
            held: true,
            transitions: 0,
        });
        let sorry = self
            .health
            .get(&key)
            .is_some_and(|h| h.sorry_server.is_some() && !q.held);
        ServiceHealthEntry {
            key,
            quorum: q.held,
            sorry,
            quorum_transitions: q.transitions,
            reals: configured
                .reals
                .iter()
                .map(|r| {
                    let state = self.reals.get(&(key, r.addr));
                    RealHealthEntry {
                        real: r.addr,
                        up: state.is_none_or(|s| s.up),
                        live_weight: if q.held
                            || self
                                .health
                                .get(&key)
                                .is_none_or(|h| h.sorry_server.is_none())
                        {
                            self.real_weight(key, r)
                        } else {
                            None
                        },
                        since: state.map_or(0, |s| s.since),
                        transitions: state.map_or(0, |s| s.transitions),
                        checks: state.map(|s| s.checks.clone()).unwrap_or_default(),
                    }
                })
                .collect(),
        }
    }

    /// Whether the real is up (unchecked reals are), and its transitions so far.
    pub fn real_state(&self, service: ServiceKey, real: SocketAddr) -> (bool, u64) {
        self.reals
            .get(&(service, real))
            .map_or((true, 0), |s| (s.up, s.transitions))
    }

    /// `omega`: the `quorum_down` commands to run as the checker stops, for every service that
    /// has `omega` set and holds quorum.
    pub fn omega(&self) -> Vec<(ServiceKey, String)> {
        let mut commands: Vec<(ServiceKey, String)> = self
            .health
            .iter()
            .filter(|(key, h)| h.omega && self.quorum_held(**key))
            .filter_map(|(key, h)| Some((*key, h.quorum_down.clone()?)))
            .collect();
        commands.sort_by_key(|(k, _)| (k.proto.as_str(), k.vip.ip(), k.vip.port()));
        commands
    }

    /// Every checked real server: whether it is up, and its transitions so far.
    pub fn checked(&self) -> impl Iterator<Item = ((ServiceKey, SocketAddr), (bool, u64))> + '_ {
        self.reals.iter().map(|(k, s)| (*k, (s.up, s.transitions)))
    }
}

/// What a report did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportEffect {
    /// The real went up or down.
    pub flipped: bool,
    /// The live pool may differ.
    pub pool_changed: bool,
}

#[cfg(test)]
mod test {
    use super::*;
    use conf::Config;

    const BASE: &str = r#"
[eal]
args = []
[[port]]
name = "dpdk0"
addrs = ["10.0.0.1/24", "10.0.0.100/32"]
[[service]]
vip = "10.0.0.100:80"
proto = "tcp"
sched = "wrr"
quorum = 4
hysteresis = 1
quorum_up = "up.sh"
quorum_down = "down.sh"
sorry_server = "10.0.0.50:8080"
  [[service.real]]
  addr = "10.0.0.11:8080"
  mode = "nat"
  weight = 2
  [[service.real.check]]
  type = "tcp"
  [[service.real]]
  addr = "10.0.0.12:8080"
  mode = "nat"
  weight = 2
  inhibit_on_failure = true
  [[service.real.check]]
  type = "tcp"
  [[service.real]]
  addr = "10.0.0.13:8080"
  mode = "nat"
  weight = 1
  [[service.real.check]]
  type = "misc"
  path = "x"
  dynamic = true
"#;

    fn config(extra: &str) -> Config {
        let text = BASE.replacen("sched = \"wrr\"", &format!("sched = \"wrr\"\n{extra}"), 1);
        Config::parse(&text, "t.toml").unwrap_or_else(|e| panic!("{e}"))
    }

    fn key() -> ServiceKey {
        ServiceKey {
            proto: conf::Proto::Tcp,
            vip: "10.0.0.100:80".parse().unwrap(),
        }
    }

    fn report(real: &str, up: bool, weight: Option<u32>) -> HealthReport {
        HealthReport {
            service: key(),
            real: real.parse().unwrap(),
            up,
            weight,
            checks: vec![],
        }
    }

    fn pool(o: &Overlay, c: &Config) -> Vec<(String, u32)> {
        o.live(c.services[0].clone())
            .reals
            .iter()
            .map(|r| (r.addr.to_string(), r.weight))
            .collect()
    }

    #[test]
    fn test_down_removed_or_inhibited_and_dynamic_weight() {
        let c = config("");
        let mut o = Overlay::new(&c.health);
        let s = Some(&c.services[0]);
        assert_eq!(o.update_quorum(key(), s), None);
        assert_eq!(
            pool(&o, &c),
            [
                ("10.0.0.11:8080".into(), 2),
                ("10.0.0.12:8080".into(), 2),
                ("10.0.0.13:8080".into(), 1)
            ]
        );
        let e = o
            .report(&report("10.0.0.11:8080", false, None), 100)
            .unwrap();
        assert_eq!(
            e,
            ReportEffect {
                flipped: true,
                pool_changed: true
            }
        );
        o.report(&report("10.0.0.12:8080", false, None), 100)
            .unwrap();
        o.report(&report("10.0.0.13:8080", true, Some(7)), 100)
            .unwrap();
        // Live weight 7 ≥ 4 - 1: quorum kept.
        assert_eq!(o.update_quorum(key(), s), None);
        assert_eq!(
            pool(&o, &c),
            [("10.0.0.12:8080".into(), 0), ("10.0.0.13:8080".into(), 7)]
        );
        // A repeated report changes nothing.
        let e = o
            .report(&report("10.0.0.13:8080", true, Some(7)), 101)
            .unwrap();
        assert!(!e.pool_changed && !e.flipped);
        assert!(o.report(&report("10.0.0.99:8080", true, None), 1).is_err());
        let h = o.health_entry(&c.services[0]);
        assert_eq!(h.reals[0].since, 100);
        assert_eq!(h.reals[0].transitions, 1);
        assert_eq!(h.reals[0].live_weight, None);
        assert_eq!(h.reals[1].live_weight, Some(0));
    }

    #[test]
    fn test_quorum_hysteresis_and_sorry_server() {
        let c = config("sorry_server_inhibit = true\nomega = true");
        let mut o = Overlay::new(&c.health);
        let s = Some(&c.services[0]);
        assert_eq!(o.update_quorum(key(), s), None);
        assert_eq!(o.omega(), [(key(), "down.sh".to_string())]);
        // Unused sorry server kept at weight 0 (sorry_server_inhibit).
        assert!(pool(&o, &c).contains(&("10.0.0.50:8080".into(), 0)));
        o.report(&report("10.0.0.11:8080", false, None), 1).unwrap();
        // 3 ≥ 4 - 1 = 3: still held.
        assert_eq!(o.update_quorum(key(), s), None);
        o.report(&report("10.0.0.13:8080", false, None), 2).unwrap();
        // 2 < 3: lost; all traffic to the sorry server.
        let lost = o.update_quorum(key(), s).unwrap();
        assert_eq!(
            lost,
            QuorumChange {
                service: key(),
                held: false,
                live: 2,
                command: Some("down.sh".into())
            }
        );
        assert_eq!(pool(&o, &c), [("10.0.0.50:8080".into(), 1)]);
        // omega: quorum_down runs at shutdown only while quorum is held.
        assert_eq!(o.omega(), []);
        // Back to 3 (= quorum - hysteresis) is not enough: gaining needs 4 + 1 = 5.
        o.report(&report("10.0.0.13:8080", true, None), 3).unwrap();
        assert_eq!(o.update_quorum(key(), s), None);
        assert_eq!(pool(&o, &c), [("10.0.0.50:8080".into(), 1)]);
        o.report(&report("10.0.0.11:8080", true, None), 4).unwrap();
        let gained = o.update_quorum(key(), s).unwrap();
        assert!(gained.held);
        assert_eq!(gained.live, 5);
        assert_eq!(gained.command.as_deref(), Some("up.sh"));
        assert_eq!(pool(&o, &c).len(), 4);
        assert!(o.health_entry(&c.services[0]).quorum);
        assert_eq!(o.health_entry(&c.services[0]).quorum_transitions, 2);
    }

    #[test]
    fn test_quorum_lost_without_sorry_server_keeps_the_live_reals() {
        let text = BASE.replace("sorry_server = \"10.0.0.50:8080\"\n", "");
        let c = Config::parse(&text, "t.toml").unwrap_or_else(|e| panic!("{e}"));
        let mut o = Overlay::new(&c.health);
        let s = Some(&c.services[0]);
        o.report(&report("10.0.0.11:8080", false, None), 1).unwrap();
        o.report(&report("10.0.0.13:8080", false, None), 1).unwrap();
        let lost = o.update_quorum(key(), s).unwrap();
        assert!(!lost.held);
        assert_eq!(lost.command.as_deref(), Some("down.sh"));
        assert_eq!(pool(&o, &c), [("10.0.0.12:8080".into(), 2)]);
        let h = o.health_entry(&c.services[0]);
        assert!(!h.quorum && !h.sorry);
        assert_eq!(h.reals[1].live_weight, Some(2));
    }

    #[test]
    fn test_alpha_and_reload_keep_a_down_real_down() {
        let c = config("alpha = true");
        let mut o = Overlay::new(&c.health);
        let s = Some(&c.services[0]);
        // alpha: every checked real starts down (the inhibited one at weight 0), quorum lost.
        assert!(!o.update_quorum(key(), s).unwrap().held);
        assert_eq!(pool(&o, &c), [("10.0.0.50:8080".into(), 1)]);
        for r in ["10.0.0.11:8080", "10.0.0.12:8080", "10.0.0.13:8080"] {
            o.report(&report(r, true, None), 5).unwrap();
        }
        assert!(o.update_quorum(key(), s).unwrap().held);
        o.report(&report("10.0.0.11:8080", false, None), 6).unwrap();
        assert_eq!(o.update_quorum(key(), s), None);
        // A reload keeps the checker's verdict.
        let c2 = config("alpha = true");
        o.reload(&c2.health);
        assert_eq!(o.update_quorum(key(), Some(&c2.services[0])), None);
        assert!(!pool(&o, &c2).iter().any(|(a, _)| a == "10.0.0.11:8080"));
        assert_eq!(
            o.real_state(key(), "10.0.0.11:8080".parse().unwrap()),
            (false, 2)
        );
    }
}
