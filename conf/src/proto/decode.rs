//! Decoding a [`Request`] straight from the JSON text, without an intermediate tree.
//!
//! serde's derived decoder of an internally tagged enum (`{"op": ..., ...}`) first copies the
//! whole object into a generic tree, because the tag could come last; a 16 MiB body of
//! `[0,0,…]` became some 300 MB before it was refused. This decoder requires `"op"` to be
//! the first member (as every encoder of this protocol writes it), then decodes the other
//! members directly into their types. Unknown members are skipped without being stored.
//!
//! The shape is bounded too: a batch may not contain a batch (so the nesting depth is
//! fixed) and holds at most [`MAX_BATCH`] requests.

use std::fmt;
use std::net::SocketAddr;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::{DestSpec, HealthReport, Request, ServiceKey, ServiceSpec, TimeoutValues};
use crate::echo;
use crate::model::{SyncDaemon, SyncRole};

/// Most requests a [`Request::Batch`] may hold: more than a restore of 10 000 services with
/// 7 reals each (the most [`MAX_REQUEST`](super::MAX_REQUEST) carries at the longest
/// spellings), and few enough that a frame of tiny requests decodes into about a frame's
/// worth of memory. It was 2^18 until addresses could be IPv6: a request grew from 64 to
/// 104 bytes, and 2^18 of them no longer fit that bound while the list doubles.
pub const MAX_BATCH: usize = 1 << 17;

/// The `op` names, in the order of [`Op`].
const OPS: &[&str] = &[
    "info",
    "add_service",
    "edit_service",
    "del_service",
    "clear",
    "add_dest",
    "edit_dest",
    "del_dest",
    "zero",
    "set_timeouts",
    "get_timeouts",
    "list_services",
    "list_conns",
    "add_laddr",
    "del_laddr",
    "get_laddrs",
    "get_workers",
    "batch",
    "set_health",
    "get_health",
    "start_daemon",
    "stop_daemon",
    "get_daemons",
];

/// What `"op"` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Info,
    AddService,
    EditService,
    DelService,
    Clear,
    AddDest,
    EditDest,
    DelDest,
    Zero,
    SetTimeouts,
    GetTimeouts,
    ListServices,
    ListConns,
    AddLaddr,
    DelLaddr,
    GetLaddrs,
    GetWorkers,
    Batch,
    SetHealth,
    GetHealth,
    StartDaemon,
    StopDaemon,
    GetDaemons,
}

impl Op {
    const ALL: [Op; 23] = [
        Op::Info,
        Op::AddService,
        Op::EditService,
        Op::DelService,
        Op::Clear,
        Op::AddDest,
        Op::EditDest,
        Op::DelDest,
        Op::Zero,
        Op::SetTimeouts,
        Op::GetTimeouts,
        Op::ListServices,
        Op::ListConns,
        Op::AddLaddr,
        Op::DelLaddr,
        Op::GetLaddrs,
        Op::GetWorkers,
        Op::Batch,
        Op::SetHealth,
        Op::GetHealth,
        Op::StartDaemon,
        Op::StopDaemon,
        Op::GetDaemons,
    ];
}

impl<'de> Deserialize<'de> for Op {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Op, D::Error> {
        struct Name;
        impl Visitor<'_> for Name {
            type Value = Op;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a request name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Op, E> {
                match OPS.iter().position(|&n| n == v) {
                    Some(i) => Ok(Op::ALL[i]),
                    None => Err(E::unknown_variant(&echo::cut(v), OPS)),
                }
            }
        }
        d.deserialize_str(Name)
    }
}

/// The first member's name, which must be `op`.
struct OpKey;

impl<'de> Deserialize<'de> for OpKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<OpKey, D::Error> {
        struct Key;
        impl Visitor<'_> for Key {
            type Value = OpKey;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("the member name \"op\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OpKey, E> {
                if v == "op" {
                    Ok(OpKey)
                } else {
                    Err(E::custom(format!(
                        "\"op\" must be the first member of a request, not {}",
                        echo::quote(v)
                    )))
                }
            }
        }
        d.deserialize_identifier(Key)
    }
}

// The members that follow "op", per request.
#[derive(Deserialize)]
struct NoMembers {}

#[derive(Deserialize)]
struct Service<T> {
    service: T,
}

#[derive(Deserialize)]
struct ServiceDest {
    service: ServiceKey,
    dest: DestSpec,
}

#[derive(Deserialize)]
struct ServiceAddr<T> {
    service: ServiceKey,
    addr: T,
}

#[derive(Deserialize)]
struct Timeouts {
    timeouts: TimeoutValues,
}

#[derive(Deserialize)]
struct Report {
    report: HealthReport,
}

#[derive(Deserialize)]
struct Daemon {
    daemon: SyncDaemon,
}

#[derive(Deserialize)]
struct Role {
    role: SyncRole,
}

#[derive(Deserialize)]
struct Cursor {
    cursor: u64,
}

#[derive(Deserialize)]
struct Batch {
    #[serde(deserialize_with = "batch_requests")]
    requests: Vec<Request>,
}

fn batch_requests<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Request>, D::Error> {
    struct Requests;
    impl<'de> Visitor<'de> for Requests {
        type Value = Vec<Request>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list of requests")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Request>, A::Error> {
            let mut requests = Vec::new();
            while let Some(r) = seq.next_element_seed(RequestSeed { in_batch: true })? {
                if requests.len() == MAX_BATCH {
                    return Err(de::Error::custom(format!(
                        "a batch holds at most {MAX_BATCH} requests"
                    )));
                }
                requests.push(r);
            }
            Ok(requests)
        }
    }
    d.deserialize_seq(Requests)
}

/// Decodes one request; inside a batch, a batch is refused.
struct RequestSeed {
    in_batch: bool,
}

impl<'de> DeserializeSeed<'de> for RequestSeed {
    type Value = Request;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Request, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RequestSeed {
    type Value = Request;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a request (an object whose first member is \"op\")")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Request, A::Error> {
        if map.next_key::<OpKey>()?.is_none() {
            return Err(de::Error::missing_field("op"));
        }
        let op: Op = map.next_value()?;
        if self.in_batch && op == Op::Batch {
            return Err(de::Error::custom("a batch cannot contain a batch"));
        }
        fn rest<'de, T: Deserialize<'de>, A: MapAccess<'de>>(map: A) -> Result<T, A::Error> {
            T::deserialize(MapAccessDeserializer::new(map))
        }
        let request = match op {
            Op::Info => rest::<NoMembers, _>(map).map(|_| Request::Info)?,
            Op::AddService => Request::AddService {
                service: rest::<Service<ServiceSpec>, _>(map)?.service,
            },
            Op::EditService => Request::EditService {
                service: rest::<Service<ServiceSpec>, _>(map)?.service,
            },
            Op::DelService => Request::DelService {
                service: rest::<Service<ServiceKey>, _>(map)?.service,
            },
            Op::Clear => rest::<NoMembers, _>(map).map(|_| Request::Clear)?,
            Op::AddDest => {
                let m: ServiceDest = rest(map)?;
                Request::AddDest {
                    service: m.service,
                    dest: m.dest,
                }
            }
            Op::EditDest => {
                let m: ServiceDest = rest(map)?;
                Request::EditDest {
                    service: m.service,
                    dest: m.dest,
                }
            }
            Op::DelDest => {
                let m: ServiceAddr<_> = rest(map)?;
                Request::DelDest {
                    service: m.service,
                    addr: m.addr,
                }
            }
            Op::Zero => Request::Zero {
                service: rest::<Service<Option<ServiceKey>>, _>(map)?.service,
            },
            Op::SetTimeouts => Request::SetTimeouts {
                timeouts: rest::<Timeouts, _>(map)?.timeouts,
            },
            Op::GetTimeouts => rest::<NoMembers, _>(map).map(|_| Request::GetTimeouts)?,
            Op::ListServices => Request::ListServices {
                service: rest::<Service<Option<ServiceKey>>, _>(map)?.service,
            },
            Op::ListConns => Request::ListConns {
                cursor: rest::<Cursor, _>(map)?.cursor,
            },
            Op::AddLaddr => {
                let m: ServiceAddr<_> = rest(map)?;
                Request::AddLaddr {
                    service: m.service,
                    addr: m.addr,
                }
            }
            Op::DelLaddr => {
                let m: ServiceAddr<_> = rest(map)?;
                Request::DelLaddr {
                    service: m.service,
                    addr: m.addr,
                }
            }
            Op::GetLaddrs => Request::GetLaddrs {
                service: rest::<Service<Option<ServiceKey>>, _>(map)?.service,
            },
            Op::GetWorkers => rest::<NoMembers, _>(map).map(|_| Request::GetWorkers)?,
            Op::Batch => Request::Batch {
                requests: rest::<Batch, _>(map)?.requests,
            },
            Op::SetHealth => Request::SetHealth {
                report: rest::<Report, _>(map)?.report,
            },
            Op::GetHealth => rest::<NoMembers, _>(map).map(|_| Request::GetHealth)?,
            Op::StartDaemon => Request::StartDaemon {
                daemon: rest::<Daemon, _>(map)?.daemon,
            },
            Op::StopDaemon => Request::StopDaemon {
                role: rest::<Role, _>(map)?.role,
            },
            Op::GetDaemons => rest::<NoMembers, _>(map).map(|_| Request::GetDaemons)?,
        };
        if let Some(a) = zoned(&request) {
            return Err(de::Error::custom(format!(
                "{a} has an IPv6 zone, which no service or real server address has"
            )));
        }
        Ok(request)
    }
}

/// The first address of `request` with an IPv6 zone (`[fe80::1%2]:80`, which std parses into
/// a scope id): the same address would otherwise name two services, and print differently.
fn zoned(request: &Request) -> Option<SocketAddr> {
    let key = |k: &ServiceKey| k.vip;
    let addrs: [Option<SocketAddr>; 2] = match request {
        Request::AddService { service } | Request::EditService { service } => {
            [Some(service.key.vip), None]
        }
        Request::DelService { service } => [Some(service.vip), None],
        Request::AddDest { service, dest } | Request::EditDest { service, dest } => {
            [Some(service.vip), Some(dest.addr)]
        }
        Request::DelDest { service, addr } => [Some(service.vip), Some(*addr)],
        Request::AddLaddr { service, .. } | Request::DelLaddr { service, .. } => {
            [Some(service.vip), None]
        }
        Request::Zero { service }
        | Request::ListServices { service }
        | Request::GetLaddrs { service } => [service.as_ref().map(key), None],
        Request::SetHealth { report } => [Some(report.service.vip), Some(report.real)],
        _ => [None, None],
    };
    addrs
        .into_iter()
        .flatten()
        .find(|a| matches!(a, SocketAddr::V6(v6) if v6.scope_id() != 0 || v6.flowinfo() != 0))
}

impl<'de> Deserialize<'de> for Request {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Request, D::Error> {
        RequestSeed { in_batch: false }.deserialize(d)
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn decode(json: &str) -> Result<Request, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn test_names_match_the_encoder() {
        // Every name decodes to the request the encoder writes under it.
        let key = r#"{"proto":"tcp","vip":"10.0.0.100:80"}"#;
        for (i, name) in OPS.iter().enumerate() {
            assert_eq!(
                Op::deserialize(serde_json::json!(name)).unwrap(),
                Op::ALL[i]
            );
        }
        let samples = [
            Request::Info,
            Request::Clear,
            Request::GetTimeouts,
            Request::GetWorkers,
            Request::GetHealth,
            Request::SetHealth {
                report: HealthReport {
                    service: serde_json::from_str(key).unwrap(),
                    real: "10.0.0.11:80".parse().unwrap(),
                    up: false,
                    weight: Some(3),
                    checks: vec![super::super::CheckState {
                        check: "HTTP_GET 10.0.0.11:80".into(),
                        up: false,
                        last: "timeout".into(),
                        since: 5,
                    }],
                },
            },
            Request::ListConns { cursor: 7 },
            Request::Zero { service: None },
            Request::StartDaemon {
                daemon: SyncDaemon::new(SyncRole::Backup, "rvs1"),
            },
            Request::StopDaemon {
                role: SyncRole::Master,
            },
            Request::GetDaemons,
            Request::Batch { requests: vec![] },
        ];
        for r in samples {
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(decode(&json), Ok(r), "{json}");
        }
        assert_eq!(
            decode(&format!(r#"{{"op":"list_services","service":{key}}}"#)),
            Ok(Request::ListServices {
                service: Some(serde_json::from_str(key).unwrap())
            })
        );
    }

    #[test]
    fn test_errors() {
        let err = |json: &str| decode(json).unwrap_err();
        assert!(err(r#"{"service":null,"op":"zero"}"#)
            .starts_with(r#""op" must be the first member of a request, not "service""#));
        assert!(err(r#"{}"#).starts_with("missing field `op`"));
        assert!(err(r#"{"op":"fly"}"#).starts_with("unknown variant `fly`, expected one of"));
        let long = "f".repeat(100_000);
        let e = err(&format!(r#"{{"op":"{long}"}}"#));
        assert!(
            e.starts_with(&format!("unknown variant `{}…`, expected", "f".repeat(64))),
            "{e}"
        );
        assert!(err(r#"{"op":"add_service"}"#).starts_with("missing field `service`"));
        assert!(
            err(r#"{"op":"batch","requests":[{"op":"batch","requests":[]}]}"#)
                .starts_with("a batch cannot contain a batch")
        );
        assert!(err("[0]").starts_with("invalid type: sequence, expected a request"));
        assert!(err(r#"{"op":"stop_daemon","role":"both"}"#)
            .starts_with("unknown variant `both`, expected `master` or `backup`"));
        assert!(err(r#"{"op":"start_daemon","daemon":{"role":"master"}}"#)
            .starts_with("missing field `interface`"));
        assert!(err(r#"{"op":"start_daemon","daemon":{"role":"master","interface":"rvs1","syncid":256,"maxlen":null,"group":"224.0.0.81","port":8848,"ttl":1}}"#)
            .starts_with("invalid value: integer `256`, expected u8"));
        // Unknown members are skipped, as the derived decoder did.
        assert_eq!(
            decode(r#"{"op":"clear","x":[[1],{"a":2}]}"#),
            Ok(Request::Clear)
        );
    }

    #[test]
    fn test_batch_limit() {
        let clears = |n: usize| {
            let items = vec![r#"{"op":"clear"}"#; n].join(",");
            format!(r#"{{"op":"batch","requests":[{items}]}}"#)
        };
        assert_eq!(
            decode(&clears(MAX_BATCH)).map(|r| match r {
                Request::Batch { requests } => requests.len(),
                _ => 0,
            }),
            Ok(MAX_BATCH)
        );
        assert!(decode(&clears(MAX_BATCH + 1))
            .unwrap_err()
            .starts_with(&format!("a batch holds at most {MAX_BATCH} requests")));
    }
}
