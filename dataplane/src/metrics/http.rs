//! Serving `/metrics`: hyper's HTTP/1 server on a current-thread tokio runtime owned by one
//! thread (`rvs-metrics`), so a scrape never runs on a packet worker and one slow client
//! never blocks another.
//!
//! Every connection carries one request and closes (`Connection: close`). Bounds, so that
//! clients that stall, say nothing or do not read cannot keep a scrape out:
//! - a client has [`Limits::head`] from its connection to send its whole request head
//!   (hyper's header read timeout) and [`Limits::exchange`] for the whole exchange, answer
//!   included; past either it is disconnected unanswered;
//! - a request head above [`MAX_HEAD`] bytes is refused (431);
//! - at most [`Limits::connections`] connections are open at once. When one more arrives, the
//!   oldest connection still waiting for its request head is closed to make room: a scraper
//!   sends its head at once, so a crowd of half-sent requests only pushes itself out. Only
//!   when every open connection has sent its head (answers being written, each bounded by
//!   the exchange timeout) does accepting wait for one to end.
//!
//! Answers: `GET /metrics` (any query string) is 200 with the exposition text; another method
//! on `/metrics` is 405 with `Allow: GET`; another path is 404; what hyper cannot parse as
//! HTTP/1.x is 400.

use super::CONTENT_TYPE;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

/// Time a client has to send its request head, and again to take the answer.
pub const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest request head (request line and headers); hyper's smallest read buffer.
pub const MAX_HEAD: usize = 8192;
/// Connections served at once. Each costs a descriptor, a read buffer of at most
/// [`MAX_HEAD`] and, while answered, one rendering of the text.
pub const MAX_CONNECTIONS: usize = 64;

/// The one path served.
const PATH: &str = "/metrics";

/// How much the endpoint gives each client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once.
    pub connections: usize,
    /// From connection to the end of the request head.
    pub head: Duration,
    /// From connection to the end of the answer.
    pub exchange: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            connections: MAX_CONNECTIONS,
            head: IO_TIMEOUT,
            exchange: 2 * IO_TIMEOUT,
        }
    }
}

/// What answers `GET /metrics`: the exposition text as it is now.
type Scrape = Arc<dyn Fn() -> String + Send + Sync>;

/// A running endpoint; dropping it stops it.
#[derive(Debug)]
pub struct Endpoint {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Endpoint {
    /// Listens on `addr` and answers `GET /metrics` with what `scrape` returns.
    pub fn bind(
        addr: SocketAddr,
        limits: Limits,
        scrape: impl Fn() -> String + Send + Sync + 'static,
    ) -> io::Result<Endpoint> {
        let listener = std::net::TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        let listener = {
            let _context = runtime.enter();
            TcpListener::from_std(listener)?
        };
        let (stop, stopped) = oneshot::channel();
        let scrape: Scrape = Arc::new(scrape);
        let thread = thread::Builder::new()
            .name("rvs-metrics".into())
            // Dropping the runtime at the end cuts the connections still open.
            .spawn(move || runtime.block_on(accept_loop(listener, limits, scrape, stopped)))?;
        Ok(Endpoint {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The address the endpoint listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Endpoint {
    /// Stops accepting and closes every open connection.
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            // Fails only if the thread is gone already.
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            // A panic of the thread has been reported by the panic hook.
            let _ = thread.join();
        }
    }
}

/// An open connection, as the accept loop sees it.
struct Open {
    /// Closes the connection; closed itself once the connection ended.
    evict: oneshot::Sender<()>,
    /// Whether its request head arrived.
    head: Arc<AtomicBool>,
}

async fn accept_loop(
    listener: TcpListener,
    limits: Limits,
    scrape: Scrape,
    mut stop: oneshot::Receiver<()>,
) {
    let slots = Arc::new(Semaphore::new(limits.connections));
    let mut open: VecDeque<Open> = VecDeque::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.head)
        .max_buf_size(MAX_HEAD)
        .keep_alive(false)
        // A client that sends its request and shuts its side at once (`printf … | nc -N`)
        // is still answered: without this, hyper closes on that end of input whenever it
        // reads it before the request is answered.
        .half_close(true)
        .title_case_headers(true)
        .auto_date_header(false);
    loop {
        let accepted = tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else {
            // Out of descriptors or similar: let the system catch up.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        open.retain(|c| !c.evict.is_closed());
        if slots.available_permits() == 0 {
            if let Some(oldest) = open.iter().position(|c| !c.head.load(Ordering::Relaxed)) {
                if let Some(c) = open.remove(oldest) {
                    // Fails only if it ended meanwhile, which frees its slot too.
                    let _ = c.evict.send(());
                }
            }
        }
        let slot = tokio::select! {
            _ = &mut stop => return,
            slot = Arc::clone(&slots).acquire_owned() => slot,
        };
        // The semaphore is never closed.
        let Ok(slot) = slot else { return };
        let (evict, evicted) = oneshot::channel();
        let head = Arc::new(AtomicBool::new(false));
        open.push_back(Open {
            evict,
            head: Arc::clone(&head),
        });
        let connection = Connection {
            stream,
            head,
            evicted,
            _slot: slot,
        };
        tokio::spawn(connection.serve(http.clone(), limits.exchange, Arc::clone(&scrape)));
    }
}

/// One accepted connection and what it holds.
struct Connection {
    stream: TcpStream,
    /// Set when the request head arrived.
    head: Arc<AtomicBool>,
    /// Fires when the accept loop needs the slot for a newer connection.
    evicted: oneshot::Receiver<()>,
    /// Its share of [`Limits::connections`], given back when the connection ends.
    _slot: OwnedSemaphorePermit,
}

impl Connection {
    async fn serve(self, http: http1::Builder, exchange: Duration, scrape: Scrape) {
        let head = self.head;
        let service = service_fn(move |request| {
            head.store(true, Ordering::Relaxed);
            let response = answer(&request, &*scrape);
            async move { Ok::<_, Infallible>(response) }
        });
        let connection = http.serve_connection(TokioIo::new(self.stream), service);
        // How it ended (answered, refused as bad HTTP, timed out, client gone) is the
        // client's business: nothing to report.
        tokio::select! {
            _ = tokio::time::timeout(exchange, connection) => {}
            _ = self.evicted => {}
        }
    }
}

/// The answer to a request whose head hyper parsed.
fn answer(request: &Request<Incoming>, scrape: &dyn Fn() -> String) -> Response<Full<Bytes>> {
    if request.uri().path() != PATH {
        return response(
            StatusCode::NOT_FOUND,
            "text/plain",
            false,
            "not found\n".into(),
        );
    }
    if request.method() != Method::GET {
        return response(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            true,
            "only GET is supported\n".into(),
        );
    }
    response(StatusCode::OK, CONTENT_TYPE, false, scrape())
}

/// A response with its headers in the order they are written (`Allow: GET` if `allow`).
fn response(
    status: StatusCode,
    content_type: &'static str,
    allow: bool,
    body: String,
) -> Response<Full<Bytes>> {
    let length = HeaderValue::from(body.len());
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_LENGTH, length);
    if allow {
        headers.insert(header::ALLOW, HeaderValue::from_static("GET"));
    }
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpStream};
    use std::sync::atomic::AtomicUsize;
    use std::time::Instant;

    const BODY: &str = "# TYPE a counter\na_total 1\n";

    /// An endpoint on a free localhost port answering [`BODY`], and how often it rendered.
    fn endpoint(limits: Limits) -> (Endpoint, Arc<AtomicUsize>) {
        let renders = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&renders);
        let endpoint = Endpoint::bind("127.0.0.1:0".parse().unwrap(), limits, move || {
            counted.fetch_add(1, Ordering::SeqCst);
            BODY.to_owned()
        })
        .expect("binds");
        (endpoint, renders)
    }

    /// Sends `request`, returns everything the server sent until it closed.
    fn exchange(addr: SocketAddr, request: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(request).unwrap();
        let mut answer = Vec::new();
        s.read_to_end(&mut answer).unwrap();
        String::from_utf8(answer).unwrap()
    }

    /// Reads for at most `limit`: what the server sent, and after how long it closed (`None`
    /// if it did not).
    fn until_closed(s: &mut TcpStream, limit: Duration) -> (Vec<u8>, Option<Duration>) {
        let started = Instant::now();
        let mut got = Vec::new();
        let mut chunk = [0u8; 65536];
        loop {
            let left = limit.saturating_sub(started.elapsed());
            if left.is_zero() {
                return (got, None);
            }
            s.set_read_timeout(Some(left)).unwrap();
            match s.read(&mut chunk) {
                Ok(0) => return (got, Some(started.elapsed())),
                Ok(n) => got.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    return (got, Some(started.elapsed()))
                }
                Err(_) => return (got, None),
            }
        }
    }

    /// A connection that sent half a request line.
    fn half_sent(addr: SocketAddr) -> TcpStream {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /metrics HT").unwrap();
        s
    }

    fn plain(version: &str, status: &str, extra: &str, text: &str) -> String {
        format!(
            "HTTP/{version} {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{text}",
            text.len()
        )
    }

    #[test]
    fn answers_get_metrics_and_refuses_the_rest() {
        let (endpoint, renders) = endpoint(Limits::default());
        let addr = endpoint.addr();
        let ok = |version: &str| {
            format!(
                "HTTP/{version} 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{BODY}",
                BODY.len()
            )
        };
        assert_eq!(
            exchange(addr, b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n"),
            ok("1.1")
        );
        assert_eq!(exchange(addr, b"GET /metrics HTTP/1.0\r\n\r\n"), ok("1.0"));
        assert_eq!(
            exchange(
                addr,
                b"GET /metrics?x=1 HTTP/1.1\r\nUser-Agent: Prometheus/2.0\r\nAccept: text/plain;q=0.5, */*;q=0.1\r\n\r\n"
            ),
            ok("1.1")
        );
        // Blank lines before the request line are ignored (RFC 9112, section 2.2).
        assert_eq!(
            exchange(addr, b"\r\n\r\nGET /metrics HTTP/1.1\r\n\r\n"),
            ok("1.1")
        );
        assert_eq!(renders.load(Ordering::SeqCst), 4);
        let not_found = plain("1.1", "404 Not Found", "", "not found\n");
        assert_eq!(exchange(addr, b"GET / HTTP/1.1\r\n\r\n"), not_found);
        assert_eq!(exchange(addr, b"GET /metricsx HTTP/1.1\r\n\r\n"), not_found);
        assert_eq!(exchange(addr, b"POST /other HTTP/1.1\r\n\r\n"), not_found);
        let not_allowed = plain(
            "1.1",
            "405 Method Not Allowed",
            "Allow: GET\r\n",
            "only GET is supported\n",
        );
        for method in ["POST", "DELETE", "get"] {
            let request = format!("{method} /metrics HTTP/1.1\r\n\r\n");
            assert_eq!(exchange(addr, request.as_bytes()), not_allowed, "{method}");
        }
        // The answer to HEAD has no body.
        assert_eq!(
            exchange(addr, b"HEAD /metrics HTTP/1.1\r\n\r\n"),
            not_allowed.replace("only GET is supported\n", "")
        );
        assert_eq!(
            exchange(
                addr,
                b"POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
            ),
            not_allowed
        );
        // Refusals never render.
        assert_eq!(renders.load(Ordering::SeqCst), 4);

        let bad = "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
        for garbage in [
            &b"\x00\x01garbage\r\n"[..],
            b"GET /metrics HTTP/2.0\r\n\r\n",
            b"GET /m\xffetrics HTTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\nno colon\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n",
        ] {
            assert_eq!(
                exchange(addr, garbage),
                bad,
                "{:?}",
                String::from_utf8_lossy(garbage)
            );
        }
        // A head that never ends.
        let huge = format!("GET /metrics HTTP/1.1\r\nX: {}", "a".repeat(3 * MAX_HEAD));
        assert_eq!(
            exchange(addr, huge.as_bytes()),
            "HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        );
        // A whole request from a client that closed its side at once is answered (a scraper
        // written as `printf ... | nc -N`).
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        assert_eq!(
            String::from_utf8(until_closed(&mut s, Duration::from_secs(5)).0).unwrap(),
            ok("1.0")
        );
        // Half a request, then the client stops sending: closed unanswered.
        let mut s = half_sent(addr);
        s.shutdown(Shutdown::Write).unwrap();
        let (got, closed) = until_closed(&mut s, Duration::from_secs(5));
        assert_eq!(String::from_utf8_lossy(&got), "");
        assert!(closed.is_some());
        assert_eq!(renders.load(Ordering::SeqCst), 5);
    }

    #[test]
    fn silent_and_stalled_clients_are_cut_at_the_head_timeout() {
        let limits = Limits {
            head: Duration::from_millis(300),
            ..Limits::default()
        };
        let (endpoint, _) = endpoint(limits);
        let mut silent = TcpStream::connect(endpoint.addr()).unwrap();
        let mut stalled = half_sent(endpoint.addr());
        for s in [&mut silent, &mut stalled] {
            let (got, closed) = until_closed(s, Duration::from_secs(5));
            assert_eq!(got, b"");
            let closed = closed.expect("never disconnected");
            // The second was measured from when the first ended.
            assert!(closed < Duration::from_millis(1300), "{closed:?}");
        }
    }

    #[test]
    fn a_client_that_does_not_read_is_cut_at_the_exchange_timeout() {
        let limits = Limits {
            exchange: Duration::from_millis(500),
            ..Limits::default()
        };
        // Far more than the socket buffers of both ends hold.
        let big = "x".repeat(64 << 20);
        let endpoint = Endpoint::bind("127.0.0.1:0".parse().unwrap(), limits, move || big.clone())
            .expect("binds");
        let mut s = TcpStream::connect(endpoint.addr()).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
        thread::sleep(Duration::from_millis(1500));
        let started = Instant::now();
        let (got, closed) = until_closed(&mut s, Duration::from_secs(10));
        assert!(closed.is_some(), "never disconnected");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(got.len() < 64 << 20, "the whole answer went out");
    }

    #[test]
    fn at_the_limit_the_oldest_connection_without_a_head_makes_room() {
        // Timeouts far away: only eviction can explain a close.
        let limits = Limits {
            connections: 4,
            head: Duration::from_secs(30),
            exchange: Duration::from_secs(30),
        };
        let (endpoint, _) = endpoint(limits);
        let addr = endpoint.addr();
        let mut stalled: Vec<TcpStream> = (0..8).map(|_| half_sent(addr)).collect();
        let started = Instant::now();
        assert!(exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n").ends_with(BODY));
        assert!(started.elapsed() < Duration::from_secs(1));
        // The four over the limit and the scrape evicted the five oldest, unanswered.
        for (i, s) in stalled.iter_mut().enumerate() {
            let wait = Duration::from_millis(if i < 5 { 2000 } else { 300 });
            let (got, closed) = until_closed(s, wait);
            assert_eq!(got, b"", "connection {i}");
            assert_eq!(closed.is_some(), i < 5, "connection {i}");
        }
    }

    #[test]
    fn dropping_the_endpoint_stops_it_at_once() {
        let (endpoint, _) = endpoint(Limits::default());
        let addr = endpoint.addr();
        let mut stalled = half_sent(addr);
        let started = Instant::now();
        drop(endpoint);
        assert!(started.elapsed() < Duration::from_millis(500));
        let (got, closed) = until_closed(&mut stalled, Duration::from_secs(1));
        assert_eq!((got, closed.is_some()), (Vec::new(), true));
        assert!(
            TcpStream::connect(addr).is_err(),
            "stopped endpoint still listens"
        );
    }
}
