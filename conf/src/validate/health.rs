//! Validation of the health-check keys (keepalived 2.2's keywords and defaults).

use std::net::SocketAddr;
use std::time::Duration;

use super::{parse_addr_port, parse_ip, Check, Links, Routes};
use crate::health::{self, *};
use crate::locate::Field;
use crate::model::{Mode, Real};
use crate::raw;

impl Check {
    /// The health settings of a service whose reals validated as `reals` (each with its index
    /// in the file).
    pub(super) fn service_health(
        &mut self,
        f: &Field,
        s: &raw::Service,
        vip: SocketAddr,
        reals: &[(usize, Real)],
        links: &Links,
        routes: &Routes,
    ) -> ServiceHealth {
        let delay_loop = self
            .seconds(&f.key("delay_loop"), s.delay_loop, false)
            .unwrap_or(DEFAULT_DELAY_LOOP);
        let quorum = self.opt_range(
            &f.key("quorum"),
            s.quorum,
            0,
            u32::MAX,
            health::DEFAULT_QUORUM,
        );
        let hysteresis = self.opt_range(&f.key("hysteresis"), s.hysteresis, 0, u32::MAX, 0);
        if hysteresis > quorum {
            // keepalived: "Hysteresis must be less than quorum" (it would never lose quorum).
            self.fail(
                &f.key("hysteresis"),
                format!("{hysteresis} is larger than quorum {quorum}"),
            );
        }
        for (key, cmd) in [("quorum_up", &s.quorum_up), ("quorum_down", &s.quorum_down)] {
            if cmd.as_deref().is_some_and(|c| c.trim().is_empty()) {
                self.fail(&f.key(key), "an empty command line");
            }
        }
        let mode = reals.first().map_or(Mode::Nat, |(_, r)| r.mode);
        let sorry_server = s
            .sorry_server
            .as_deref()
            .and_then(|a| self.sorry_server(&f.key("sorry_server"), a, vip, mode, links, routes));
        if s.sorry_server_inhibit.is_some() && sorry_server.is_none() && s.sorry_server.is_none() {
            self.fail(
                &f.key("sorry_server_inhibit"),
                "sorry_server_inhibit needs a sorry_server",
            );
        }
        let mut out = Vec::new();
        for (j, real) in reals {
            let rf = f.item("real", *j);
            let r = &s.reals[*j];
            let mut checks = Vec::new();
            for (k, c) in r.checks.iter().enumerate() {
                if let Some(check) = self.check(&rf.item("check", k), c, real.addr, delay_loop) {
                    checks.push(check);
                }
            }
            out.push(RealHealth {
                addr: real.addr,
                weight: real.weight,
                inhibit_on_failure: r.inhibit_on_failure.unwrap_or(false),
                checks,
            });
        }
        ServiceHealth {
            proto: s.proto,
            vip,
            alpha: s.alpha.unwrap_or(false),
            omega: s.omega.unwrap_or(false),
            quorum,
            hysteresis,
            quorum_up: s.quorum_up.clone(),
            quorum_down: s.quorum_down.clone(),
            sorry_server,
            sorry_server_inhibit: s.sorry_server_inhibit.unwrap_or(false),
            reals: out,
        }
    }

    /// The sorry server forwards with the mode of the service's first real, as keepalived's
    /// `sorry_server_lvs_method` defaults to the service's `lb_kind`; it must be reachable as a
    /// real would be.
    fn sorry_server(
        &mut self,
        field: &Field,
        addr: &str,
        vip: SocketAddr,
        mode: Mode,
        links: &Links,
        routes: &Routes,
    ) -> Option<SocketAddr> {
        let (ip, port) = self.ok(field, parse_addr_port(addr))?;
        if let Err(why) = links.check_host_ip(ip) {
            self.fail(field, why);
            return None;
        }
        if links.owns(ip) {
            self.fail(field, format!("{ip} is an address of the balancer itself"));
            return None;
        }
        if vip.is_ipv4() != ip.is_ipv4() {
            // The sorry server forwards as a real of the service's own family would.
            self.fail(
                field,
                format!(
                    "{ip} is not of the vip's family: the sorry server is reached as the vip's packets are"
                ),
            );
            return None;
        }
        if !links.on_link_ip(ip) && (mode == Mode::Dr || !routes.contains(ip)) {
            self.fail(
                field,
                format!("no route to {ip}: no [[port]] subnet or [[route]] contains it"),
            );
            return None;
        }
        let port = match port {
            None | Some(0) => vip.port(),
            Some(p) if p != vip.port() && matches!(mode, Mode::Dr | Mode::Tun) => {
                self.fail(
                    field,
                    format!("port {p} differs from the vip port {}; the sorry server forwards with {mode} as the service's reals, which keeps the destination port", vip.port()),
                );
                return None;
            }
            Some(p) => p,
        };
        Some(SocketAddr::new(ip, port))
    }

    fn check(
        &mut self,
        f: &Field,
        c: &raw::Check,
        real: SocketAddr,
        service_delay_loop: Duration,
    ) -> Option<HealthCheck> {
        use raw::CheckType as T;
        let only = |this: &mut Check, key: &'static str, present: bool, types: &[T], name: &str| {
            if present && !types.contains(&c.kind) {
                this.fail(&f.key(key), format!("{key} only applies to type {name}"));
            }
        };
        only(
            self,
            "url",
            c.url.is_some(),
            &[T::Http, T::Https],
            "\"http\" or \"https\"",
        );
        only(
            self,
            "virtualhost",
            c.virtualhost.is_some(),
            &[T::Http, T::Https],
            "\"http\" or \"https\"",
        );
        only(self, "payload", c.payload.is_some(), &[T::Udp], "\"udp\"");
        only(
            self,
            "require_reply",
            c.require_reply.is_some(),
            &[T::Udp],
            "\"udp\"",
        );
        only(self, "path", c.path.is_some(), &[T::Misc], "\"misc\"");
        only(self, "timeout", c.timeout.is_some(), &[T::Misc], "\"misc\"");
        only(self, "dynamic", c.dynamic.is_some(), &[T::Misc], "\"misc\"");
        for (key, present) in [
            ("connect_ip", c.connect_ip.is_some()),
            ("connect_port", c.connect_port.is_some()),
            ("bindto", c.bindto.is_some()),
            ("bind_port", c.bind_port.is_some()),
            ("connect_timeout", c.connect_timeout.is_some()),
        ] {
            // MISC_CHECK runs a command; it connects nowhere.
            only(
                self,
                key,
                present,
                &[T::Tcp, T::Http, T::Https, T::Udp],
                "\"tcp\", \"http\", \"https\" or \"udp\"",
            );
        }
        let ip = match &c.connect_ip {
            None => real.ip(),
            Some(s) => self.ok(&f.key("connect_ip"), parse_ip(s))?,
        };
        let port = match c.connect_port {
            None => real.port(),
            Some(p) => self.range(&f.key("connect_port"), p, 1u16, u16::MAX)?,
        };
        if port == 0 && c.kind != T::Misc {
            self.fail(
                &f.key("connect_port"),
                "the real has no port (a port-zero service): give connect_port",
            );
        }
        let bindto = match &c.bindto {
            None => None,
            // Not required to be a [[port]] address: a kernel twin may hold it later (the
            // probe fails with EADDRNOTAVAIL until then), or it is a management address.
            Some(s) => Some(self.ok(&f.key("bindto"), parse_ip(s))?),
        };
        if let Some(b) = bindto.filter(|b| b.is_ipv4() != ip.is_ipv4()) {
            // One socket binds and connects: both addresses are of one family.
            self.fail(
                &f.key("bindto"),
                format!(
                    "{b} is {}, but the probe connects to {ip}, which is {}",
                    super::family(b),
                    super::family(ip)
                ),
            );
        }
        let bind_port = self.opt_range(&f.key("bind_port"), c.bind_port, 0, u16::MAX, 0);
        let delay_loop = self
            .seconds(&f.key("delay_loop"), c.delay_loop, false)
            .unwrap_or(service_delay_loop);
        let warmup = self
            .seconds(&f.key("warmup"), c.warmup, true)
            .unwrap_or(Duration::ZERO);
        let http = matches!(c.kind, T::Http | T::Https);
        let delay_before_retry = self
            .seconds(&f.key("delay_before_retry"), c.delay_before_retry, true)
            .unwrap_or(if http {
                DEFAULT_HTTP_DELAY_BEFORE_RETRY
            } else {
                DEFAULT_DELAY_BEFORE_RETRY
            });
        let retry = self.opt_range(
            &f.key("retry"),
            c.retry,
            0,
            u32::MAX,
            if c.kind == T::Misc {
                DEFAULT_MISC_RETRY
            } else {
                DEFAULT_RETRY
            },
        );
        let connect_timeout = if c.kind == T::Misc {
            // keepalived's misc_timeout defaults to the delay loop.
            self.seconds(&f.key("timeout"), c.timeout, false)
                .unwrap_or(delay_loop)
        } else {
            self.seconds(&f.key("connect_timeout"), c.connect_timeout, false)
                .unwrap_or(DEFAULT_CONNECT_TIMEOUT)
        };
        let kind = match c.kind {
            T::Tcp => CheckKind::Tcp,
            T::Http | T::Https => {
                let h = self.http(f, c)?;
                if c.kind == T::Http {
                    CheckKind::Http(h)
                } else {
                    CheckKind::Https(h)
                }
            }
            T::Udp => CheckKind::Udp(self.udp(f, c)?),
            T::Misc => {
                let Some(path) = c.path.clone().filter(|p| !p.trim().is_empty()) else {
                    self.fail(
                        &f.key("path"),
                        "a misc check needs path, the command to run",
                    );
                    return None;
                };
                CheckKind::Misc(MiscCheck {
                    path,
                    dynamic: c.dynamic.unwrap_or(false),
                })
            }
        };
        Some(HealthCheck {
            kind,
            connect: SocketAddr::new(ip, port),
            bindto,
            bind_port,
            connect_timeout,
            retry,
            delay_before_retry,
            delay_loop,
            warmup,
        })
    }

    fn http(&mut self, f: &Field, c: &raw::Check) -> Option<HttpCheck> {
        let urls_raw = match &c.url {
            Some(u) if !u.is_empty() => u,
            _ => {
                self.fail(
                    &f.key("url"),
                    "an http/https check needs url = [{ path = \"/\" }] (keepalived's url block)",
                );
                return None;
            }
        };
        let mut urls = Vec::new();
        for (i, u) in urls_raw.iter().enumerate() {
            let uf = f.item("url", i);
            if !u.path.starts_with('/') || u.path.bytes().any(|b| b <= b' ' || b == 0x7f) {
                self.fail(
                    &uf.key("path"),
                    format!("{:?} is not a request path (starts with /, no spaces or control characters)", u.path),
                );
                continue;
            }
            let status = match &u.status_code {
                None => vec![(200, 299)],
                Some(s) => match self.ok(&uf.key("status_code"), status_codes(s)) {
                    Some(s) => s,
                    None => continue,
                },
            };
            let digest = match &u.digest {
                None => None,
                Some(d) => match self.ok(&uf.key("digest"), md5_hex(d)) {
                    Some(d) => Some(d),
                    None => continue,
                },
            };
            if let Some(v) = &u.virtualhost {
                self.host(&uf.key("virtualhost"), v);
            }
            urls.push(Url {
                path: u.path.clone(),
                status,
                digest,
                virtualhost: u.virtualhost.clone(),
            });
        }
        if let Some(v) = &c.virtualhost {
            self.host(&f.key("virtualhost"), v);
        }
        Some(HttpCheck {
            virtualhost: c.virtualhost.clone(),
            urls,
        })
    }

    fn host(&mut self, field: &Field, v: &str) {
        if v.is_empty() || v.bytes().any(|b| b <= b' ' || b == 0x7f) {
            self.fail(
                field,
                format!("{v:?} is not a host name (no spaces or control characters)"),
            );
        }
    }

    fn udp(&mut self, f: &Field, c: &raw::Check) -> Option<UdpCheck> {
        let payload = match &c.payload {
            None => Vec::new(),
            Some(p) => self.ok(&f.key("payload"), hex_bytes(p))?,
        };
        let reply = match &c.require_reply {
            None | Some(raw::RequireReply::Flag(false)) => UdpReply::NotRequired,
            Some(raw::RequireReply::Flag(true)) => UdpReply::Any,
            Some(raw::RequireReply::Bytes(b)) => {
                UdpReply::Prefix(self.ok(&f.key("require_reply"), hex_bytes(b))?)
            }
        };
        Some(UdpCheck { payload, reply })
    }

    /// A duration in seconds, 0 (if `zero_ok`) or positive up to a day.
    fn seconds(
        &mut self,
        field: &Field,
        v: Option<raw::Seconds>,
        zero_ok: bool,
    ) -> Option<Duration> {
        let v = v?.value();
        let low_ok = if zero_ok { v >= 0.0 } else { v > 0.0 };
        if !v.is_finite() || !low_ok || v > MAX_CHECK_SECONDS {
            let lo = if zero_ok { "0" } else { "more than 0" };
            self.fail(
                field,
                format!("{v} seconds is out of range ({lo} up to {MAX_CHECK_SECONDS})"),
            );
            return None;
        }
        Some(Duration::from_secs_f64(v))
    }
}

type HealthCheck = health::Check;

/// `200`, `"200 301-302"`: codes 100..=599 and ranges of them.
fn status_codes(s: &raw::StatusCodes) -> Result<Vec<(u16, u16)>, String> {
    let code = |n: i64| -> Result<u16, String> {
        if (100..=599).contains(&n) {
            Ok(n as u16)
        } else {
            Err(format!("{n} is not an HTTP status code (100..=599)"))
        }
    };
    match s {
        raw::StatusCodes::One(n) => Ok(vec![(code(*n)?, code(*n)?)]),
        raw::StatusCodes::List(text) => {
            let mut out = Vec::new();
            for part in text.split_whitespace() {
                let num = |p: &str| -> Result<u16, String> {
                    p.parse::<i64>()
                        .map_err(|_| format!("{part:?} is not a status code or a range lo-hi"))
                        .and_then(code)
                };
                let range = match part.split_once('-') {
                    Some((lo, hi)) => (num(lo)?, num(hi)?),
                    None => (num(part)?, num(part)?),
                };
                if range.0 > range.1 {
                    return Err(format!("{part:?} is an empty range"));
                }
                out.push(range);
            }
            if out.is_empty() {
                return Err("no status code given".to_string());
            }
            Ok(out)
        }
    }
}

fn md5_hex(s: &str) -> Result<[u8; 16], String> {
    let bytes = hex_bytes(s)?;
    bytes
        .try_into()
        .map_err(|_| format!("{s:?} is not an MD5 digest (32 hex digits)"))
}

/// Hex digits, two per byte; spaces between bytes are allowed.
fn hex_bytes(s: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let bad = || format!("{s:?} is not hex bytes (two hex digits per byte)");
    if digits.len() % 2 != 0 {
        return Err(bad());
    }
    digits
        .chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).map_err(|_| bad())?;
            u8::from_str_radix(text, 16).map_err(|_| bad())
        })
        .collect()
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_status_codes() {
        assert_eq!(
            status_codes(&raw::StatusCodes::List("200 301-302".into())).unwrap(),
            [(200, 200), (301, 302)]
        );
        assert_eq!(
            status_codes(&raw::StatusCodes::One(204)).unwrap(),
            [(204, 204)]
        );
        assert!(status_codes(&raw::StatusCodes::List("302-301".into())).is_err());
        assert!(status_codes(&raw::StatusCodes::List("abc".into())).is_err());
        assert!(status_codes(&raw::StatusCodes::One(700)).is_err());
    }

    #[test]
    fn test_hex() {
        assert_eq!(hex_bytes("0a 0B ff").unwrap(), [10, 11, 255]);
        assert!(hex_bytes("0").is_err());
        assert!(hex_bytes("zz").is_err());
        assert_eq!(
            md5_hex("9b3a0c85a887a256d6939da88aabd8cd").unwrap()[0],
            0x9b
        );
        assert!(md5_hex("9b3a").is_err());
    }
}
