//! The IPVS sync protocol v1 codec (`fastpath::sync::wire`) against golden bytes written out by
//! hand from the kernel's C structs (`struct ip_vs_sync_mesg`, `struct ip_vs_sync_v4`,
//! `ip_vs_sync_conn`'s options and padding), not produced by the encoder: each message below
//! is what a kernel IPVS master sends for the same connections. Then the decoder on malformed
//! messages (the kernel's `ip_vs_process_message` / `ip_vs_proc_sync_conn` checks), round
//! trips, and tshark's IPVS dissector reading the encoder's messages.

use std::net::Ipv4Addr;

use fastpath::sync::wire::{
    decode, EntryError, FullNatSync, MessageBuilder, MessageError, SeqData, SeqPart, SyncConn,
    CONN_F_DROUTE, CONN_F_FULLNAT, CONN_F_INACTIVE, CONN_F_IN_SEQ, CONN_F_MASQ, CONN_F_OUT_SEQ,
    CONN_F_TEMPLATE, CONN_F_TUNNEL,
};
use fastpath::sync::Full;
use proptest::prelude::*;

const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const RS: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 2);

/// TCP, NAT, ESTABLISHED (1), 192.0.2.1:40000 -> 10.0.0.100:80 -> 192.168.10.2:8080, 900 s.
fn nat_tcp() -> SyncConn {
    SyncConn {
        protocol: 6,
        flags: CONN_F_MASQ,
        state: 1,
        cport: 40000,
        vport: 80,
        dport: 8080,
        fwmark: 0,
        timeout: 900,
        caddr: CLIENT,
        vaddr: VIP,
        daddr: RS,
        seq: None,
        fullnat: None,
    }
}

/// The entry of `nat_tcp()`: 36 bytes, no options.
#[rustfmt::skip]
const NAT_TCP_ENTRY: [u8; 36] = [
    0x00, 0x06, 0x00, 0x24,             // type 0 (IPv4), protocol TCP, version 0 | size 36
    0x00, 0x00, 0x00, 0x00,             // flags: MASQ
    0x00, 0x01, 0x9c, 0x40,             // state ESTABLISHED, cport 40000
    0x00, 0x50, 0x1f, 0x90,             // vport 80, dport 8080
    0x00, 0x00, 0x00, 0x00,             // fwmark
    0x00, 0x00, 0x03, 0x84,             // timeout 900 s
    192, 0, 2, 1,                       // caddr
    10, 0, 0, 100,                      // vaddr
    192, 168, 10, 2,                    // daddr
];

/// `nat_tcp()` alone in a message of syncid 5.
#[rustfmt::skip]
const NAT_TCP_MESSAGE: [u8; 44] = [
    0x00, 0x05, 0x00, 0x2c,             // reserved 0, syncid 5, size 44
    0x01, 0x01, 0x00, 0x00,             // nr_conns 1, version 1, spare 0
    0x00, 0x06, 0x00, 0x24,
    0x00, 0x00, 0x00, 0x00,
    0x00, 0x01, 0x9c, 0x40,
    0x00, 0x50, 0x1f, 0x90,
    0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x03, 0x84,
    192, 0, 2, 1,
    10, 0, 0, 100,
    192, 168, 10, 2,
];

/// A message of the given connections, built by the encoder with a large maxlen.
fn encode(syncid: u8, conns: &[SyncConn]) -> Vec<u8> {
    let mut builder = MessageBuilder::new(syncid, 1500);
    for conn in conns {
        builder.push(conn).expect("fits in 1500 bytes");
    }
    builder.take()
}

fn decode_all(message: &[u8], filter: u8) -> Vec<Result<SyncConn, EntryError>> {
    decode(message, filter).expect("valid header").collect()
}

#[test]
fn plain_nat_tcp_entry_matches_the_kernel_layout() {
    assert_eq!(encode(5, &[nat_tcp()]), NAT_TCP_MESSAGE);
    assert_eq!(NAT_TCP_MESSAGE[8..], NAT_TCP_ENTRY);
    assert_eq!(decode_all(&NAT_TCP_MESSAGE, 5), [Ok(nat_tcp())]);
}

#[test]
fn dr_and_tun_entries_carry_the_forwarding_method_in_the_flags() {
    let dr = SyncConn {
        flags: CONN_F_DROUTE,
        ..nat_tcp()
    };
    // TUN, UDP, not established (INACTIVE), state 0, fwmark 7, 300 s.
    let tun = SyncConn {
        protocol: 17,
        flags: CONN_F_TUNNEL | CONN_F_INACTIVE,
        state: 0,
        cport: 5353,
        vport: 53,
        dport: 53,
        fwmark: 7,
        timeout: 300,
        ..nat_tcp()
    };
    #[rustfmt::skip]
    let golden: [u8; 80] = [
        0x00, 0x05, 0x00, 0x50, 0x02, 0x01, 0x00, 0x00, // size 80, 2 conns
        // DR
        0x00, 0x06, 0x00, 0x24,
        0x00, 0x00, 0x00, 0x03,             // flags: DROUTE
        0x00, 0x01, 0x9c, 0x40,
        0x00, 0x50, 0x1f, 0x90,
        0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x03, 0x84,
        192, 0, 2, 1, 10, 0, 0, 100, 192, 168, 10, 2,
        // TUN
        0x00, 0x11, 0x00, 0x24,             // UDP
        0x00, 0x00, 0x01, 0x02,             // flags: INACTIVE | TUNNEL
        0x00, 0x00, 0x14, 0xe9,             // state 0, cport 5353
        0x00, 0x35, 0x00, 0x35,             // vport 53, dport 53
        0x00, 0x00, 0x00, 0x07,             // fwmark 7
        0x00, 0x00, 0x01, 0x2c,             // timeout 300
        192, 0, 2, 1, 10, 0, 0, 100, 192, 168, 10, 2,
    ];
    assert_eq!(encode(5, &[dr, tun]), golden);
    assert_eq!(decode_all(&golden, 0), [Ok(dr), Ok(tun)]);
}

fn seq_data() -> SeqData {
    SeqData {
        in_seq: SeqPart {
            init_seq: 0x1111_1111,
            delta: 0x10,
            previous_delta: 0x08,
        },
        out_seq: SeqPart {
            init_seq: 0x2222_2222,
            delta: 0xffff_fff0,
            previous_delta: 0,
        },
    }
}

/// NAT with sequence adjustment both ways: the kernel sends SEQ_DATA.
fn nat_seq() -> SyncConn {
    SyncConn {
        flags: CONN_F_MASQ | CONN_F_IN_SEQ | CONN_F_OUT_SEQ,
        seq: Some(seq_data()),
        ..nat_tcp()
    }
}

/// The entry of `nat_seq()`: 36 + 2 + 24 = 62 bytes.
#[rustfmt::skip]
const NAT_SEQ_ENTRY: [u8; 62] = [
    0x00, 0x06, 0x00, 0x3e,             // size 62
    0x00, 0x00, 0x06, 0x00,             // flags: IN_SEQ | OUT_SEQ
    0x00, 0x01, 0x9c, 0x40,
    0x00, 0x50, 0x1f, 0x90,
    0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x03, 0x84,
    192, 0, 2, 1, 10, 0, 0, 100, 192, 168, 10, 2,
    0x01, 0x18,                         // IPVS_OPT_SEQ_DATA, 24 bytes
    0x11, 0x11, 0x11, 0x11,             // in_seq.init_seq
    0x00, 0x00, 0x00, 0x10,             // in_seq.delta
    0x00, 0x00, 0x00, 0x08,             // in_seq.previous_delta
    0x22, 0x22, 0x22, 0x22,             // out_seq.init_seq
    0xff, 0xff, 0xff, 0xf0,             // out_seq.delta
    0x00, 0x00, 0x00, 0x00,             // out_seq.previous_delta
];

#[test]
fn seq_data_option_follows_the_fixed_part() {
    let mut golden = vec![0x00, 0x05, 0x00, 0x46, 0x01, 0x01, 0x00, 0x00]; // size 70
    golden.extend_from_slice(&NAT_SEQ_ENTRY);
    // The last entry is not padded: the kernel pads before the next entry only.
    assert_eq!(golden.len(), 70);
    assert_eq!(encode(5, &[nat_seq()]), golden);
    assert_eq!(decode_all(&golden, 5), [Ok(nat_seq())]);
}

#[test]
fn padding_goes_between_entries_and_counts_in_the_message_size() {
    let mut golden = vec![0x00, 0x05, 0x00, 0x6c, 0x02, 0x01, 0x00, 0x00]; // size 108, 2 conns
    golden.extend_from_slice(&NAT_SEQ_ENTRY);
    golden.extend_from_slice(&[0x00, 0x00]); // 62 -> 64: padding, not in the entry's size
    golden.extend_from_slice(&NAT_TCP_ENTRY);
    assert_eq!(encode(5, &[nat_seq(), nat_tcp()]), golden);
    assert_eq!(decode_all(&golden, 5), [Ok(nat_seq()), Ok(nat_tcp())]);
    // The padding's content is not read.
    golden[70] = 0xee;
    golden[71] = 0xee;
    assert_eq!(decode_all(&golden, 5), [Ok(nat_seq()), Ok(nat_tcp())]);
}

#[test]
fn persistence_template_has_no_client_port_and_the_client_network() {
    // A persistent DR service with a /24 netmask: the template (state NONE) of 192.0.2.0/24.
    let template = SyncConn {
        flags: CONN_F_TEMPLATE | CONN_F_DROUTE,
        state: 0,
        cport: 0,
        caddr: Ipv4Addr::new(192, 0, 2, 0),
        timeout: 360,
        ..nat_tcp()
    };
    let conn = SyncConn {
        flags: CONN_F_DROUTE,
        ..nat_tcp()
    };
    #[rustfmt::skip]
    let golden: [u8; 80] = [
        0x00, 0x09, 0x00, 0x50, 0x02, 0x01, 0x00, 0x00, // syncid 9, size 80, 2 conns
        // the connection, then its template (as ip_vs_sync_conn sends "its controller")
        0x00, 0x06, 0x00, 0x24,
        0x00, 0x00, 0x00, 0x03,
        0x00, 0x01, 0x9c, 0x40,
        0x00, 0x50, 0x1f, 0x90,
        0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x03, 0x84,
        192, 0, 2, 1, 10, 0, 0, 100, 192, 168, 10, 2,
        0x00, 0x06, 0x00, 0x24,
        0x00, 0x00, 0x10, 0x03,             // flags: TEMPLATE | DROUTE
        0x00, 0x00, 0x00, 0x00,             // state NONE, cport 0
        0x00, 0x50, 0x1f, 0x90,
        0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x01, 0x68,             // timeout 360
        192, 0, 2, 0,                       // caddr: the client network
        10, 0, 0, 100, 192, 168, 10, 2,
    ];
    assert_eq!(encode(9, &[conn, template]), golden);
    assert_eq!(decode_all(&golden, 9), [Ok(conn), Ok(template)]);
}

#[test]
fn several_connections_in_one_message() {
    let second = SyncConn {
        cport: 40001,
        daddr: Ipv4Addr::new(192, 168, 10, 3),
        ..nat_tcp()
    };
    let third = SyncConn {
        state: 4, // FIN_WAIT
        cport: 40002,
        timeout: 120,
        ..nat_tcp()
    };
    let mut golden = vec![0x00, 0x05, 0x00, 0x74, 0x03, 0x01, 0x00, 0x00]; // size 116, 3 conns
    golden.extend_from_slice(&NAT_TCP_ENTRY);
    #[rustfmt::skip]
    golden.extend_from_slice(&[
        0x00, 0x06, 0x00, 0x24, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x01, 0x9c, 0x41,             // cport 40001
        0x00, 0x50, 0x1f, 0x90, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x84,
        192, 0, 2, 1, 10, 0, 0, 100, 192, 168, 10, 3,
        0x00, 0x06, 0x00, 0x24, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x04, 0x9c, 0x42,             // state FIN_WAIT, cport 40002
        0x00, 0x50, 0x1f, 0x90, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x78,             // timeout 120
        192, 0, 2, 1, 10, 0, 0, 100, 192, 168, 10, 2,
    ]);
    assert_eq!(encode(5, &[nat_tcp(), second, third]), golden);
    assert_eq!(
        decode_all(&golden, 5),
        [Ok(nat_tcp()), Ok(second), Ok(third)]
    );
}

fn fullnat_conn() -> SyncConn {
    SyncConn {
        flags: CONN_F_FULLNAT,
        fullnat: Some(FullNatSync {
            laddr: Ipv4Addr::new(10, 0, 0, 200),
            lport: 1025,
            client_isn: 0x0102_0304,
            delta: 0xa0b0_c0d0,
            fdata_seq: Some(0x5566_7788),
            inserted: 0,
        }),
        ..nat_tcp()
    }
}

/// The entry of `fullnat_conn()`: 36 + 2 + 22 = 60 bytes.
#[rustfmt::skip]
const FULLNAT_ENTRY: [u8; 60] = [
    0x00, 0x06, 0x00, 0x3c,             // size 60
    0x00, 0x00, 0x00, 0x05,             // flags: FULLNAT (5)
    0x00, 0x01, 0x9c, 0x40,
    0x00, 0x50, 0x1f, 0x90,
    0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x03, 0x84,
    192, 0, 2, 1, 10, 0, 0, 100, 192, 168, 10, 2,
    0x60, 0x16,                         // rvs FULLNAT (optional), 22 bytes
    0x01, 0x01,                         // version 1, flags: fdata_seq valid
    0x04, 0x01,                         // lport 1025
    10, 0, 0, 200,                      // laddr
    0x01, 0x02, 0x03, 0x04,             // client_isn
    0xa0, 0xb0, 0xc0, 0xd0,             // delta
    0x55, 0x66, 0x77, 0x88,             // fdata_seq
    0x00, 0x00,                         // inserted
];

#[test]
fn fullnat_option_layout() {
    // With SEQ_DATA too, a PROXY header of 107 bytes inserted, and no fdata_seq yet: 86 bytes,
    // SEQ_DATA first, and the next entry padded.
    let with_seq = SyncConn {
        flags: CONN_F_FULLNAT | CONN_F_IN_SEQ | CONN_F_OUT_SEQ,
        seq: Some(seq_data()),
        fullnat: Some(FullNatSync {
            laddr: Ipv4Addr::new(10, 0, 0, 201),
            lport: 65535,
            client_isn: 0xffff_ffff,
            delta: 1,
            fdata_seq: None,
            inserted: 107,
        }),
        ..nat_tcp()
    };
    let mut golden = vec![0x00, 0x05, 0x00, 0xc0, 0x03, 0x01, 0x00, 0x00]; // size 192, 3 conns
    golden.extend_from_slice(&FULLNAT_ENTRY);
    #[rustfmt::skip]
    golden.extend_from_slice(&[
        0x00, 0x06, 0x00, 0x56,             // size 86
        0x00, 0x00, 0x06, 0x05,             // flags: IN_SEQ | OUT_SEQ | FULLNAT
        0x00, 0x01, 0x9c, 0x40, 0x00, 0x50, 0x1f, 0x90, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x03, 0x84, 192, 0, 2, 1, 10, 0, 0, 100, 192, 168, 10, 2,
        0x01, 0x18,
        0x11, 0x11, 0x11, 0x11, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x08,
        0x22, 0x22, 0x22, 0x22, 0xff, 0xff, 0xff, 0xf0, 0x00, 0x00, 0x00, 0x00,
        0x60, 0x16,
        0x01, 0x00,                         // version 1, fdata_seq not valid
        0xff, 0xff,                         // lport 65535
        10, 0, 0, 201,
        0xff, 0xff, 0xff, 0xff,             // client_isn
        0x00, 0x00, 0x00, 0x01,             // delta
        0x00, 0x00, 0x00, 0x00,             // fdata_seq (none)
        0x00, 0x6b,                         // inserted 107
        0x00, 0x00,                         // padding 86 -> 88
    ]);
    golden.extend_from_slice(&NAT_TCP_ENTRY);
    assert_eq!(golden.len(), 192);
    assert_eq!(encode(5, &[fullnat_conn(), with_seq, nat_tcp()]), golden);
    assert_eq!(
        decode_all(&golden, 5),
        [Ok(fullnat_conn()), Ok(with_seq), Ok(nat_tcp())]
    );
}

#[test]
fn fullnat_option_of_another_version_is_skipped() {
    let mut message = vec![0x00, 0x05, 0x00, 0x48, 0x01, 0x01, 0x00, 0x00]; // size 72
    message.extend_from_slice(&FULLNAT_ENTRY);
    message[8 + 3] = 0x40; // entry size 64
    message[8 + 37] = 0x1a; // option length 26
    message[8 + 38] = 0x02; // version 2 ...
    message.extend_from_slice(&[0xaa; 4]); // ... with 4 more bytes
    let expected = SyncConn {
        fullnat: None,
        ..fullnat_conn()
    };
    assert_eq!(decode_all(&message, 5), [Ok(expected)]);
}

#[test]
fn fullnat_option_version_1_of_another_length_ends_the_message() {
    let mut message = vec![0x00, 0x05, 0x00, 0x48, 0x02, 0x01, 0x00, 0x00]; // size 72, 2 conns
    message.extend_from_slice(&FULLNAT_ENTRY);
    message[8 + 3] = 0x40; // entry size 64
    message[8 + 37] = 0x1a; // option length 26, version 1
    message.extend_from_slice(&[0xaa; 4]);
    message[3] = 0x6c; // and a second entry: size 108
    message.extend_from_slice(&NAT_TCP_ENTRY);
    assert_eq!(
        decode_all(&message, 5),
        [Err(EntryError::BadOptionLength(0x60))]
    );
}

#[test]
fn builder_splits_at_maxlen_counting_padding() {
    // 8 + 62 + 2 (padding) + 36 = 108 bytes.
    for (maxlen, fits) in [(107, false), (108, true)] {
        let mut builder = MessageBuilder::new(5, maxlen);
        assert_eq!(builder.push(&nat_seq()), Ok(()));
        let second = builder.push(&nat_tcp());
        assert_eq!(second.is_ok(), fits, "maxlen {maxlen}");
        assert_eq!(builder.len(), if fits { 2 } else { 1 });
    }
    // A sync thread's loop: push, send when full, push again; 10 plain connections with
    // maxlen 116 go 3 + 3 + 3 + 1.
    let conns: Vec<SyncConn> = (0..10u16)
        .map(|i| SyncConn {
            cport: 50000 + i,
            ..nat_tcp()
        })
        .collect();
    let mut builder = MessageBuilder::new(5, 116);
    let mut messages = Vec::new();
    for conn in &conns {
        if builder.push(conn) == Err(Full) {
            messages.push(builder.take());
            builder.push(conn).expect("fits in an empty message");
        }
    }
    messages.push(builder.take());
    let sizes: Vec<usize> = messages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [116, 116, 116, 44]);
    assert_eq!(messages[3][..8], [0, 5, 0, 44, 1, 1, 0, 0]);
    let decoded: Vec<SyncConn> = messages
        .iter()
        .flat_map(|m| decode_all(m, 5))
        .map(|c| c.expect("valid entry"))
        .collect();
    assert_eq!(decoded, conns);
}

#[test]
fn zero_copy_use_of_the_builder() {
    let mut builder = MessageBuilder::new(5, 1500);
    builder.push(&nat_tcp()).expect("fits");
    assert_eq!(builder.as_bytes(), NAT_TCP_MESSAGE);
    builder.clear();
    assert_eq!(builder.as_bytes(), [0, 5, 0, 8, 0, 1, 0, 0]);
    builder.push(&nat_tcp()).expect("fits");
    assert_eq!(builder.as_bytes(), NAT_TCP_MESSAGE);
}

#[test]
fn short_datagrams_are_refused() {
    for short in [&[][..], &[0], &[0, 5, 0]] {
        assert_eq!(
            decode(short, 0).err(),
            Some(MessageError::Short),
            "{short:?}"
        );
    }
    // Size matches, but no room for the version 1 header.
    assert_eq!(decode(&[0, 5, 0, 4], 0).err(), Some(MessageError::Short));
    assert_eq!(
        decode(&[0, 5, 0, 6, 0, 1], 0).err(),
        Some(MessageError::Short)
    );
}

#[test]
fn size_field_must_be_the_datagram_length() {
    let mut message = NAT_TCP_MESSAGE;
    message[3] = 45;
    assert_eq!(
        decode(&message, 5).err(),
        Some(MessageError::BadSize { size: 45, len: 44 })
    );
    message[3] = 43;
    assert_eq!(
        decode(&message, 5).err(),
        Some(MessageError::BadSize { size: 43, len: 44 })
    );
    // A datagram with bytes after the message (size 44 of 46).
    let mut longer = NAT_TCP_MESSAGE.to_vec();
    longer.extend_from_slice(&[0, 0]);
    assert_eq!(
        decode(&longer, 5).err(),
        Some(MessageError::BadSize { size: 44, len: 46 })
    );
    // The kernel checks the size before the syncid.
    message[1] = 6;
    assert_eq!(
        decode(&message, 5).err(),
        Some(MessageError::BadSize { size: 43, len: 44 })
    );
}

#[test]
fn version_0_and_other_versions_are_refused() {
    // Version 0: nr_conns 1, syncid 5, size 24 (4-byte header + one 20-byte entry).
    let mut v0 = vec![0x01, 0x05, 0x00, 0x18];
    v0.extend_from_slice(&[0; 20]);
    assert_eq!(decode(&v0, 0).err(), Some(MessageError::V0Message));
    let mut message = NAT_TCP_MESSAGE;
    message[5] = 2;
    assert_eq!(decode(&message, 5).err(), Some(MessageError::BadVersion(2)));
    message[5] = 0;
    assert_eq!(decode(&message, 5).err(), Some(MessageError::BadVersion(0)));
    let mut message = NAT_TCP_MESSAGE;
    message[7] = 1;
    assert_eq!(decode(&message, 5).err(), Some(MessageError::BadSpare(1)));
}

#[test]
fn syncid_filter() {
    assert_eq!(
        decode(&NAT_TCP_MESSAGE, 6).err(),
        Some(MessageError::SyncIdMismatch(5))
    );
    assert_eq!(decode_all(&NAT_TCP_MESSAGE, 5), [Ok(nat_tcp())]);
    // Filter 0 accepts every syncid, 0 included.
    for syncid in [0, 1, 5, 255] {
        let mut message = NAT_TCP_MESSAGE;
        message[1] = syncid;
        let entries = decode(&message, 0).expect("accepted");
        assert_eq!(entries.syncid(), syncid);
        assert_eq!(entries.collect::<Vec<_>>(), [Ok(nat_tcp())]);
    }
}

/// A message of syncid 5 whose header says `nr_conns` and whose body is `body`.
fn message(nr_conns: u8, body: &[u8]) -> Vec<u8> {
    let size = u16::try_from(8 + body.len()).expect("small");
    let mut message = vec![0, 5];
    message.extend_from_slice(&size.to_be_bytes());
    message.extend_from_slice(&[nr_conns, 1, 0, 0]);
    message.extend_from_slice(body);
    message
}

/// `NAT_TCP_ENTRY` with `options` after the fixed part and the size counting them.
fn entry_with_options(options: &[u8]) -> Vec<u8> {
    let mut entry = NAT_TCP_ENTRY.to_vec();
    entry.extend_from_slice(options);
    let size = u16::try_from(entry.len()).expect("small");
    entry[2..4].copy_from_slice(&size.to_be_bytes());
    entry
}

#[test]
fn truncated_entries_end_the_message() {
    // nr_conns 2, one entry.
    assert_eq!(
        decode_all(&message(2, &NAT_TCP_ENTRY), 0),
        [Ok(nat_tcp()), Err(EntryError::Truncated)]
    );
    // Fewer than 36 bytes left.
    assert_eq!(
        decode_all(&message(1, &NAT_TCP_ENTRY[..35]), 0),
        [Err(EntryError::Truncated)]
    );
    // The entry's size (48) runs past the datagram.
    let mut body = NAT_TCP_ENTRY.to_vec();
    body[3] = 48;
    body.extend_from_slice(&[0x45, 2, 0, 0]);
    assert_eq!(
        decode_all(&message(1, &body), 0),
        [Err(EntryError::Truncated)]
    );
    // The padding of a 62-byte entry is part of the message: the next one starts at 64.
    let mut body = NAT_SEQ_ENTRY.to_vec();
    // Without the 2 bytes of padding, the next entry is read 2 bytes into it: its size field
    // is then NAT_TCP_ENTRY's flags, 0.
    body.extend_from_slice(&NAT_TCP_ENTRY);
    body.extend_from_slice(&[0, 0]);
    assert_eq!(
        decode_all(&message(2, &body), 0),
        [Ok(nat_seq()), Err(EntryError::BadEntrySize(0))]
    );
}

#[test]
fn bad_entry_version_size_or_type_end_the_message() {
    let two = |first: &[u8]| {
        let mut body = first.to_vec();
        body.extend_from_slice(&NAT_TCP_ENTRY);
        decode_all(&message(2, &body), 0)
    };
    let mut entry = NAT_TCP_ENTRY;
    entry[2] = 0x10; // version 1
    assert_eq!(two(&entry), [Err(EntryError::BadEntryVersion(1))]);
    let mut entry = NAT_TCP_ENTRY;
    entry[3] = 32; // size 32 < 36
    let mut body = entry.to_vec();
    body.extend_from_slice(&NAT_TCP_ENTRY);
    assert_eq!(
        decode_all(&message(2, &body), 0),
        [Err(EntryError::BadEntrySize(32))]
    );
    let mut entry = NAT_TCP_ENTRY;
    entry[0] = 2; // neither IPv4 nor IPv6
    assert_eq!(two(&entry), [Err(EntryError::BadType(2))]);
}

#[test]
fn ipv6_entry_is_an_entry_error_and_the_rest_is_read() {
    #[rustfmt::skip]
    let mut body = vec![
        0x01, 0x06, 0x00, 0x48,             // type IPv6, TCP, size 72
        0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x9c, 0x40, 0x00, 0x50, 0x1f, 0x90,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x84,
    ];
    body.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    body.extend_from_slice(&[0; 44]);
    assert_eq!(body.len(), 72);
    body.extend_from_slice(&NAT_TCP_ENTRY);
    assert_eq!(
        decode_all(&message(2, &body), 0),
        [Err(EntryError::Ipv6), Ok(nat_tcp())]
    );
    // An IPv6 entry shorter than 72 bytes is malformed.
    let mut short = body[..72].to_vec();
    short[3] = 40;
    short.truncate(40);
    short.extend_from_slice(&NAT_TCP_ENTRY);
    assert_eq!(
        decode_all(&message(2, &short), 0),
        [Err(EntryError::BadEntrySize(40))]
    );
}

#[test]
fn unknown_mandatory_option_drops_that_entry_only() {
    let mut body = entry_with_options(&[0x05, 0x02, 0xab, 0xcd]); // 40 bytes
    body.extend_from_slice(&NAT_TCP_ENTRY);
    assert_eq!(
        decode_all(&message(2, &body), 0),
        [Err(EntryError::UnknownMandatoryOption(5)), Ok(nat_tcp())]
    );
    // 0x20 without the optional bit is not rvs's FULLNAT option.
    let mut body = entry_with_options(&[0x20, 0x02, 0x01, 0x00]);
    body.extend_from_slice(&NAT_TCP_ENTRY);
    assert_eq!(
        decode_all(&message(2, &body), 0),
        [Err(EntryError::UnknownMandatoryOption(0x20)), Ok(nat_tcp())]
    );
}

#[test]
fn unknown_optional_option_is_skipped() {
    let mut body = entry_with_options(&[0x45, 0x02, 0xab, 0xcd, 0x7f, 0x01, 0xee]);
    body.push(0); // 43 -> 44
    body.extend_from_slice(&NAT_TCP_ENTRY);
    assert_eq!(
        decode_all(&message(2, &body), 0),
        [Ok(nat_tcp()), Ok(nat_tcp())]
    );
}

#[test]
fn option_running_past_the_entry_ends_the_message() {
    // Option length 10 with 2 bytes left in the entry (the next entry's bytes follow).
    let mut body = entry_with_options(&[0x45, 0x0a, 0xab, 0xcd]);
    body.extend_from_slice(&NAT_TCP_ENTRY);
    assert_eq!(
        decode_all(&message(2, &body), 0),
        [Err(EntryError::BadOptionLength(0x45))]
    );
    // An option of length 0, and a type byte with no length byte.
    for options in [&[0x45, 0x00][..], &[0x45]] {
        let mut body = entry_with_options(options);
        body.resize(40, 0);
        body.extend_from_slice(&NAT_TCP_ENTRY);
        assert_eq!(
            decode_all(&message(2, &body), 0),
            [Err(EntryError::BadOptionLength(0x45))],
            "{options:?}"
        );
    }
}

#[test]
fn known_options_of_bad_length_or_twice_end_the_message() {
    let seq_option = &NAT_SEQ_ENTRY[36..];
    let mut short_seq = seq_option[..22].to_vec();
    short_seq[1] = 20;
    let mut twice = seq_option.to_vec();
    twice.extend_from_slice(seq_option);
    let long_name = {
        let mut name = vec![0x03, 17];
        name.extend_from_slice(&[b'a'; 17]);
        name
    };
    let cases: [(&[u8], EntryError); 4] = [
        (&short_seq, EntryError::BadOptionLength(1)),
        (&twice, EntryError::DuplicateOption(1)),
        (&long_name, EntryError::BadOptionLength(3)),
        (
            &[0x03, 0x03, b's', b'i', b'p', 0x03, 0x03, b's', b'i', b'p'],
            EntryError::DuplicateOption(3),
        ),
    ];
    for (options, error) in cases {
        let mut body = entry_with_options(options);
        body.resize((body.len() + 3) & !3, 0);
        body.extend_from_slice(&NAT_TCP_ENTRY);
        assert_eq!(decode_all(&message(2, &body), 0), [Err(error)], "{error}");
    }
}

#[test]
fn optional_bit_on_a_known_option_is_masked_as_the_kernel_does() {
    let mut options = NAT_SEQ_ENTRY[36..].to_vec();
    options[0] = 0x41;
    let mut body = entry_with_options(&options);
    body[4..8].copy_from_slice(&NAT_SEQ_ENTRY[4..8]);
    assert_eq!(decode_all(&message(1, &body), 0), [Ok(nat_seq())]);
}

#[test]
fn persistence_engine_data_drops_that_entry_only() {
    // SIP persistence: PE_DATA (a callid) and PE_NAME "sip"; rvs has no engine.
    let mut body = entry_with_options(&[
        0x02, 0x04, b'c', b'a', b'l', b'l', 0x03, 0x03, b's', b'i', b'p',
    ]);
    body.push(0); // 47 -> 48
    body.extend_from_slice(&NAT_TCP_ENTRY);
    assert_eq!(
        decode_all(&message(2, &body), 0),
        [Err(EntryError::PersistenceEngine), Ok(nat_tcp())]
    );
    // A name without data is ignored, as the kernel ignores it.
    let body = entry_with_options(&[0x03, 0x02, b'x', b'y']);
    assert_eq!(decode_all(&message(1, &body), 0), [Ok(nat_tcp())]);
}

#[test]
fn bytes_after_nr_conns_entries_are_ignored() {
    let mut body = NAT_TCP_ENTRY.to_vec();
    body.extend_from_slice(&NAT_TCP_ENTRY);
    assert_eq!(decode_all(&message(1, &body), 0), [Ok(nat_tcp())]);
    assert!(decode_all(&message(0, &body), 0).is_empty());
}

fn any_conn() -> impl Strategy<Value = SyncConn> {
    let addr = any::<u32>().prop_map(Ipv4Addr::from);
    let part = (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(a, b, c)| SeqPart {
        init_seq: a,
        delta: b,
        previous_delta: c,
    });
    let seq = proptest::option::of(
        (part.clone(), part).prop_map(|(in_seq, out_seq)| SeqData { in_seq, out_seq }),
    );
    let fullnat = proptest::option::of(
        (
            addr.clone(),
            any::<u16>(),
            any::<u32>(),
            any::<u32>(),
            proptest::option::of(any::<u32>()),
            any::<u16>(),
        )
            .prop_map(|(laddr, lport, client_isn, delta, fdata_seq, inserted)| {
                FullNatSync {
                    laddr,
                    lport,
                    client_isn,
                    delta,
                    fdata_seq,
                    inserted,
                }
            }),
    );
    (
        (any::<u8>(), any::<u32>(), any::<u16>()),
        (any::<u16>(), any::<u16>(), any::<u16>()),
        (any::<u32>(), any::<u32>()),
        (addr.clone(), addr.clone(), addr),
        (seq, fullnat),
    )
        .prop_map(
            |(
                (protocol, flags, state),
                (cport, vport, dport),
                (fwmark, timeout),
                (caddr, vaddr, daddr),
                (seq, fullnat),
            )| SyncConn {
                protocol,
                flags,
                state,
                cport,
                vport,
                dport,
                fwmark,
                timeout,
                caddr,
                vaddr,
                daddr,
                seq,
                fullnat,
            },
        )
}

proptest! {
    #[test]
    fn round_trip_through_split_messages(
        conns in proptest::collection::vec(any_conn(), 0..40),
        syncid in any::<u8>(),
        maxlen in 0usize..600,
    ) {
        let mut builder = MessageBuilder::new(syncid, maxlen);
        let mut messages = Vec::new();
        for conn in &conns {
            if builder.push(conn).is_err() {
                prop_assert!(!builder.is_empty());
                messages.push(builder.take());
                prop_assert_eq!(builder.push(conn), Ok(()));
            }
        }
        if !builder.is_empty() {
            messages.push(builder.take());
        }
        let mut decoded = Vec::new();
        for message in &messages {
            prop_assert!(message.len() <= builder.maxlen());
            let entries = decode(message, syncid).expect("valid header");
            prop_assert_eq!(entries.syncid(), syncid);
            for entry in entries {
                decoded.push(entry.expect("valid entry"));
            }
        }
        prop_assert_eq!(decoded, conns);
    }
}

proptest! {
    /// Damaged messages (bytes after the size field overwritten): at most `nr_conns` entries,
    /// none after one that ends the message, and what decodes encodes and decodes back.
    #[test]
    fn damaged_messages_decode_within_their_bounds(
        conns in proptest::collection::vec(any_conn(), 1..6),
        damage in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
    ) {
        let mut message = encode(5, &conns);
        for (at, byte) in damage {
            let at = 4 + at % (message.len() - 4);
            message[at] = byte;
        }
        let Ok(entries) = decode(&message, 0) else {
            return Ok(());
        };
        let nr_conns = usize::from(entries.nr_conns());
        let all: Vec<_> = entries.collect();
        prop_assert!(all.len() <= nr_conns);
        if let Some(fatal) = all.iter().position(|e| e.as_ref().is_err_and(EntryError::ends_message)) {
            prop_assert_eq!(fatal + 1, all.len());
        }
        let good: Vec<SyncConn> = all.into_iter().filter_map(Result::ok).collect();
        let again = encode(5, &good);
        prop_assert_eq!(decode_all(&again, 5), good.into_iter().map(Ok).collect::<Vec<_>>());
    }
}

/// tshark (Debian's 4.0 reads version 1 messages) dissects encoder messages sent as a kernel
/// master sends them, with the fields the encoder wrote.
///
/// tshark 4.0's dissector steps a fixed 36 bytes per version 1 entry: it reads neither an
/// entry's size nor its options, so it misreads every entry after one with options (checked:
/// after a SEQ_DATA entry it shows the options' bytes as the next connection). So the first
/// message has no options, and of the second (a SEQ_DATA entry, padding, a FULLNAT entry) only
/// the header and the first entry's fixed part are compared.
#[test]
fn tshark_decodes_encoder_messages() {
    let tshark = std::path::Path::new("/usr/bin/tshark");
    if !tshark.exists() {
        println!("skipped: /usr/bin/tshark is not installed");
        return;
    }
    let dr = SyncConn {
        flags: CONN_F_DROUTE | CONN_F_INACTIVE,
        state: 3,
        cport: 40001,
        timeout: 60,
        ..nat_tcp()
    };
    let udp = SyncConn {
        protocol: 17,
        flags: CONN_F_TUNNEL,
        state: 0,
        cport: 5353,
        vport: 53,
        dport: 53,
        fwmark: 7,
        timeout: 300,
        caddr: Ipv4Addr::new(198, 51, 100, 7),
        ..nat_tcp()
    };
    assert_eq!(
        tshark_fields(tshark, &encode(42, &[nat_tcp(), dr, udp]), "a"),
        [
            "42",
            "3",
            "116",
            "1",
            "0x06,0x06,0x11",
            "0x00000000,0x00000103,0x00000002",
            "0x0001,0x0003,0x0000",
            "40000,40001,5353",
            "80,80,53",
            "8080,8080,53",
            "0x00000000,0x00000000,0x00000007",
            "900,60,300",
            "192.0.2.1,192.0.2.1,198.51.100.7",
            "10.0.0.100,10.0.0.100,10.0.0.100",
            "192.168.10.2,192.168.10.2,192.168.10.2",
        ]
        .join(";")
    );
    assert_eq!(
        tshark_fields(tshark, &encode(255, &[nat_seq(), fullnat_conn()]), "f"),
        [
            "255",
            "2",
            "132",
            "1",
            "0x06",
            "0x00000600",
            "0x0001",
            "40000",
            "80",
            "8080",
            "0x00000000",
            "900",
            "192.0.2.1",
            "10.0.0.100",
            "192.168.10.2",
        ]
        .join(";")
    );
}

/// tshark's reading of `message` in a pcap: the header's and entries' fields, `;` between
/// fields, `,` between entries (`occurrence` "a": all entries, "f": the first).
fn tshark_fields(tshark: &std::path::Path, message: &[u8], occurrence: &str) -> String {
    let path = std::env::temp_dir().join(format!("rvs-sync-wire-a-{}.pcap", std::process::id()));
    std::fs::write(&path, pcap_of_udp_to_sync_group(message)).expect("write pcap");
    let fields = [
        "ipvs.syncid",
        "ipvs.conncount",
        "ipvs.size",
        "ipvs.version",
        "ipvs.proto",
        "ipvs.flags.v1",
        "ipvs.state",
        "ipvs.cport",
        "ipvs.vport",
        "ipvs.dport",
        "ipvs.fwmark",
        "ipvs.timeout",
        "ipvs.caddr",
        "ipvs.vaddr",
        "ipvs.daddr",
    ];
    let mut command = std::process::Command::new(tshark);
    command.args(["-n", "-r"]).arg(&path).args([
        "-d",
        "udp.port==8848,ipvs",
        "-T",
        "fields",
        "-E",
        "separator=;",
        "-E",
        &format!("occurrence={occurrence}"),
        "-E",
        "aggregator=,",
    ]);
    for field in fields {
        command.args(["-e", field]);
    }
    let output = command.output();
    let _ = std::fs::remove_file(&path);
    let output = output.expect("run tshark");
    assert!(
        output.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .trim_end()
        .to_owned()
}

/// A pcap file (libpcap format, Ethernet) of one frame: IPv4/UDP from 10.0.0.1:40000 to
/// 224.0.0.81:8848, TTL 1, carrying `payload`.
fn pcap_of_udp_to_sync_group(payload: &[u8]) -> Vec<u8> {
    let udp_len = u16::try_from(8 + payload.len()).expect("small");
    let ip_len = 20 + udp_len;
    let mut ip = vec![0x45, 0x00];
    ip.extend_from_slice(&ip_len.to_be_bytes());
    ip.extend_from_slice(&[0, 0, 0, 0, 1, 17, 0, 0]); // id 0, no DF, TTL 1, UDP, checksum
    ip.extend_from_slice(&[10, 0, 0, 1, 224, 0, 0, 81]);
    let sum = ip
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum::<u32>();
    let sum = (sum & 0xffff) + (sum >> 16);
    let checksum = !((sum & 0xffff) + (sum >> 16)) as u16;
    ip[10..12].copy_from_slice(&checksum.to_be_bytes());
    ip.extend_from_slice(&40000u16.to_be_bytes());
    ip.extend_from_slice(&8848u16.to_be_bytes());
    ip.extend_from_slice(&udp_len.to_be_bytes());
    ip.extend_from_slice(&[0, 0]); // no UDP checksum
    ip.extend_from_slice(payload);
    // 01:00:5e + the group's low 23 bits; a locally administered source.
    let mut frame = vec![
        0x01, 0x00, 0x5e, 0x00, 0x00, 0x51, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00,
    ];
    frame.extend_from_slice(&ip);
    let frame_len = u32::try_from(frame.len()).expect("small");
    let mut pcap = Vec::new();
    pcap.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes()); // magic, microseconds
    pcap.extend_from_slice(&2u16.to_le_bytes()); // version 2.4
    pcap.extend_from_slice(&4u16.to_le_bytes());
    pcap.extend_from_slice(&0i32.to_le_bytes()); // thiszone
    pcap.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
    pcap.extend_from_slice(&65535u32.to_le_bytes()); // snaplen
    pcap.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
    pcap.extend_from_slice(&1_796_000_000u32.to_le_bytes()); // ts_sec
    pcap.extend_from_slice(&0u32.to_le_bytes()); // ts_usec
    pcap.extend_from_slice(&frame_len.to_le_bytes()); // incl_len
    pcap.extend_from_slice(&frame_len.to_le_bytes()); // orig_len
    pcap.extend_from_slice(&frame);
    pcap
}
