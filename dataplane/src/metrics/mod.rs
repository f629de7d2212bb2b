//! The Prometheus text endpoint of `[control] prometheus`: `GET /metrics` answers the counters
//! `rvsadm --drops` and `rvsadm -L --stats` show, in the text exposition format 0.0.4.
//!
//! [`render`] writes the text from the counters the workers publish and the published
//! snapshot; [`Endpoint`] serves it over HTTP on a thread of its own, never on a packet
//! worker, bounded so that slow or silent clients cannot keep a scrape out.

mod http;
mod render;

pub use http::{Endpoint, Limits, IO_TIMEOUT, MAX_CONNECTIONS, MAX_HEAD};
pub use render::{render, render_health, HealthSource, CONTENT_TYPE};

use crate::stats::SharedCounters;
use crate::worker::Fabric;
use std::sync::Arc;

/// Starts the endpoint of `config` (`None` when `[control] prometheus` is not set), serving
/// the counters of `fabric`'s snapshots and of the workers' `counters`.
pub fn start(
    config: &conf::Config,
    fabric: Arc<Fabric>,
    counters: Arc<Vec<SharedCounters>>,
    health: render::HealthSource,
) -> Result<Option<Endpoint>, String> {
    let Some(addr) = config.control.prometheus else {
        return Ok(None);
    };
    let sources = render::Sources {
        fabric,
        counters,
        lcores: config.dataplane.workers.clone(),
        health,
    };
    let endpoint = Endpoint::bind(addr, Limits::default(), move || sources.render())
        .map_err(|e| format!("prometheus endpoint {addr}: {e}"))?;
    log::info!("prometheus endpoint http://{}/metrics", endpoint.addr());
    Ok(Some(endpoint))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Counters;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    fn no_health() -> render::HealthSource {
        Arc::new(Default::default)
    }

    fn config() -> conf::Config {
        conf::Config::parse(
            "[eal]\nargs = []\n[[port]]\nname = \"dpdk0\"\naddrs = [\"10.0.0.1/24\"]\n[dataplane]\nworkers = [3]\n",
            "t.toml",
        )
        .expect("valid")
    }

    fn fabric() -> Arc<Fabric> {
        Arc::new(Fabric::new(
            1,
            Arc::new(fastpath::snapshot::Snapshot::default()),
        ))
    }

    #[test]
    fn serves_the_published_counters() {
        let mut config = config();
        config.control.prometheus = Some("127.0.0.1:0".parse().unwrap());
        let counters = Arc::new(vec![SharedCounters::default()]);
        let endpoint = start(&config, fabric(), Arc::clone(&counters), no_health())
            .expect("starts")
            .expect("configured");
        let c = Counters {
            rx_packets: 42,
            ..Counters::default()
        };
        counters[0].publish(&c, 1, 0);
        let body =
            render(&[3], &[c], &[]) + &render::render_sync(&crate::sync::Stats::default(), 0);
        assert!(body.contains("rvs_worker_rx_packets_total{worker=\"0\",lcore=\"3\"} 42\n"));
        let mut s = TcpStream::connect(endpoint.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        assert_eq!(
            answer,
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        );
    }

    #[test]
    fn a_busy_address_is_an_error() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut config = config();
        let addr = taken.local_addr().unwrap();
        config.control.prometheus = Some(addr);
        let err = start(&config, fabric(), Arc::new(Vec::new()), no_health()).unwrap_err();
        assert!(
            err.starts_with(&format!("prometheus endpoint {addr}: ")),
            "{err}"
        );
        assert!(err.contains("in use"), "{err}");
        config.control.prometheus = None;
        assert!(start(&config, fabric(), Arc::new(Vec::new()), no_health())
            .unwrap()
            .is_none());
    }
}
