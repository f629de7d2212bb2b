//! A handler built on the model alone, a server on a socket in a temporary directory, and
//! helpers to run `rvsadm` against it.

#![allow(dead_code)] // Each test binary uses its own part of this module.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use conf::proto::{
    ConnEntry, Info, Request, Response, ServiceEntry, TwinStats, WorkerStats, IPVS_VERSION,
};
use conf::Ipv4Net;
use control::admin::{self, Streams};
use control::model::{Model, Network};
use control::names::Names;
use control::server::{Handler, Options, Server};
use control::sync::{Daemons, NO_SUCH_DEVICE};

/// Fills in the statistics the data plane would.
pub type Decorate = Box<dyn Fn(&mut ServiceEntry) + Send + Sync>;

/// rvsd without a data plane: changes go to the model, listings come from it.
pub struct TestHandler {
    pub model: Mutex<Model>,
    pub conns: Vec<ConnEntry>,
    pub page: usize,
    pub workers: Vec<WorkerStats>,
    pub twins: Vec<TwinStats>,
    pub decorate: Option<Decorate>,
    /// The sync daemons, on the interfaces of [`SYNC_INTERFACES`].
    pub daemons: Mutex<Daemons>,
}

/// The interfaces a sync daemon can use here, with their MTUs.
pub const SYNC_INTERFACES: [(&str, u16); 2] = [("rvs0", 1500), ("rvs1", 9000)];

pub fn net(s: &str) -> Ipv4Net {
    let (a, l) = s.split_once('/').unwrap();
    Ipv4Net {
        addr: a.parse().unwrap(),
        prefix_len: l.parse().unwrap(),
    }
}

/// The test network: vips 10.0.0.100-103, local addresses 10.0.0.1 and 192.168.1.254,
/// reals on 192.168.1.0/24 or routed in 172.16.0.0/16.
pub fn network() -> Network {
    Network::new(
        vec![
            net("10.0.0.1/24"),
            net("10.0.0.100/32"),
            net("10.0.0.101/32"),
            net("10.0.0.102/32"),
            net("10.0.0.103/32"),
            net("192.168.1.254/24"),
        ],
        vec![net("172.16.0.0/16")],
    )
    .with_v6(
        vec![
            net6("2001:db8::1/64"),
            net6("2001:db8::100/128"),
            net6("2001:db8::101/128"),
        ],
        vec![net6("2001:db8:1::/48")],
    )
}

/// The IPv6 side of [`network`]: vips 2001:db8::100-101, local address 2001:db8::1, reals on
/// 2001:db8::/64 or routed in 2001:db8:1::/48.
fn net6(s: &str) -> conf::Ipv6Net {
    let (a, l) = s.split_once('/').unwrap();
    conf::Ipv6Net {
        addr: a.parse().unwrap(),
        prefix_len: l.parse().unwrap(),
    }
}

impl TestHandler {
    pub fn new() -> TestHandler {
        TestHandler {
            model: Mutex::new(Model::new(network())),
            conns: Vec::new(),
            page: 2,
            workers: Vec::new(),
            twins: Vec::new(),
            decorate: None,
            daemons: Mutex::new(Daemons::new()),
        }
    }
}

impl Handler for TestHandler {
    fn handle(&self, request: Request) -> Response {
        let mut model = self.model.lock().unwrap();
        match request {
            Request::Info => Response::Info {
                info: Info {
                    version: IPVS_VERSION,
                    conn_table_size: 4096,
                },
            },
            Request::ListServices { service } => match model.list(service.as_ref()) {
                Ok(mut services) => {
                    if let Some(d) = &self.decorate {
                        services.iter_mut().for_each(d);
                    }
                    Response::Services { services }
                }
                Err(message) => Response::error(message),
            },
            Request::GetTimeouts => Response::Timeouts {
                timeouts: model.timeouts().into(),
            },
            Request::ListConns { cursor } => {
                let start = (cursor as usize).min(self.conns.len());
                let end = (start + self.page).min(self.conns.len());
                Response::Conns {
                    conns: self.conns[start..end].to_vec(),
                    next: (end < self.conns.len()).then_some(end as u64),
                }
            }
            Request::GetLaddrs { service } => match model.laddrs(service.as_ref()) {
                Ok(services) => Response::Laddrs { services },
                Err(message) => Response::error(message),
            },
            Request::GetWorkers => Response::Workers {
                workers: self.workers.clone(),
                twins: self.twins.clone(),
                owned: Vec::new(),
                sync: Default::default(),
            },
            Request::StartDaemon { daemon } => {
                let Some(&(_, mtu)) = SYNC_INTERFACES
                    .iter()
                    .find(|(name, _)| *name == daemon.interface)
                else {
                    return Response::error(NO_SUCH_DEVICE);
                };
                match self.daemons.lock().unwrap().start(daemon, mtu) {
                    Ok(_) => Response::Done,
                    Err(message) => Response::error(message),
                }
            }
            Request::StopDaemon { role } => match self.daemons.lock().unwrap().stop(role) {
                Ok(_) => Response::Done,
                Err(message) => Response::error(message),
            },
            Request::GetDaemons => Response::Daemons {
                daemons: self.daemons.lock().unwrap().list(),
            },
            change => match model.apply(&change) {
                Ok(_) => Response::Done,
                Err(e) => e.into(),
            },
        }
    }
}

/// A server in its own temporary directory.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
    pub handler: Arc<TestHandler>,
    pub server: Option<Server>,
}

impl Fixture {
    pub fn new(handler: TestHandler) -> Fixture {
        Fixture::with_options(handler, Options::default())
    }

    pub fn with_options(handler: TestHandler, options: Options) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/rvs/rvsd.sock");
        let handler = Arc::new(handler);
        let server = Server::start_with(&path, handler.clone(), options).unwrap();
        Fixture {
            dir,
            path,
            handler,
            server: Some(server),
        }
    }

    /// Runs rvsadm in-process with `--socket` and `stdin`; returns status, stdout, stderr.
    pub fn rvsadm_in(&self, args: &str, stdin: &str) -> (i32, String, String) {
        let mut argv: Vec<String> = args.split_whitespace().map(str::to_string).collect();
        argv.push(format!("--socket={}", self.path.display()));
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = admin::run(
            "rvsadm",
            &argv,
            &names(),
            &mut Streams {
                stdin: &mut stdin.as_bytes(),
                out: &mut out,
                err: &mut err,
            },
        );
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    pub fn rvsadm(&self, args: &str) -> (i32, String, String) {
        self.rvsadm_in(args, "")
    }

    /// Runs a change that must succeed.
    pub fn ok(&self, args: &str) {
        let (code, out, err) = self.rvsadm(args);
        assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""), "{args}");
    }

    /// Runs a listing that must succeed and returns its output.
    pub fn out(&self, args: &str) -> String {
        let (code, out, err) = self.rvsadm(args);
        assert_eq!((code, err.as_str()), (0, ""), "{args}");
        out
    }
}

/// Name tables for listings without -n.
pub fn names() -> Names {
    Names::from_tables(
        "10.0.0.100 www.example.com\n10.0.0.101 a-rather-long-virtual-host.example.com\n\
         192.168.1.1 a-very-long-real-server-name.example.com\n",
        "http 80/tcp www\ndomain 53/udp\nhttps 443/tcp\n",
    )
}

pub fn mask(s: &str) -> conf::Netmask {
    s.parse().unwrap()
}
