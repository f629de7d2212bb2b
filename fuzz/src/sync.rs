//! A received IPVS sync datagram as the sync thread's backup reads it:
//! [`fastpath::sync::wire::decode`] and its entry iterator.
//!
//! Properties beyond "no panic":
//! - the syncid filter: a message accepted with filter 0 is accepted the same with its own
//!   syncid and refused ([`MessageError::SyncIdMismatch`]) with any other;
//! - at most `nr_conns` entries come out, and none after an error that
//!   [ends the message](fastpath::sync::wire::EntryError::ends_message);
//! - the connections decoded, encoded again with [`MessageBuilder`], decode to exactly the
//!   same connections without error, and encoding those gives the same bytes again (what a
//!   backup reads is what an rvs master that has it sends).

use fastpath::sync::wire::{
    decode, FullNatSync, MessageBuilder, MessageError, SeqData, SeqPart, SyncConn, CONN_F_DROUTE,
    CONN_F_FULLNAT, CONN_F_INACTIVE, CONN_F_IN_SEQ, CONN_F_MASQ, CONN_F_OUT_SEQ, CONN_F_TEMPLATE,
    CONN_F_TUNNEL,
};
use std::net::Ipv4Addr;

/// Decodes `datagram` as one received sync message.
pub fn check_message(datagram: &[u8]) {
    let entries = match decode(datagram, 0) {
        Ok(entries) => entries,
        Err(e) => {
            assert!(!e.reason().is_empty() && !e.to_string().is_empty());
            return;
        }
    };
    let syncid = entries.syncid();
    let nr_conns = entries.nr_conns();
    let all: Vec<_> = entries.collect();
    assert!(
        all.len() <= usize::from(nr_conns),
        "{} of {nr_conns}",
        all.len()
    );
    if let Some(fatal) = all
        .iter()
        .position(|e| e.as_ref().is_err_and(|e| e.ends_message()))
    {
        assert_eq!(fatal + 1, all.len(), "entries after a fatal error: {all:?}");
    }
    match decode(datagram, syncid) {
        Ok(again) => assert_eq!(again.collect::<Vec<_>>(), all, "filter {syncid}"),
        Err(e) => panic!("refused with its own syncid {syncid}: {e}"),
    }
    let other = syncid.wrapping_add(1).max(1);
    if other != syncid {
        assert_eq!(
            decode(datagram, other).err(),
            Some(MessageError::SyncIdMismatch(syncid))
        );
    }
    for e in all.iter().filter_map(|e| e.as_ref().err()) {
        assert!(!e.reason().is_empty() && !e.to_string().is_empty());
    }
    let conns: Vec<SyncConn> = all.into_iter().filter_map(Result::ok).collect();
    let message = encode(syncid, &conns);
    let decoded: Vec<SyncConn> = match decode(&message, syncid) {
        Ok(entries) => entries
            .map(|e| e.unwrap_or_else(|e| panic!("re-encoded entry refused: {e}")))
            .collect(),
        Err(e) => panic!("re-encoded message refused: {e}"),
    };
    assert_eq!(decoded, conns, "changed by a round trip");
    assert_eq!(encode(syncid, &decoded), message, "encoding is not stable");
}

/// One message of `conns` (at most 255, as decoded from one message).
fn encode(syncid: u8, conns: &[SyncConn]) -> Vec<u8> {
    let mut builder = MessageBuilder::new(syncid, usize::from(u16::MAX));
    for conn in conns {
        if builder.push(conn).is_err() {
            panic!("{} connections do not fit one message", conns.len());
        }
    }
    builder.take()
}

/// Encoder messages of the shapes a master sends (plain NAT/DR/TUN, UDP, a template with its
/// connection, SEQ_DATA with padding, the FULLNAT option), and a few a receiver must refuse
/// entry by entry (unknown options, IPv6, persistence-engine data).
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let nat = SyncConn {
        protocol: 6,
        flags: CONN_F_MASQ,
        state: 1,
        cport: 40000,
        vport: 80,
        dport: 8080,
        fwmark: 0,
        timeout: 900,
        caddr: Ipv4Addr::new(192, 0, 2, 1),
        vaddr: Ipv4Addr::new(10, 0, 0, 100),
        daddr: Ipv4Addr::new(192, 168, 10, 2),
        seq: None,
        fullnat: None,
    };
    let dr = SyncConn {
        flags: CONN_F_DROUTE,
        ..nat
    };
    let tun_udp = SyncConn {
        protocol: 17,
        flags: CONN_F_TUNNEL | CONN_F_INACTIVE,
        state: 0,
        fwmark: 7,
        timeout: 300,
        ..nat
    };
    let template = SyncConn {
        flags: CONN_F_TEMPLATE | CONN_F_DROUTE,
        state: 0,
        cport: 0,
        caddr: Ipv4Addr::new(192, 0, 2, 0),
        timeout: 360,
        ..nat
    };
    let seq_part = SeqPart {
        init_seq: 0x1111_1111,
        delta: 16,
        previous_delta: 8,
    };
    let with_seq = SyncConn {
        flags: CONN_F_IN_SEQ | CONN_F_OUT_SEQ,
        seq: Some(SeqData {
            in_seq: seq_part,
            out_seq: seq_part,
        }),
        ..nat
    };
    let fullnat = SyncConn {
        flags: CONN_F_FULLNAT,
        fullnat: Some(FullNatSync {
            laddr: Ipv4Addr::new(10, 0, 0, 200),
            lport: 1025,
            client_isn: 0x0102_0304,
            delta: 0xa0b0_c0d0,
            fdata_seq: Some(0x5566_7788),
            inserted: 107,
        }),
        ..with_seq
    };
    let mut seeds = vec![
        ("nat".to_owned(), encode(5, &[nat])),
        ("dr-tun-udp".to_owned(), encode(0, &[dr, tun_udp])),
        ("template".to_owned(), encode(9, &[dr, template])),
        ("seq-padding".to_owned(), encode(5, &[with_seq, nat])),
        ("fullnat".to_owned(), encode(5, &[fullnat, with_seq, nat])),
        ("empty".to_owned(), encode(1, &[])),
    ];
    // Entries after the first rewritten: an unknown mandatory and an unknown optional option
    // (the first entry's size grows by 4), IPv6, SIP persistence data.
    let grown = |option: [u8; 4]| {
        let mut message = encode(5, &[nat, dr]);
        message.splice(44..44, option);
        message[11] += 4;
        message[3] += 4;
        message
    };
    seeds.push((
        "mandatory-option".to_owned(),
        grown([0x05, 0x02, 0xab, 0xcd]),
    ));
    seeds.push((
        "optional-option".to_owned(),
        grown([0x45, 0x02, 0xab, 0xcd]),
    ));
    seeds.push(("pe-data".to_owned(), grown([0x02, 0x02, 0xab, 0xcd])));
    // The first entry made IPv6: type 1 and 36 bytes more for the longer addresses.
    let mut ipv6 = encode(5, &[nat, dr]);
    ipv6.splice(44..44, [0x20; 36]);
    ipv6[8] = 1;
    ipv6[11] = 72;
    ipv6[3] += 36;
    seeds.push(("ipv6".to_owned(), ipv6));
    seeds
}

#[cfg(test)]
mod tests {
    use super::*;
    use fastpath::sync::wire::EntryError;

    #[test]
    fn the_seeds_pass_and_decode_as_built() {
        let seeds = seeds();
        assert_eq!(seeds.len(), 10);
        for (name, seed) in &seeds {
            println!("{name}");
            check_message(seed);
        }
        let outcome = |name: &str| -> Vec<Result<u8, EntryError>> {
            let (_, seed) = seeds.iter().find(|(n, _)| n == name).expect("seed");
            decode(seed, 0)
                .expect("valid header")
                .map(|e| e.map(|c| c.flags as u8))
                .collect()
        };
        assert_eq!(outcome("fullnat"), [Ok(0x05), Ok(0x00), Ok(0x00)]);
        assert_eq!(
            outcome("mandatory-option"),
            [Err(EntryError::UnknownMandatoryOption(5)), Ok(3)]
        );
        assert_eq!(outcome("optional-option"), [Ok(0), Ok(3)]);
        assert_eq!(
            outcome("pe-data"),
            [Err(EntryError::PersistenceEngine), Ok(3)]
        );
        assert_eq!(outcome("ipv6"), [Err(EntryError::Ipv6), Ok(3)]);
    }

    #[test]
    fn malformed_datagrams_pass() {
        check_message(&[]);
        check_message(&[0, 0, 0, 8, 3, 1, 0, 0]);
        check_message(&[0, 0, 0, 12, 1, 1, 0, 0, 0, 0, 0, 0]);
        let mut cut = seeds().swap_remove(3).1;
        cut[4] = 3;
        check_message(&cut);
    }
}
