//! Which connection sync daemons run: at most one master and one backup, as in the kernel
//! (`ipvs->ms` and `ipvs->backup_tinfo`), with the errors `ipvsadm` prints for the kernel's
//! refusals. rvsd keeps one [`Daemons`] and starts or stops its sync thread's roles after each
//! successful call; this module does no I/O.
//!
//! The kernel's `start_sync_thread` checks, in order: the interface exists (`ENODEV`, which
//! ipvsadm prints as [`NO_SUCH_DEVICE`]; rvsd looks the interface up before calling
//! [`Daemons::start`], which needs its MTU), then the role is free (`EEXIST`,
//! [`DAEMON_EXISTS`]). Values that ipvsadm's parser would never send (an empty interface,
//! a unicast group, port or TTL 0) are refused first, naming the value.

use conf::{SyncDaemon, SyncRole};

/// libipvs's text for `EEXIST` from `ipvs_start_daemon`: the role already runs.
pub const DAEMON_EXISTS: &str = "Daemon has already run";
/// libipvs's text for `ESRCH` from `ipvs_stop_daemon`: the role does not run.
pub const NO_DAEMON: &str = "No daemon is running";
/// `strerror(ENODEV)`, what ipvsadm prints when the kernel finds no `--mcast-interface`.
pub const NO_SUCH_DEVICE: &str = "No such device";

/// The running daemons.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Daemons {
    master: Option<SyncDaemon>,
    backup: Option<SyncDaemon>,
}

impl Daemons {
    /// No daemon running.
    pub fn new() -> Daemons {
        Daemons::default()
    }

    fn slot(&mut self, role: SyncRole) -> &mut Option<SyncDaemon> {
        match role {
            SyncRole::Master => &mut self.master,
            SyncRole::Backup => &mut self.backup,
        }
    }

    /// Records `daemon` as running on an interface of `mtu` and returns it as it runs: its
    /// `maxlen` is the one the kernel would use ([`SyncDaemon::effective_maxlen`]). Fails,
    /// changing nothing, on a bad value or when its role already runs.
    pub fn start(&mut self, daemon: SyncDaemon, mtu: u16) -> Result<SyncDaemon, String> {
        if let Some((key, message)) = daemon.problems().into_iter().next() {
            return Err(format!("{key}: {message}"));
        }
        let slot = self.slot(daemon.role);
        if slot.is_some() {
            return Err(DAEMON_EXISTS.to_string());
        }
        let running = SyncDaemon {
            maxlen: Some(daemon.effective_maxlen(mtu)),
            ..daemon
        };
        *slot = Some(running.clone());
        Ok(running)
    }

    /// Stops the daemon of `role` and returns what it was.
    pub fn stop(&mut self, role: SyncRole) -> Result<SyncDaemon, String> {
        self.slot(role).take().ok_or_else(|| NO_DAEMON.to_string())
    }

    /// The daemon of `role`, if it runs.
    pub fn get(&self, role: SyncRole) -> Option<&SyncDaemon> {
        match role {
            SyncRole::Master => self.master.as_ref(),
            SyncRole::Backup => self.backup.as_ref(),
        }
    }

    /// The running daemons, the master first, as `-L --daemon` lists them.
    pub fn list(&self) -> Vec<SyncDaemon> {
        self.master.iter().chain(&self.backup).cloned().collect()
    }

    /// Whether a backup daemon runs: with the `backup_only` sysctl set, rvs then forwards
    /// nothing.
    pub fn backup_running(&self) -> bool {
        self.backup.is_some()
    }
}

#[cfg(test)]
mod test {
    use std::net::Ipv4Addr;

    use super::*;

    fn master() -> SyncDaemon {
        SyncDaemon::new(SyncRole::Master, "rvs1")
    }

    fn backup() -> SyncDaemon {
        SyncDaemon {
            syncid: 9,
            ..SyncDaemon::new(SyncRole::Backup, "rvs1")
        }
    }

    #[test]
    fn test_start_fills_maxlen_and_lists_master_first() {
        let mut d = Daemons::new();
        assert_eq!(d.list(), []);
        let b = d.start(backup(), 9000).unwrap();
        assert_eq!(b.maxlen, Some(8972));
        assert!(d.backup_running());
        let m = d.start(master(), 9000).unwrap();
        assert_eq!(m.maxlen, Some(1472));
        assert_eq!(d.list(), [m.clone(), b.clone()]);
        assert_eq!(d.get(SyncRole::Master), Some(&m));
        assert_eq!(d.get(SyncRole::Backup), Some(&b));
    }

    #[test]
    fn test_start_of_a_running_role_fails_unchanged() {
        let mut d = Daemons::new();
        let m = d.start(master(), 1500).unwrap();
        let other = SyncDaemon {
            syncid: 5,
            ..SyncDaemon::new(SyncRole::Master, "rvs0")
        };
        assert_eq!(
            d.start(other, 1500),
            Err("Daemon has already run".to_string())
        );
        assert_eq!(d.list(), [m]);
        // The other role is free: the kernel runs a master and a backup at once.
        assert!(d.start(backup(), 1500).is_ok());
        assert_eq!(
            d.start(backup(), 1500),
            Err("Daemon has already run".to_string())
        );
    }

    #[test]
    fn test_stop() {
        let mut d = Daemons::new();
        assert_eq!(
            d.stop(SyncRole::Master),
            Err("No daemon is running".to_string())
        );
        let b = d.start(backup(), 1500).unwrap();
        assert_eq!(
            d.stop(SyncRole::Master),
            Err("No daemon is running".to_string())
        );
        assert_eq!(d.stop(SyncRole::Backup), Ok(b));
        assert!(!d.backup_running());
        assert_eq!(
            d.stop(SyncRole::Backup),
            Err("No daemon is running".to_string())
        );
        assert_eq!(d, Daemons::new());
    }

    #[test]
    fn test_bad_values_are_refused_before_the_role_check() {
        let mut d = Daemons::new();
        d.start(master(), 1500).unwrap();
        let unicast = SyncDaemon {
            group: Ipv4Addr::new(10, 0, 0, 81),
            ..master()
        };
        assert_eq!(
            d.start(unicast, 1500),
            Err("group: 10.0.0.81 is not an IPv4 multicast address (224.0.0.0/4)".to_string())
        );
        let long = SyncDaemon::new(SyncRole::Backup, "a-very-long-ifname");
        assert_eq!(
            d.start(long, 1500),
            Err(
                "interface: \"a-very-long-ifname\" is not 1 to 15 bytes long (a Linux interface name)"
                    .to_string()
            )
        );
        assert!(!d.backup_running());
    }

    #[test]
    fn test_given_maxlen_is_clamped_as_the_kernel() {
        let mut d = Daemons::new();
        let small = SyncDaemon {
            maxlen: Some(100),
            ..backup()
        };
        assert_eq!(d.start(small, 1500).unwrap().maxlen, Some(1024));
        let big = SyncDaemon {
            maxlen: Some(9000),
            ..master()
        };
        assert_eq!(d.start(big, 1500).unwrap().maxlen, Some(9000));
    }
}
