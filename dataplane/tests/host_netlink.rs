//! The rtnetlink side of the host path against the real kernel, in a network namespace the
//! test thread makes for itself (`unshare(CLONE_NEWNET)`: the thread, the `ip` commands it
//! runs and the sockets it opens live there; the namespace goes with them).

use dataplane::host::netlink::{configure_twin, AddrEvent, Follower, Owned};
use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::process::Command;
use std::time::{Duration, Instant};

/// How fast a change must be published (issue 10: owned within 100 ms).
const DEADLINE: Duration = Duration::from_millis(100);

/// Moves the calling thread into a new, empty network namespace.
fn own_netns() {
    // SAFETY: unshare only changes the calling thread's namespaces; no memory is involved.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(
        rc,
        0,
        "unshare(CLONE_NEWNET): {}",
        std::io::Error::last_os_error()
    );
}

fn ip(args: &str) {
    let out = Command::new("timeout")
        .arg("10")
        .arg("ip")
        .args(args.split_whitespace())
        .output()
        .expect("run ip");
    assert!(
        out.status.success(),
        "ip {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ev(iface: &str, cidr: &str, added: bool) -> AddrEvent {
    let (a, p) = cidr.split_once('/').unwrap();
    AddrEvent {
        iface: iface.into(),
        addr: a.parse().unwrap(),
        prefix_len: p.parse().unwrap(),
        added,
    }
}

fn set(cidrs: &[&str]) -> BTreeSet<Owned> {
    cidrs
        .iter()
        .map(|c| {
            let (a, p) = c.split_once('/').unwrap();
            (a.parse::<Ipv4Addr>().unwrap(), p.parse().unwrap())
        })
        .collect()
}

/// The events that arrive within [`DEADLINE`] of `change` (then a short quiet period proves
/// nothing more follows).
fn events_after(follower: &Follower, change: impl FnOnce()) -> Vec<AddrEvent> {
    change();
    let start = Instant::now();
    let mut got = Vec::new();
    while let Ok(e) = follower.events().recv_timeout(Duration::from_millis(200)) {
        assert!(
            start.elapsed() <= DEADLINE,
            "{e:?} published after {:?}",
            start.elapsed()
        );
        got.push(e);
    }
    got
}

#[test]
fn follower_tracks_twin_addresses_exactly_across_recreation() {
    own_netns();
    ip("tuntap add rvst0 mode tap");
    ip("tuntap add other0 mode tap");
    ip("addr add 10.1.0.1/24 dev rvst0");
    ip("addr add 10.9.0.1/24 dev other0");
    let names = ["rvst0".to_owned(), "rvst1".to_owned()];
    let f = Follower::start(&names).expect("follower starts");
    // The first dump, as events and as the set.
    assert_eq!(
        f.events().recv_timeout(DEADLINE).ok(),
        Some(ev("rvst0", "10.1.0.1/24", true))
    );
    let addrs = f.addrs();
    assert_eq!(addrs["rvst0"], set(&["10.1.0.1/24"]));
    assert_eq!(addrs["rvst1"], set(&[]));
    assert_eq!(addrs.len(), 2, "only the followed names: {addrs:?}");

    let got = events_after(&f, || ip("addr add 10.1.0.100/32 dev rvst0"));
    assert_eq!(got, [ev("rvst0", "10.1.0.100/32", true)]);
    assert_eq!(f.addrs()["rvst0"], set(&["10.1.0.1/24", "10.1.0.100/32"]));

    // Unrelated interfaces are ignored.
    let got = events_after(&f, || ip("addr add 10.9.0.100/32 dev other0"));
    assert_eq!(got, []);

    let got = events_after(&f, || ip("addr del 10.1.0.100/32 dev rvst0"));
    assert_eq!(got, [ev("rvst0", "10.1.0.100/32", false)]);
    assert_eq!(f.addrs()["rvst0"], set(&["10.1.0.1/24"]));

    // The twin goes, and comes back with another ifindex.
    let got = events_after(&f, || ip("link del rvst0"));
    assert_eq!(got, [ev("rvst0", "10.1.0.1/24", false)]);
    let got = events_after(&f, || {
        ip("tuntap add rvst0 mode tap");
        ip("addr add 10.1.0.7/32 dev rvst0");
    });
    assert_eq!(got, [ev("rvst0", "10.1.0.7/32", true)]);
    assert_eq!(f.addrs()["rvst0"], set(&["10.1.0.7/32"]));

    // A tap twin, addressed with a label.
    let got = events_after(&f, || {
        ip("tuntap add rvst1 mode tap");
        ip("addr add 10.2.0.5/24 dev rvst1 label rvst1:vip");
    });
    assert_eq!(got, [ev("rvst1", "10.2.0.5/24", true)]);
    let addrs = f.addrs();
    assert_eq!(addrs["rvst0"], set(&["10.1.0.7/32"]));
    assert_eq!(addrs["rvst1"], set(&["10.2.0.5/24"]));
}

#[test]
fn configure_twin_sets_arp_ignore_addresses_and_up() {
    own_netns();
    // New interfaces start with IPv6 off here, as in the test topologies' namespaces: the
    // twin must turn it on for its IPv6 addresses.
    std::fs::write("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1").expect("sysctl");
    ip("tuntap add rvst2 mode tap");
    let nets = ["10.3.0.1/24", "10.3.0.100/32"].map(|s| {
        let (a, p) = s.split_once('/').unwrap();
        conf::Ipv4Net {
            addr: a.parse().unwrap(),
            prefix_len: p.parse().unwrap(),
        }
    });
    let nets6 = ["2001:db8:3::1/64", "fe80::3:1/64"].map(|s| {
        let (a, p) = s.split_once('/').unwrap();
        conf::Ipv6Net {
            addr: a.parse().unwrap(),
            prefix_len: p.parse().unwrap(),
        }
    });
    configure_twin("rvst2", &nets, &nets6).expect("configured");
    // Twice is fine (addresses already there).
    configure_twin("rvst2", &nets, &nets6).expect("configured again");
    let arp_ignore =
        std::fs::read_to_string("/proc/sys/net/ipv4/conf/rvst2/arp_ignore").expect("sysctl");
    assert_eq!(arp_ignore.trim(), "8");
    let out = Command::new("ip")
        .args(["-o", "-4", "addr", "show", "dev", "rvst2"])
        .output()
        .expect("ip addr");
    let text = String::from_utf8_lossy(&out.stdout);
    let found: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().skip_while(|w| *w != "inet").nth(1))
        .collect();
    assert_eq!(found, ["10.3.0.1/24", "10.3.0.100/32"]);
    // IPv6 without duplicate address detection: usable at once, never "tentative".
    let out6 = Command::new("ip")
        .args(["-o", "-6", "addr", "show", "dev", "rvst2"])
        .output()
        .expect("ip -6 addr");
    let text6 = String::from_utf8_lossy(&out6.stdout);
    for net in ["2001:db8:3::1/64", "fe80::3:1/64"] {
        let line = text6
            .lines()
            .find(|l| l.contains(net))
            .unwrap_or_else(|| panic!("{net} not on rvst2:\n{text6}"));
        assert!(line.contains("nodad"), "{line}");
        assert!(!line.contains("tentative"), "{line}");
    }
    let link = Command::new("ip")
        .args(["-o", "link", "show", "dev", "rvst2"])
        .output()
        .expect("ip link");
    assert!(
        String::from_utf8_lossy(&link.stdout).contains(",UP"),
        "{}",
        String::from_utf8_lossy(&link.stdout)
    );
    assert_eq!(
        configure_twin("rvst9", &nets, &nets6),
        Err("twin rvst9: /proc/sys/net/ipv4/conf/rvst9/arp_ignore: No such file or directory (os error 2)".into())
    );
}
