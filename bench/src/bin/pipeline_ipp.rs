//! The workload `dataplane_bench` runs under callgrind to count instructions per packet:
//! rvs's pipeline (`Pipeline::packet`, pure Rust, no DPDK) on prebuilt frames of the
//! benchmark network (`bench::lab`), on one worker.
//!
//! - `--case established`: every one of `--flows` flows is first opened (its SYN, then one
//!   ACK, so the connection is ESTABLISHED); the measured loop then sends `--packets` ACKs
//!   cycling over the flows: connection lookup hit, state update, counters, rewrite, route,
//!   neighbour.
//! - `--case new`: the measured loop sends `--packets` distinct SYNs, each scheduled (wlc
//!   over 4 real servers) and inserted as a new connection, then rewritten.
//!
//! The pipeline rewrites frames in place (TTL, and for NAT addresses, ports and checksums; TUN
//! prepends its outer headers), so each packet is first copied from its prebuilt frame into
//! one reusable buffer, at a fresh frame's offset. With
//! `--baseline` the loop only does that copy, so that the difference between the two runs is
//! the pipeline alone. Everything before the loop (building frames, opening flows, checking
//! one forwarded frame) is the same with and without `--baseline` and for any `--packets`
//! not above the number of frames, so it cancels when runs of two lengths are subtracted.
//!
//! With `--burst N` the frames go through in bursts of N as in a worker: each burst is first
//! passed to `Pipeline::prefetch`, then to `Pipeline::packet_parsed`. The instruction counts of
//! `dataplane_bench` use one frame at a time; timing both (natively, not under callgrind) with
//! many flows shows what the prefetch saves in cache misses, e.g.
//! `time pipeline_ipp --mode nat --case established --packets 20000000 --burst 32`.
//!
//! Run it alone with e.g. `pipeline_ipp --mode nat --case established --packets 1000000`.
//! Cache misses of the connection table per packet (what instruction counts do not show):
//! run it with `--shuffle` (flows in a random order, as on a link, rather than in the order
//! of their table entries) under `valgrind --tool=cachegrind --cache-sim=yes
//! --LL=8388608,16,64` for two `--packets` and subtract, as for instructions.

use bench::lab::{self, Mode, Packet, PORT0_MAC, PORT1_MAC};
use clap::Parser;
use fastpath::frame::{Frame, VecFrame};
use fastpath::pipeline::{Parsed, Pipeline};
use fastpath::snapshot::Snapshot;
use fastpath::verdict::Verdict;
use std::hint::black_box;
use std::process::ExitCode;

/// Room for every frame (IPv4 frames are 60 bytes, NAT66's 80) and a tunnel's headers.
const BUF_LEN: usize = 128;
/// The clock for every packet, ms.
const NOW: u64 = 1000;
/// The verdict of every forwarded packet: out of the port towards the real servers.
const TO_REALS: Verdict = Verdict::Tx { port: 1 };
/// A flow outside every measured range, for the check of one forwarded frame.
const CHECK_FLOW: u32 = 1 << 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Case {
    /// ACKs of open connections.
    Established,
    /// SYNs of new connections.
    New,
}

/// rvs pipeline workload for callgrind.
#[derive(Parser, Debug)]
struct Args {
    /// Forwarding method of the real servers.
    #[arg(long, value_enum)]
    mode: Mode,
    /// Which packets.
    #[arg(long, value_enum)]
    case: Case,
    /// Open flows the ACKs cycle over (`established`).
    #[arg(long, default_value_t = 100_000)]
    flows: u32,
    /// Packets through the measured loop.
    #[arg(long)]
    packets: u32,
    /// Only copy the frames, do not process them.
    #[arg(long)]
    baseline: bool,
    /// Connection table entries.
    #[arg(long, default_value_t = 1 << 20)]
    conn_table_size: u32,
    /// Process the frames in bursts of this many, each first passed to
    /// `Pipeline::prefetch` as the worker does (1: one at a time, no prefetch).
    #[arg(long, default_value_t = 1)]
    burst: usize,
    /// `established`: send the ACKs in a fixed pseudo-random order of the flows instead of
    /// the order they were opened in (which is the order of their table entries, so that
    /// neighbouring packets share cache lines as real traffic does not).
    #[arg(long)]
    shuffle: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(sent) => {
            println!("{} packets, {sent} sent to the real servers", args.packets);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pipeline_ipp: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<u64, String> {
    let config = lab::config(args.mode, args.conn_table_size);
    let snapshot =
        Snapshot::build(&config, &[PORT0_MAC, PORT1_MAC], None, 1).map_err(|e| e.to_string())?;
    let mut pipeline =
        Pipeline::new(0, 1, args.conn_table_size, &snapshot, NOW).map_err(|e| e.to_string())?;
    let mut buf = VecFrame::new([0; BUF_LEN]);
    let mut send = |pipeline: &mut Pipeline, frame: &[u8]| -> Result<Vec<u8>, String> {
        buf.reset(frame);
        match pipeline.packet(&snapshot, 0, &mut buf, NOW) {
            TO_REALS => Ok(buf.data().to_vec()),
            other => Err(format!("expected {TO_REALS:?}, got {other:?}")),
        }
    };

    // One flow through both packets, output checked against an independent parser.
    for kind in [Packet::Syn, Packet::Ack] {
        let input = lab::frame_of(args.mode, kind, CHECK_FLOW);
        let out = send(&mut pipeline, &input)?;
        lab::check_forwarded(args.mode, &input, &out)
            .map_err(|e| format!("{kind:?} forwarded wrongly: {e}"))?;
    }
    let frames: Vec<Vec<u8>> = match args.case {
        Case::Established => {
            for flow in 0..args.flows {
                send(&mut pipeline, &lab::frame_of(args.mode, Packet::Syn, flow))?;
                send(&mut pipeline, &lab::frame_of(args.mode, Packet::Ack, flow))?;
            }
            let mut frames: Vec<Vec<u8>> = (0..args.flows)
                .map(|flow| lab::frame_of(args.mode, Packet::Ack, flow))
                .collect();
            if args.shuffle {
                shuffle(&mut frames);
            }
            frames
        }
        Case::New => (0..args.packets)
            .map(|flow| lab::frame_of(args.mode, Packet::Syn, flow))
            .collect(),
    };
    if frames.is_empty() {
        return Err("no frames".into());
    }
    let mut buf = VecFrame::new([0; BUF_LEN]);
    if args.baseline {
        Ok(copy_only(&frames, args.packets, &mut buf))
    } else {
        let sent = if args.burst > 1 {
            let mut bufs = vec![VecFrame::new([0; BUF_LEN]); args.burst];
            process_bursts(&mut pipeline, &snapshot, &frames, args.packets, &mut bufs)
        } else {
            process(&mut pipeline, &snapshot, &frames, args.packets, &mut buf)
        };
        if sent != u64::from(args.packets) {
            return Err(format!(
                "only {sent} of {} packets were sent to the real servers",
                args.packets
            ));
        }
        Ok(sent)
    }
}

/// Fisher-Yates with a fixed-seed LCG (Knuth's MMIX constants): the same order on every run,
/// so that runs of two lengths and two builds see the same packets.
fn shuffle<T>(items: &mut [T]) {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in (1..items.len()).rev() {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        // The high bits of an LCG are the random ones; the modulo bias is irrelevant here.
        items.swap(i, (x >> 33) as usize % (i + 1));
    }
}

/// The measured loop: copy each frame into `buf`, run the pipeline on it.
#[inline(never)]
fn process(
    pipeline: &mut Pipeline,
    snapshot: &Snapshot,
    frames: &[Vec<u8>],
    packets: u32,
    buf: &mut VecFrame,
) -> u64 {
    let mut sent = 0;
    for i in 0..packets as usize {
        buf.reset(&frames[i % frames.len()]);
        sent += u64::from(pipeline.packet(snapshot, 0, buf, NOW) == TO_REALS);
    }
    sent
}

/// The measured loop in bursts of `bufs.len()`: copy a burst, prefetch it, process it.
#[inline(never)]
fn process_bursts(
    pipeline: &mut Pipeline,
    snapshot: &Snapshot,
    frames: &[Vec<u8>],
    packets: u32,
    bufs: &mut [VecFrame],
) -> u64 {
    let mut sent = 0;
    let mut next = 0;
    let mut parsed = vec![Parsed::default(); bufs.len()];
    while next < packets as usize {
        let n = bufs.len().min(packets as usize - next);
        for (k, buf) in bufs[..n].iter_mut().enumerate() {
            buf.reset(&frames[(next + k) % frames.len()]);
        }
        for (buf, p) in bufs[..n].iter().zip(parsed.iter_mut()) {
            *p = pipeline.prefetch(snapshot, 0, buf.data());
        }
        for p in parsed[..n].iter_mut() {
            pipeline.candidate(p);
        }
        for (buf, p) in bufs[..n].iter_mut().zip(&parsed) {
            let verdict = pipeline.packet_parsed(snapshot, 0, buf, NOW, p);
            sent += u64::from(verdict == TO_REALS);
        }
        next += n;
    }
    sent
}

/// The baseline loop: the same copies, no pipeline.
#[inline(never)]
fn copy_only(frames: &[Vec<u8>], packets: u32, buf: &mut VecFrame) -> u64 {
    let mut copied = 0;
    for i in 0..packets as usize {
        buf.reset(&frames[i % frames.len()]);
        copied += u64::from(!black_box(buf.data()).is_empty());
    }
    copied
}
