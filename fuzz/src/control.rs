//! The control protocol as the control server reads it (`control::server`): a client's byte
//! stream decoded frame after frame with [`proto::read_frame`] and the server's limit; a
//! malformed frame or one of another version is answered and the stream goes on; an oversized
//! or cut frame ends it.
//!
//! Properties beyond "no panic": every request decoded encodes again and decodes to the same
//! request (what `rvsadm` sends is what `rvsd` reads), and every error the server would send
//! back encodes within the response limit.

use conf::proto::{self, FrameError, Request, Response, MAX_REQUEST, MAX_RESPONSE};

/// Decodes `stream` as one client connection.
pub fn check_stream(stream: &[u8]) {
    let mut reader = stream;
    loop {
        match proto::read_frame::<_, Request>(&mut reader, MAX_REQUEST) {
            Ok(request) => round_trip(&request),
            Err(FrameError::Closed) => return,
            Err(e @ (FrameError::Malformed(_) | FrameError::Version(_))) => answer_error(&e),
            Err(e @ (FrameError::TooLarge { .. } | FrameError::Io(_))) => {
                answer_error(&e);
                return;
            }
        }
    }
}

fn round_trip(request: &Request) {
    let frame = match proto::encode_frame(request) {
        Ok(frame) => frame,
        Err(e) => panic!("{request:?} does not encode: {e}"),
    };
    match proto::read_frame::<_, Request>(&mut frame.as_slice(), MAX_REQUEST) {
        Ok(again) => assert_eq!(&again, request, "changed by a round trip"),
        Err(e) => panic!("{request:?} encoded as {frame:?} does not decode: {e}"),
    }
}

fn answer_error(e: &FrameError) {
    let frame = match proto::encode_frame(&Response::error(e.to_string())) {
        Ok(frame) => frame,
        Err(err) => panic!("the answer to {e:?} does not encode: {err}"),
    };
    assert!(frame.len() - 4 <= MAX_RESPONSE, "answer to {e:?} too large");
}

/// Seed streams: one frame of each request (with the shapes `control/tests` send), a
/// connection carrying several, and the refused shapes (another version, malformed JSON, an
/// oversized length, a frame cut short).
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    use conf::proto::{DestSpec, ServiceKey, ServiceSpec, TimeoutValues};
    use conf::{Mode, Netmask, Proto};
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};

    let key = ServiceKey {
        proto: Proto::Tcp,
        vip: SocketAddr::new(Ipv4Addr::new(10, 0, 0, 100).into(), 80),
    };
    let udp = ServiceKey {
        proto: Proto::Udp,
        vip: SocketAddr::new(Ipv4Addr::new(10, 0, 0, 100).into(), 0),
    };
    let key6 = ServiceKey {
        proto: Proto::Tcp,
        vip: "[2001:db8::100]:80".parse().unwrap(),
    };
    let service = ServiceSpec {
        key,
        sched: "wlc".into(),
        persistence: 0,
        netmask: Netmask::V4(Ipv4Addr::BROADCAST),
    };
    let persistent = ServiceSpec {
        key: udp,
        sched: "sh".into(),
        persistence: 300,
        netmask: Netmask::V4(Ipv4Addr::new(255, 255, 255, 0)),
    };
    let persistent6 = ServiceSpec {
        key: key6,
        sched: "sh".into(),
        persistence: 300,
        netmask: Netmask::V6(64),
    };
    let dest = |mode, weight| DestSpec {
        addr: SocketAddr::new(Ipv4Addr::new(192, 168, 10, 2).into(), 8080),
        mode,
        weight,
        u_threshold: 100,
        l_threshold: 0,
        tunnel: Default::default(),
    };
    let dest6 = DestSpec {
        addr: "[2001:db8:1::11]:8080".parse().unwrap(),
        ..dest(Mode::Nat, 1)
    };
    let laddr = IpAddr::V4(Ipv4Addr::new(192, 168, 10, 1));
    let requests = vec![
        ("info", Request::Info),
        (
            "add-service",
            Request::AddService {
                service: service.clone(),
            },
        ),
        (
            "add-persistent",
            Request::AddService {
                service: persistent,
            },
        ),
        (
            "edit-service",
            Request::EditService {
                service: service.clone(),
            },
        ),
        (
            "add-service6",
            Request::AddService {
                service: persistent6,
            },
        ),
        (
            "add-dest6",
            Request::AddDest {
                service: key6,
                dest: dest6,
            },
        ),
        (
            "add-laddr6",
            Request::AddLaddr {
                service: key6,
                addr: "2001:db8::1".parse().unwrap(),
            },
        ),
        ("del-service", Request::DelService { service: key }),
        ("clear", Request::Clear),
        (
            "add-dest",
            Request::AddDest {
                service: key,
                dest: dest(Mode::Nat, 1),
            },
        ),
        (
            "edit-dest",
            Request::EditDest {
                service: key,
                dest: dest(Mode::FullNat, 65535),
            },
        ),
        (
            "del-dest",
            Request::DelDest {
                service: key,
                addr: dest(Mode::Dr, 0).addr,
            },
        ),
        ("zero-one", Request::Zero { service: Some(key) }),
        ("zero-all", Request::Zero { service: None }),
        (
            "set-timeouts",
            Request::SetTimeouts {
                timeouts: TimeoutValues {
                    tcp: 900,
                    tcp_fin: 120,
                    udp: 300,
                },
            },
        ),
        ("get-timeouts", Request::GetTimeouts),
        ("list-services", Request::ListServices { service: None }),
        ("list-service", Request::ListServices { service: Some(udp) }),
        ("list-conns", Request::ListConns { cursor: 4096 }),
        (
            "add-laddr",
            Request::AddLaddr {
                service: key,
                addr: laddr,
            },
        ),
        (
            "del-laddr",
            Request::DelLaddr {
                service: key,
                addr: laddr,
            },
        ),
        ("get-laddrs", Request::GetLaddrs { service: None }),
        ("get-workers", Request::GetWorkers),
        ("get-health", Request::GetHealth),
        (
            "set-health",
            Request::SetHealth {
                report: proto::HealthReport {
                    service: key,
                    real: dest(Mode::Nat, 1).addr,
                    up: false,
                    weight: Some(3),
                    checks: vec![proto::CheckState {
                        check: "HTTP_GET 192.168.10.2:8080/".into(),
                        up: false,
                        last: "timeout after 5.0s".into(),
                        since: 1_700_000_000,
                    }],
                },
            },
        ),
        (
            "batch",
            Request::Batch {
                requests: vec![
                    Request::AddService { service },
                    Request::AddDest {
                        service: key,
                        dest: DestSpec {
                            tunnel: conf::Tunnel {
                                kind: conf::TunKind::Gue,
                                port: 6080,
                                csum: conf::TunCsum::Remcsum,
                            },
                            ..dest(Mode::Tun, 2_147_483_647)
                        },
                    },
                    Request::DelService { service: key },
                ],
            },
        ),
    ];
    let frame = |r: &Request| proto::encode_frame(r).unwrap_or_default();
    let mut seeds: Vec<(String, Vec<u8>)> = requests
        .iter()
        .map(|(name, r)| ((*name).to_owned(), frame(r)))
        .collect();
    let connection: Vec<u8> = requests
        .iter()
        .take(4)
        .flat_map(|(_, r)| frame(r))
        .collect();
    seeds.push(("connection".into(), connection));
    let raw = |body: &[u8]| {
        let mut f = u32::try_from(body.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes()
            .to_vec();
        f.extend_from_slice(body);
        f
    };
    seeds.push((
        "bad-version".into(),
        raw(br#"{"version":2,"body":{"op":"info"}}"#),
    ));
    seeds.push((
        "malformed".into(),
        raw(br#"{"version":1,"body":{"op":"add_service"}}"#),
    ));
    seeds.push((
        "too-large".into(),
        (MAX_REQUEST as u32 + 1).to_be_bytes().to_vec(),
    ));
    seeds.push((
        "cut".into(),
        raw(br#"{"version":1,"body":{"op":"info"}}"#)[..20].to_vec(),
    ));
    seeds
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seeds_decode_as_the_server_would() {
        for (name, stream) in crate::control::seeds() {
            check_stream(&stream);
            let mut reader = stream.as_slice();
            let first = proto::read_frame::<_, Request>(&mut reader, MAX_REQUEST);
            match name.as_str() {
                "bad-version" => assert!(matches!(first, Err(FrameError::Version(2)))),
                "malformed" => assert!(matches!(first, Err(FrameError::Malformed(_)))),
                "too-large" => assert!(matches!(first, Err(FrameError::TooLarge { .. }))),
                "cut" => assert!(matches!(first, Err(FrameError::Io(_)))),
                _ => assert!(first.is_ok(), "{name}: {first:?}"),
            }
        }
    }
}
