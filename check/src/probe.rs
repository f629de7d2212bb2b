//! The probes, one per keepalived checker. Each runs under the check's `connect_timeout`
//! (MISC_CHECK: its `timeout`) as a whole and answers an [`Outcome`] with keepalived's reason.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use conf::health::{Check, CheckKind, HttpCheck, MiscCheck, UdpCheck, UdpReply};
use md5::{Digest, Md5};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

use crate::machine::Outcome;

/// Largest HTTP response read (headers and body); keepalived digests whole bodies, health
/// pages are small, and a server streaming forever must not hold memory.
const MAX_RESPONSE: usize = 4 << 20;

/// Runs one probe of `check`.
pub async fn run(check: &Check, tls: &Arc<rustls::ClientConfig>) -> Outcome {
    let limit = check.connect_timeout;
    let probe = async {
        match &check.kind {
            CheckKind::Tcp => tcp(check).await.map(|_| pass("connected")),
            CheckKind::Http(h) => http(check, h, None).await,
            CheckKind::Https(h) => http(check, h, Some(tls)).await,
            CheckKind::Udp(u) => udp(check, u, limit).await,
            CheckKind::Misc(m) => return misc(m).await,
        }
        .unwrap_or_else(|e| Outcome::Fail(e.to_string()))
    };
    match tokio::time::timeout(limit, probe).await {
        Ok(outcome) => outcome,
        Err(_) => Outcome::Fail(format!("timeout after {:.1}s", limit.as_secs_f64())),
    }
}

fn pass(detail: impl Into<String>) -> Outcome {
    Outcome::Pass {
        weight: None,
        detail: detail.into(),
    }
}

/// The unspecified address of the family the probe connects to.
fn any(check: &Check) -> IpAddr {
    match check.connect {
        SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

fn source(check: &Check) -> Option<SocketAddr> {
    (check.bindto.is_some() || check.bind_port != 0)
        .then(|| SocketAddr::new(check.bindto.unwrap_or_else(|| any(check)), check.bind_port))
}

async fn tcp(check: &Check) -> io::Result<TcpStream> {
    let socket = match check.connect {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if let Some(src) = source(check) {
        // A fixed bind_port would otherwise wait out TIME_WAIT between probes.
        socket.set_reuseaddr(true)?;
        socket.bind(src)?;
    }
    socket.connect(check.connect).await
}

async fn http(
    check: &Check,
    h: &HttpCheck,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> io::Result<Outcome> {
    for (i, url) in h.urls.iter().enumerate() {
        let vhost = url.virtualhost.clone().or_else(|| h.virtualhost.clone());
        // An IPv6 literal is bracketed in Host, as in a URL (RFC 9110 §7.2).
        let host = vhost.clone().unwrap_or_else(|| match check.connect {
            SocketAddr::V4(a) => a.ip().to_string(),
            SocketAddr::V6(a) => format!("[{}]", a.ip()),
        });
        let stream = tcp(check).await?;
        let response = match tls {
            None => get(stream, &host, &url.path).await?,
            Some(config) => {
                let name = match vhost {
                    Some(v) => rustls::pki_types::ServerName::try_from(v)
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?,
                    None => rustls::pki_types::ServerName::IpAddress(check.connect.ip().into()),
                };
                let connector = tokio_rustls::TlsConnector::from(Arc::clone(config));
                let stream = connector.connect(name, stream).await?;
                get(stream, &host, &url.path).await?
            }
        };
        let (code, body) = parse_response(&response)?;
        let n = i + 1;
        if !url.accepts(code) {
            return Ok(Outcome::Fail(format!(
                "HTTP status code {code} for url({n}) {}",
                url.path
            )));
        }
        if let Some(want) = url.digest {
            let got: [u8; 16] = Md5::digest(body).into();
            if got != want {
                return Ok(Outcome::Fail(format!(
                    "MD5 digest {} of url({n}) {} differs from {}",
                    hex(&got),
                    url.path,
                    hex(&want)
                )));
            }
        }
    }
    Ok(pass("HTTP status code success"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An HTTP/1.0 GET (as keepalived's default `http_protocol`): the server closes the
/// connection after the response, so the body is everything after the headers.
async fn get<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    host: &str,
    path: &str,
) -> io::Result<Vec<u8>> {
    let request = format!(
        "GET {path} HTTP/1.0\r\nUser-Agent: rvscheck\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    stream.flush().await?;
    let mut response = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(n) => n,
            // A TLS server that closes without close_notify has still sent the whole body.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && !response.is_empty() => 0,
            Err(e) => return Err(e),
        };
        if n == 0 {
            break;
        }
        response.extend_from_slice(&chunk[..n]);
        if response.len() > MAX_RESPONSE {
            return Err(io::Error::other(format!(
                "response larger than {MAX_RESPONSE} bytes"
            )));
        }
    }
    Ok(response)
}

/// The status code and body of an HTTP/1.x response.
pub fn parse_response(response: &[u8]) -> io::Result<(u16, &[u8])> {
    let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_string());
    if response.is_empty() {
        return Err(bad("connection closed without a response"));
    }
    let end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .ok_or_else(|| bad("no end of HTTP headers"))?;
    let line_end = response.iter().position(|&b| b == b'\r').unwrap_or(end);
    let line = std::str::from_utf8(&response[..line_end]).map_err(|_| bad("bad status line"))?;
    let mut parts = line.split(' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(bad("not an HTTP/1.x response"));
    }
    let code = parts
        .next()
        .and_then(|c| c.parse::<u16>().ok())
        .filter(|c| (100..=599).contains(c))
        .ok_or_else(|| bad("bad status code"))?;
    Ok((code, &response[end..]))
}

async fn udp(check: &Check, u: &UdpCheck, limit: Duration) -> io::Result<Outcome> {
    let src = source(check).unwrap_or_else(|| SocketAddr::new(any(check), 0));
    let socket = UdpSocket::bind(src).await?;
    // Connected: an ICMP port unreachable comes back as ECONNREFUSED on the next call.
    socket.connect(check.connect).await?;
    socket.send(&u.payload).await?;
    let mut buf = vec![0u8; 65_536];
    match &u.reply {
        UdpReply::NotRequired => {
            // keepalived: success unless an ICMP error arrives within the timeout. Wait a
            // little less than the limit, so the outer timeout does not fire first.
            let wait = limit.mul_f64(0.9);
            match tokio::time::timeout(wait, socket.recv(&mut buf)).await {
                Err(_) | Ok(Ok(_)) => Ok(pass("no ICMP error")),
                Ok(Err(e)) => Err(e),
            }
        }
        UdpReply::Any => {
            let n = socket.recv(&mut buf).await?;
            Ok(pass(format!("{n} bytes replied")))
        }
        UdpReply::Prefix(want) => {
            let n = socket.recv(&mut buf).await?;
            if buf[..n].starts_with(want) {
                Ok(pass(format!("{n} bytes replied")))
            } else {
                Ok(Outcome::Fail(format!(
                    "reply {} does not start with {}",
                    hex(&buf[..n.min(32)]),
                    hex(want)
                )))
            }
        }
    }
}

/// MISC_CHECK: the command through `/bin/sh -c`, in a process group of its own that is
/// killed whole when the timeout ends the probe.
async fn misc(m: &MiscCheck) -> Outcome {
    let mut command = tokio::process::Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(&m.path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => return Outcome::Fail(format!("cannot run: {e}")),
    };
    let group = child.id();
    let guard = GroupKiller(group);
    let status = child.wait().await;
    std::mem::forget(guard);
    match status {
        Err(e) => Outcome::Fail(format!("wait failed: {e}")),
        Ok(s) => match s.code() {
            Some(0) => pass("exit 0"),
            Some(code @ 2..=255) if m.dynamic => Outcome::Pass {
                weight: Some((code - 2) as u32),
                detail: format!("exit {code}, weight {}", code - 2),
            },
            Some(code) => Outcome::Fail(format!("exit {code}")),
            None => Outcome::Fail(format!("{s}")),
        },
    }
}

/// Kills a MISC_CHECK's process group when its probe is dropped (the timeout).
struct GroupKiller(Option<u32>);

impl Drop for GroupKiller {
    fn drop(&mut self) {
        // The whole group: `sh -c` may have started children of its own. A system call, not
        // kill(1): Debian 12's procps-ng kill reads `kill -KILL -1234` as pid -1 (its digit
        // special case takes the first digit), which is every process the user may signal.
        let group = self
            .0
            .and_then(|pid| i32::try_from(pid).ok())
            .filter(|&pid| pid > 1)
            .and_then(rustix::process::Pid::from_raw);
        if let Some(group) = group {
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
    }
}

/// TLS settings of SSL_GET: any certificate is accepted, as keepalived does (it checks
/// that the server answers, not who it is).
pub fn tls_config() -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    // ring builds with a C compiler only (aws-lc needs cmake); rustls deprecates it for lacking
    // post-quantum key exchange, which a probe that trusts any certificate does not need.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use conf::health::Url;
    use tokio::net::TcpListener;

    fn check(kind: CheckKind, connect: SocketAddr, timeout_ms: u64) -> Check {
        Check {
            kind,
            connect,
            bindto: Some(if connect.is_ipv4() {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            } else {
                IpAddr::V6(Ipv6Addr::LOCALHOST)
            }),
            bind_port: 0,
            connect_timeout: Duration::from_millis(timeout_ms),
            retry: 1,
            delay_before_retry: Duration::from_secs(1),
            delay_loop: Duration::from_secs(1),
            warmup: Duration::ZERO,
        }
    }

    fn url(path: &str, status: &[(u16, u16)], digest: Option<[u8; 16]>) -> Url {
        Url {
            path: path.into(),
            status: status.to_vec(),
            digest,
            virtualhost: None,
        }
    }

    /// A one-shot HTTP server answering `response` to each connection; it records the
    /// requests it got.
    async fn server(response: &'static [u8]) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
        server_on("127.0.0.1:0", response).await
    }

    /// [`server`] on `bind` (`[::1]:0` for IPv6).
    async fn server_on(
        bind: &str,
        response: &'static [u8],
    ) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind(bind).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 4096];
                let n = s.read(&mut buf).await.unwrap();
                log.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buf[..n]).into_owned());
                s.write_all(response).await.unwrap();
                s.shutdown().await.unwrap();
            }
        });
        (addr, seen)
    }

    use std::sync::Mutex;

    fn tls() -> Arc<rustls::ClientConfig> {
        tls_config().unwrap()
    }

    const OK: &[u8] = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello\n";

    #[tokio::test]
    async fn test_http_status_digest_and_host() {
        let (addr, seen) = server(OK).await;
        // md5("hello\n")
        let digest = [
            0xb1, 0x94, 0x6a, 0xc9, 0x24, 0x92, 0xd2, 0x34, 0x7c, 0x62, 0x35, 0xb4, 0xd2, 0x61,
            0x11, 0x84,
        ];
        let mut h = HttpCheck {
            virtualhost: Some("www.example.com".into()),
            urls: vec![url("/health", &[(200, 299)], Some(digest))],
        };
        let c = check(CheckKind::Http(h.clone()), addr, 2000);
        assert!(matches!(run(&c, &tls()).await, Outcome::Pass { .. }));
        assert_eq!(
            seen.lock().unwrap()[0],
            "GET /health HTTP/1.0\r\nUser-Agent: rvscheck\r\nHost: www.example.com\r\nConnection: close\r\n\r\n"
        );
        h.urls[0].digest = Some([0; 16]);
        let c = check(CheckKind::Http(h.clone()), addr, 2000);
        assert_eq!(
            run(&c, &tls()).await,
            Outcome::Fail(
                "MD5 digest b1946ac92492d2347c6235b4d2611184 of url(1) /health differs from 00000000000000000000000000000000".into()
            )
        );
        h.urls[0].digest = None;
        h.urls[0].status = vec![(301, 302), (500, 500)];
        let c = check(CheckKind::Http(h), addr, 2000);
        assert_eq!(
            run(&c, &tls()).await,
            Outcome::Fail("HTTP status code 200 for url(1) /health".into())
        );
    }

    #[tokio::test]
    async fn test_http_that_never_answers_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Accepted by the kernel's backlog, never answered.
        let h = HttpCheck {
            virtualhost: None,
            urls: vec![url("/", &[(200, 299)], None)],
        };
        let c = check(CheckKind::Http(h), addr, 300);
        assert_eq!(
            run(&c, &tls()).await,
            Outcome::Fail("timeout after 0.3s".into())
        );
        drop(listener);
    }

    /// TCP and HTTP checks to an IPv6 real connect to its address (and from `bindto` of
    /// that family); HTTP names it `[::1]` in Host.
    #[tokio::test]
    async fn test_ipv6_tcp_and_http() {
        let (addr, seen) = server_on("[::1]:0", OK).await;
        assert!(addr.is_ipv6());
        let c = check(CheckKind::Tcp, addr, 2000);
        assert!(matches!(run(&c, &tls()).await, Outcome::Pass { .. }));
        let h = HttpCheck {
            virtualhost: None,
            urls: vec![url("/health", &[(200, 299)], None)],
        };
        let c = check(CheckKind::Http(h), addr, 2000);
        assert!(matches!(run(&c, &tls()).await, Outcome::Pass { .. }));
        assert!(seen.lock().unwrap().contains(
            &"GET /health HTTP/1.0\r\nUser-Agent: rvscheck\r\nHost: [::1]\r\nConnection: close\r\n\r\n".to_string()
        ));
        // No bindto: the socket is of the real's family.
        let c = Check {
            bindto: None,
            ..check(CheckKind::Tcp, addr, 2000)
        };
        assert!(matches!(run(&c, &tls()).await, Outcome::Pass { .. }));
        let listener = TcpListener::bind("[::1]:0").await.unwrap();
        let gone = listener.local_addr().unwrap();
        drop(listener);
        match run(&check(CheckKind::Tcp, gone, 1000), &tls()).await {
            Outcome::Fail(why) => assert!(why.contains("refused"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn test_tcp_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let c = check(CheckKind::Tcp, addr, 1000);
        assert!(matches!(run(&c, &tls()).await, Outcome::Pass { .. }));
        drop(listener);
        match run(&c, &tls()).await {
            Outcome::Fail(why) => assert!(why.contains("refused"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn test_udp_reply_and_icmp_unreachable() {
        let echo = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = echo.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 64];
            loop {
                let (n, from) = echo.recv_from(&mut buf).await.unwrap();
                let mut reply = b"pong:".to_vec();
                reply.extend_from_slice(&buf[..n]);
                echo.send_to(&reply, from).await.unwrap();
            }
        });
        let udp = |reply| {
            CheckKind::Udp(UdpCheck {
                payload: b"ping".to_vec(),
                reply,
            })
        };
        let c = check(udp(UdpReply::Prefix(b"pong:ping".to_vec())), addr, 1000);
        assert!(matches!(run(&c, &tls()).await, Outcome::Pass { .. }));
        let c = check(udp(UdpReply::Prefix(b"nope".to_vec())), addr, 1000);
        assert!(matches!(run(&c, &tls()).await, Outcome::Fail(_)));
        // A closed port: the kernel's ICMP port unreachable fails the probe at once, with or
        // without require_reply.
        let closed = {
            let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            s.local_addr().unwrap()
        };
        for reply in [UdpReply::NotRequired, UdpReply::Any] {
            let c = check(udp(reply), closed, 2000);
            let started = std::time::Instant::now();
            match run(&c, &tls()).await {
                Outcome::Fail(why) => assert!(why.contains("refused"), "{why}"),
                other => panic!("{other:?}"),
            }
            assert!(started.elapsed() < Duration::from_millis(1000));
        }
        // No reply required and none comes: success once the wait is over.
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let c = check(
            udp(UdpReply::NotRequired),
            silent.local_addr().unwrap(),
            200,
        );
        assert!(matches!(run(&c, &tls()).await, Outcome::Pass { .. }));
    }

    #[tokio::test]
    async fn test_misc_exit_codes_and_timeout() {
        let misc = |path: &str, dynamic| {
            let mut c = check(
                CheckKind::Misc(MiscCheck {
                    path: path.into(),
                    dynamic,
                }),
                "127.0.0.1:1".parse().unwrap(),
                2000,
            );
            c.connect_timeout = Duration::from_millis(500);
            c
        };
        assert!(matches!(
            run(&misc("exit 0", false), &tls()).await,
            Outcome::Pass { weight: None, .. }
        ));
        assert_eq!(
            run(&misc("exit 1", true), &tls()).await,
            Outcome::Fail("exit 1".into())
        );
        assert_eq!(
            run(&misc("exit 7", true), &tls()).await,
            Outcome::Pass {
                weight: Some(5),
                detail: "exit 7, weight 5".into()
            }
        );
        assert_eq!(
            run(&misc("exit 7", false), &tls()).await,
            Outcome::Fail("exit 7".into())
        );
        let started = std::time::Instant::now();
        assert_eq!(
            run(&misc("sleep 5", false), &tls()).await,
            Outcome::Fail("timeout after 0.5s".into())
        );
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn test_parse_response() {
        assert_eq!(
            parse_response(b"HTTP/1.1 503 Busy\r\nA: b\r\n\r\nbody").unwrap(),
            (503, &b"body"[..])
        );
        assert!(parse_response(b"").is_err());
        assert!(parse_response(b"SSH-2.0-x\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.0 200 OK\r\n").is_err());
    }
}
