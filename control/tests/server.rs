//! The control socket over a real UNIX socket in a temporary directory: permissions, stale
//! and live sockets, many clients at once, and clients that send garbage, too much, or too
//! little.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{Fixture, TestHandler};
use conf::proto::{
    self, ConnEntry, DestSpec, Request, Response, ServiceKey, ServiceSpec, MAX_RESPONSE,
};
use conf::{Mode, Proto};
use control::admin::{self, Streams};
use control::client::Client;
use control::server::{Options, Server, StartError};

fn key() -> ServiceKey {
    ServiceKey {
        proto: Proto::Tcp,
        vip: "10.0.0.100:80".parse().unwrap(),
    }
}

fn add_service() -> Request {
    Request::AddService {
        service: ServiceSpec {
            key: key(),
            sched: "rr".into(),
            persistence: 0,
            netmask: "255.255.255.255".parse().unwrap(),
        },
    }
}

fn connect(f: &Fixture) -> UnixStream {
    let s = UnixStream::connect(&f.path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

fn raw_frame(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

fn read_response(s: &mut UnixStream) -> Response {
    proto::read_frame(s, MAX_RESPONSE).unwrap()
}

fn error_message(r: Response) -> String {
    match r {
        Response::Error { message, .. } => message,
        other => panic!("expected an error, got {other:?}"),
    }
}

/// The server closed the connection: end of stream, or a reset when it closed with bytes of
/// ours unread (Linux reports that on UNIX sockets too).
fn assert_closed(s: &mut UnixStream) {
    let mut rest = Vec::new();
    match s.read_to_end(&mut rest) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("connection still open: {other:?} {rest:?}"),
    }
}

fn services(f: &Fixture) -> usize {
    f.handler.model.lock().unwrap().services().len()
}

#[test]
fn test_socket_file() {
    let f = Fixture::new(TestHandler::new());
    // The parent directories were created; the socket is a socket, mode 0600.
    let meta = fs::metadata(&f.path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert!(std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type()));
    // No temporary name is left behind.
    let entries: Vec<_> = fs::read_dir(f.path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, vec!["rvsd.sock"]);
    let mut c = Client::connect(&f.path).unwrap();
    assert_eq!(c.call(&add_service()).unwrap(), Response::Done);
}

#[test]
fn test_stale_socket_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rvsd.sock");
    // A socket file whose listener is gone, as a crashed rvsd leaves it.
    drop(UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let server = Server::start(&path, Arc::new(TestHandler::new())).unwrap();
    let mut c = Client::connect(&path).unwrap();
    assert_eq!(c.call(&add_service()).unwrap(), Response::Done);
    server.stop();
    assert!(!path.exists());
}

#[test]
fn test_live_socket_is_refused() {
    let f = Fixture::new(TestHandler::new());
    match Server::start(&f.path, Arc::new(TestHandler::new())) {
        Err(e @ StartError::Live(_)) => assert_eq!(
            e.to_string(),
            format!(
                "{} is in use: another rvsd is running (stop it or choose another [control] socket)",
                f.path.display()
            )
        ),
        other => panic!("{other:?}"),
    }
    // The first server is untouched.
    let mut c = Client::connect(&f.path).unwrap();
    assert_eq!(c.call(&add_service()).unwrap(), Response::Done);
    assert_eq!(services(&f), 1);
}

#[test]
fn test_other_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rvsd.sock");
    fs::write(&path, "precious").unwrap();
    assert!(matches!(
        Server::start(&path, Arc::new(TestHandler::new())),
        Err(StartError::NotSocket(_))
    ));
    assert_eq!(fs::read_to_string(&path).unwrap(), "precious");
}

#[test]
fn test_stop_keeps_a_socket_that_is_not_ours() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rvsd.sock");
    let server = Server::start(&path, Arc::new(TestHandler::new())).unwrap();
    // Someone replaced the file (a second rvsd after removing ours, say).
    fs::remove_file(&path).unwrap();
    let other = UnixListener::bind(&path).unwrap();
    server.stop();
    assert!(path.exists());
    drop(other);
}

#[test]
fn test_many_concurrent_clients() {
    let f = Fixture::new(TestHandler::new());
    let mut c = Client::connect(&f.path).unwrap();
    assert_eq!(c.call(&add_service()).unwrap(), Response::Done);
    let threads: Vec<_> = (0..16u8)
        .map(|t| {
            let path = f.path.clone();
            thread::spawn(move || {
                let mut c = Client::connect(&path).unwrap();
                for i in 0..20u8 {
                    let dest = DestSpec {
                        addr: format!("192.168.1.{}:80", t * 10 + i % 10 + 1)
                            .parse()
                            .unwrap(),
                        mode: Mode::Dr,
                        weight: u32::from(i),
                        u_threshold: 0,
                        l_threshold: 0,
                        tunnel: Default::default(),
                    };
                    // The first ten add, the next ten edit the same reals.
                    let r = if i < 10 {
                        Request::AddDest {
                            service: key(),
                            dest,
                        }
                    } else {
                        Request::EditDest {
                            service: key(),
                            dest,
                        }
                    };
                    assert_eq!(c.call(&r).unwrap(), Response::Done);
                    let listed = c.call(&Request::ListServices { service: None }).unwrap();
                    assert!(matches!(listed, Response::Services { .. }));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let model = f.handler.model.lock().unwrap();
    let dests = &model.services().next().expect("one service").dests;
    assert_eq!(dests.len(), 160);
    assert!(dests.iter().all(|d| d.real.weight >= 10));
}

#[test]
fn test_malformed_request() {
    let f = Fixture::new(TestHandler::new());
    let mut s = connect(&f);
    for (body, start) in [
        (&b"{not json"[..], "malformed message: "),
        (
            br#"{"version":1,"body":{"op":"add_service"}}"#,
            "malformed message: ",
        ),
        (
            br#"{"version":1,"body":{"op":"launch"}}"#,
            "malformed message: ",
        ),
        (br#"{"body":{"op":"clear"}}"#, "malformed message: "),
        (
            br#"{"version":7,"body":{"op":"clear"}}"#,
            "protocol version 7 is not supported (this side speaks version 1)",
        ),
    ] {
        s.write_all(&raw_frame(body)).unwrap();
        let message = error_message(read_response(&mut s));
        assert!(message.starts_with(start), "{message}");
    }
    // The connection still works and nothing was changed.
    assert_eq!(services(&f), 0);
    proto::write_frame(&mut s, &add_service()).unwrap();
    assert_eq!(read_response(&mut s), Response::Done);
    assert_eq!(services(&f), 1);
}

#[test]
fn test_oversized_request() {
    let options = Options {
        max_request: 1024,
        ..Options::default()
    };
    let f = Fixture::with_options(TestHandler::new(), options);
    let mut s = connect(&f);
    // Only the length is sent: the server must not wait for (or allocate) the body.
    s.write_all(&(u32::MAX).to_be_bytes()).unwrap();
    assert_eq!(
        error_message(read_response(&mut s)),
        "message of 4294967295 bytes exceeds the limit of 1024 bytes"
    );
    // Then the connection is closed.
    assert_closed(&mut s);
    // A batch just over the limit is refused whole; other clients carry on.
    let big = Request::Batch {
        requests: vec![add_service(); 20],
    };
    let mut c = Client::connect(&f.path).unwrap();
    match c.call(&big) {
        Ok(Response::Error { message, .. }) => assert!(message.contains("exceeds the limit")),
        other => panic!("{other:?}"),
    }
    let mut c = Client::connect(&f.path).unwrap();
    assert_eq!(c.call(&add_service()).unwrap(), Response::Done);
    assert_eq!(services(&f), 1);
}

#[test]
fn test_client_gone_mid_request() {
    let f = Fixture::new(TestHandler::new());
    let frame = proto::encode_frame(&add_service()).unwrap();
    for cut in [1, 3, 4, 10, frame.len() - 1] {
        let mut s = connect(&f);
        s.write_all(&frame[..cut]).unwrap();
        drop(s);
    }
    // A client that stops reading its answer does not hurt either.
    let mut s = connect(&f);
    proto::write_frame(&mut s, &Request::ListServices { service: None }).unwrap();
    drop(s);
    let mut c = Client::connect(&f.path).unwrap();
    assert_eq!(
        c.call(&Request::ListServices { service: None }).unwrap(),
        Response::Services { services: vec![] }
    );
    assert_eq!(services(&f), 0);
}

#[test]
fn test_stalled_client() {
    let options = Options {
        idle: Duration::from_millis(300),
        timeout: Duration::from_millis(300),
        ..Options::default()
    };
    let f = Fixture::with_options(TestHandler::new(), options);
    let frame = proto::encode_frame(&add_service()).unwrap();
    // Half a frame, then a byte every 100 ms: each read is quick, the whole is too slow.
    let mut s = connect(&f);
    s.write_all(&frame[..6]).unwrap();
    for b in &frame[6..16] {
        thread::sleep(Duration::from_millis(100));
        if s.write_all(std::slice::from_ref(b)).is_err() {
            break;
        }
    }
    assert_eq!(error_message(read_response(&mut s)), "request timed out");
    assert_closed(&mut s);
    // A client that connects and sends nothing is let go without a reply: no request is
    // under way, so there is nothing to answer.
    let mut idle = connect(&f);
    let since = Instant::now();
    assert_closed(&mut idle);
    let waited = since.elapsed();
    assert!(
        waited >= Duration::from_millis(280) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    assert_eq!(services(&f), 0);
    let mut c = Client::connect(&f.path).unwrap();
    assert_eq!(c.call(&add_service()).unwrap(), Response::Done);
}

#[test]
fn test_too_many_clients() {
    let options = Options {
        max_clients: 2,
        ..Options::default()
    };
    let f = Fixture::with_options(TestHandler::new(), options);
    // Two clients whose threads are running (each has had an answer).
    let mut a = Client::connect(&f.path).unwrap();
    let mut b = Client::connect(&f.path).unwrap();
    for c in [&mut a, &mut b] {
        assert!(matches!(c.call(&Request::Info), Ok(Response::Info { .. })));
    }
    let mut c = connect(&f);
    assert_eq!(
        error_message(read_response(&mut c)),
        "too many control clients (2 connected); try again"
    );
    drop(a);
    // The slot frees when the client's thread ends.
    let mut done = false;
    for _ in 0..100 {
        let mut d = Client::connect(&f.path).unwrap();
        if d.call(&Request::Info)
            .is_ok_and(|r| matches!(r, Response::Info { .. }))
        {
            done = true;
            break;
        }
        thread::sleep(Duration::from_millis(10));
    }
    assert!(done);
}

#[test]
fn test_many_requests_on_one_connection() {
    let f = Fixture::new(TestHandler::new());
    let mut c = Client::connect(&f.path).unwrap();
    assert_eq!(c.call(&add_service()).unwrap(), Response::Done);
    assert_eq!(
        c.call(&add_service()).unwrap(),
        Response::error("Service already exists")
    );
    let batch = Request::Batch {
        requests: vec![
            Request::DelService { service: key() },
            Request::DelService { service: key() },
        ],
    };
    assert_eq!(
        c.call(&batch).unwrap(),
        Response::Error {
            message: "No such service".into(),
            index: Some(1)
        }
    );
    assert_eq!(services(&f), 1);
    drop(f.server);
    // After stop the socket is gone and nobody new gets in, but a connected client is
    // still answered.
    assert!(!f.path.exists());
    assert!(UnixStream::connect(&f.path).is_err());
    assert!(matches!(c.call(&Request::Info), Ok(Response::Info { .. })));
}

#[test]
fn test_refusal_is_readable_and_idle_slots_free() {
    let idle = Duration::from_millis(4000);
    let options = Options {
        max_clients: 2,
        idle,
        ..Options::default()
    };
    let f = Fixture::with_options(TestHandler::new(), options);
    let start = Instant::now();
    // Two clients that connect and send nothing hold both slots.
    let mut held = [connect(&f), connect(&f)];
    let refused = "too many control clients (2 connected); try again\n";
    assert_eq!(f.rvsadm("-L -n"), (1, String::new(), refused.to_string()));
    // A restore larger than the socket buffer: rvsadm's write fails (the server has closed),
    // and it still prints the server's answer rather than "Broken pipe".
    let rules: String = (1..=5000)
        .map(|port| format!("-A -t 10.0.0.100:{port} -s rr\n"))
        .collect();
    assert_eq!(
        f.rvsadm_in("-R", &rules),
        (255, String::new(), refused.to_string())
    );
    assert!(
        start.elapsed() < idle,
        "the test was too slow to see the slots held"
    );
    // Past the idle deadline the silent clients are gone and rvsadm gets in.
    for s in &mut held {
        assert_closed(s);
    }
    assert!(start.elapsed() >= idle);
    f.ok("-A -t 10.0.0.100:80 -s rr");
    assert_eq!(services(&f), 1);
}

/// Standard output of a reader slower than the server's idle deadline: `rvsadm -L -c | less`.
struct SlowOut {
    text: Vec<u8>,
    pause: Duration,
}

impl Write for SlowOut {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        thread::sleep(self.pause);
        self.text.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn test_slow_connection_listing_is_not_cut() {
    let options = Options {
        idle: Duration::from_millis(200),
        ..Options::default()
    };
    let mut h = TestHandler::new();
    h.page = 2;
    h.conns = (1..=5u8)
        .map(|i| ConnEntry {
            proto: Proto::Tcp,
            expire: 60,
            state: "ESTABLISHED".into(),
            client: format!("203.0.113.{i}:4000{i}").parse().unwrap(),
            virt: "10.0.0.100:80".parse().unwrap(),
            dest: "192.168.1.1:80".parse().unwrap(),
        })
        .collect();
    let f = Fixture::with_options(h, options);
    let mut out = SlowOut {
        text: Vec::new(),
        pause: Duration::from_millis(400),
    };
    let mut err = Vec::new();
    let args = vec![
        "-L".into(),
        "-c".into(),
        "-n".into(),
        format!("--socket={}", f.path.display()),
    ];
    let code = admin::run(
        "rvsadm",
        &args,
        &common::names(),
        &mut Streams {
            stdin: &mut &b""[..],
            out: &mut out,
            err: &mut err,
        },
    );
    assert_eq!((code, String::from_utf8(err).unwrap()), (0, String::new()));
    let text = String::from_utf8(out.text).unwrap();
    // The title, its header and the five entries, over three pages.
    assert_eq!(text.lines().count(), 7, "{text}");
    for i in 1..=5 {
        assert!(text.contains(&format!("203.0.113.{i}:4000{i}")), "{text}");
    }
}
