//! Connection states, the IPVS TCP state tables and the per-state timeouts.
//!
//! Behaviour follows `ip_vs_proto_tcp.c` / `ip_vs_proto_udp.c` as described in
//! `ipvs-spec.md` §2 (kernel ≥ 3.10 tables, `secure_tcp` off):
//!
//! - The row of a segment is chosen by its flags with priority RST > SYN > FIN > ACK; a
//!   segment with none of the four (only PSH, URG, ECE, CWR, or nothing) moves the connection
//!   to CLOSE whatever its state.
//! - Client → balancer packets use the INPUT table, real server → client packets the OUTPUT
//!   table. A connection that has never seen an OUTPUT packet and whose forwarding method
//!   hides the replies (DR, TUN: `IP_VS_CONN_F_NOOUTPUT`) uses INPUT_ONLY instead of INPUT; its
//!   first OUTPUT packet clears that for good. [`tcp_next`] is the pure table walk.
//! - Only ESTABLISHED counts as active; every other state, and UDP, counts as inactive
//!   ([`Move`] says when a change crosses that line, so the caller moves the connection between
//!   the real server's ActiveConn and InActConn exactly when the kernel does).
//! - Every packet re-arms the connection for the timeout of the state it is left in
//!   ([`Timeouts`]); a new connection starts in NONE (UDP: in UDP) with
//!   [`NEW_CONN_TIMEOUT`], and its first packet moves it on at once.

use crate::wire::tcp::Flags;

/// State of a connection: the eleven TCP states in the kernel's numbering, then UDP's single
/// state. Persistence templates stay in [`State::None`], as the kernel lists them.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// `IP_VS_TCP_S_NONE` (0): just created, no packet processed yet; templates.
    None,
    /// `IP_VS_TCP_S_ESTABLISHED` (1): the only active state.
    Established,
    /// `IP_VS_TCP_S_SYN_SENT` (2).
    SynSent,
    /// `IP_VS_TCP_S_SYN_RECV` (3).
    SynRecv,
    /// `IP_VS_TCP_S_FIN_WAIT` (4).
    FinWait,
    /// `IP_VS_TCP_S_TIME_WAIT` (5).
    TimeWait,
    /// `IP_VS_TCP_S_CLOSE` (6).
    Close,
    /// `IP_VS_TCP_S_CLOSE_WAIT` (7).
    CloseWait,
    /// `IP_VS_TCP_S_LAST_ACK` (8).
    LastAck,
    /// `IP_VS_TCP_S_LISTEN` (9).
    Listen,
    /// `IP_VS_TCP_S_SYNACK` (10).
    SynAck,
    /// `IP_VS_UDP_S_NORMAL`: every UDP connection, always inactive.
    Udp,
}

impl State {
    /// The TCP states in kernel order (index = `state as usize`).
    pub const TCP: [State; 11] = [
        State::None,
        State::Established,
        State::SynSent,
        State::SynRecv,
        State::FinWait,
        State::TimeWait,
        State::Close,
        State::CloseWait,
        State::LastAck,
        State::Listen,
        State::SynAck,
    ];

    /// The name `ipvsadm -L -c` prints (`ip_vs_state_name`).
    pub const fn as_str(self) -> &'static str {
        match self {
            State::None => "NONE",
            State::Established => "ESTABLISHED",
            State::SynSent => "SYN_SENT",
            State::SynRecv => "SYN_RECV",
            State::FinWait => "FIN_WAIT",
            State::TimeWait => "TIME_WAIT",
            State::Close => "CLOSE",
            State::CloseWait => "CLOSE_WAIT",
            State::LastAck => "LAST_ACK",
            State::Listen => "LISTEN",
            State::SynAck => "SYNACK",
            State::Udp => "UDP",
        }
    }

    /// Whether a connection in this state counts in ActiveConn (only ESTABLISHED does).
    pub const fn is_active(self) -> bool {
        matches!(self, State::Established)
    }
}

/// Direction of a packet relative to its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dir {
    /// Client → virtual service (`IP_VS_DIR_INPUT`).
    In,
    /// Real server → client, seen only when the replies pass the balancer (NAT; FULLNAT)
    /// (`IP_VS_DIR_OUTPUT`).
    Out,
}

/// Which counter of its real server a connection occupies (`ip_vs_bind_dest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Counter {
    /// ActiveConn: a TCP connection in ESTABLISHED.
    Active,
    /// InActConn: every other connection, including every new one and every UDP one.
    Inactive,
    /// PersistConn: a persistence template.
    Persistent,
}

/// How a state change moves a connection between its real server's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Move {
    /// No counter changes.
    Stay,
    /// InActConn − 1, ActiveConn + 1 (entered ESTABLISHED).
    ToActive,
    /// ActiveConn − 1, InActConn + 1 (left ESTABLISHED).
    ToInactive,
}

impl Move {
    /// The counter move of a change from `from` to `to`.
    pub const fn between(from: State, to: State) -> Move {
        match (from.is_active(), to.is_active()) {
            (false, true) => Move::ToActive,
            (true, false) => Move::ToInactive,
            _ => Move::Stay,
        }
    }
}

/// What one packet did to its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Transition {
    /// State before the packet.
    pub from: State,
    /// State after the packet (may equal `from`).
    pub to: State,
    /// The counter move the caller applies to the real server.
    pub moved: Move,
}

/// The three TCP state tables of the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpTable {
    /// Client → balancer packets of a connection whose replies pass the balancer.
    Input,
    /// Real server → client packets.
    Output,
    /// Client → balancer packets of a connection that has not seen a reply (DR, TUN).
    InputOnly,
}

impl TcpTable {
    /// The table a packet in direction `dir` uses; `no_output` is the connection's
    /// `IP_VS_CONN_F_NOOUTPUT` flag before the packet.
    pub const fn select(dir: Dir, no_output: bool) -> TcpTable {
        match (dir, no_output) {
            (Dir::Out, _) => TcpTable::Output,
            (Dir::In, true) => TcpTable::InputOnly,
            (Dir::In, false) => TcpTable::Input,
        }
    }
}

/// Row of a segment in a table: 0 SYN, 1 FIN, 2 ACK, 3 RST (`tcp_state_idx`); `None` when it
/// carries none of the four.
const fn row(flags: Flags) -> Option<usize> {
    if flags.contains(Flags::RST) {
        Some(3)
    } else if flags.contains(Flags::SYN) {
        Some(0)
    } else if flags.contains(Flags::FIN) {
        Some(1)
    } else if flags.contains(Flags::ACK) {
        Some(2)
    } else {
        None
    }
}

/// The state after a TCP segment with `flags` in `table`, from `state`.
///
/// [`State::Udp`] is not a TCP state; it maps to itself.
pub const fn tcp_next(state: State, table: TcpTable, flags: Flags) -> State {
    let Some(row) = row(flags) else {
        return State::Close;
    };
    let rows = match table {
        TcpTable::Input => &INPUT,
        TcpTable::Output => &OUTPUT,
        TcpTable::InputOnly => &INPUT_ONLY,
    };
    rows[row][state as usize]
}

use State::{
    Close as CL, CloseWait as CW, Established as ES, FinWait as FW, LastAck as LA, Listen as LI,
    SynRecv as SR, SynSent as SS, TimeWait as TW, Udp as UD,
};

/// One table: rows SYN, FIN, ACK, RST; columns the current state in kernel order, then a
/// twelfth column mapping UDP to itself so that every [`State`] indexes in bounds.
type Rows = [[State; 12]; 4];

// Columns:  sNO sES sSS sSR sFW sTW sCL sCW sLA sLI sSA UDP
const INPUT: Rows = [
    /* syn */ [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR, UD],
    /* fin */ [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW, UD],
    /* ack */ [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES, UD],
    /* rst */ [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR, UD],
];
const OUTPUT: Rows = [
    /* syn */ [SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR, UD],
    /* fin */ [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW, UD],
    /* ack */ [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES, UD],
    /* rst */ [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL, UD],
];
const INPUT_ONLY: Rows = [
    /* syn */ [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR, UD],
    /* fin */ [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW, UD],
    /* ack */ [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES, UD],
    /* rst */ [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL, UD],
];

/// Timeout of a connection just created, before its first packet moves it on
/// (`ip_vs_conn_new`: `cp->timeout = 3*HZ`), in seconds.
pub const NEW_CONN_TIMEOUT: u32 = 3;

/// Per-state timeouts in seconds (`tcp_timeouts[]`, `udp_timeouts[]`), as
/// `ipvsadm --set tcp tcpfin udp` and `-L --timeout` see them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timeouts {
    /// Indexed by the TCP state.
    tcp: [u32; 11],
    /// The UDP state.
    udp: u32,
}

impl Default for Timeouts {
    /// The kernel's defaults (spec §2).
    fn default() -> Self {
        Timeouts {
            //   NONE  ES       SS   SR  FW   TW   CL  CW  LA  LI   SA
            tcp: [2, 15 * 60, 120, 60, 120, 120, 10, 60, 30, 120, 120],
            udp: 5 * 60,
        }
    }
}

impl Timeouts {
    /// `ipvsadm --set tcp tcpfin udp`: set the ESTABLISHED, FIN_WAIT and UDP timeouts in
    /// seconds; a 0 leaves that one unchanged.
    pub fn set(&mut self, tcp: u32, tcp_fin: u32, udp: u32) {
        if tcp != 0 {
            self.tcp[State::Established as usize] = tcp;
        }
        if tcp_fin != 0 {
            self.tcp[State::FinWait as usize] = tcp_fin;
        }
        if udp != 0 {
            self.udp = udp;
        }
    }

    /// The timeout of `state` in seconds.
    pub const fn of(&self, state: State) -> u32 {
        match state {
            State::Udp => self.udp,
            tcp => self.tcp[tcp as usize],
        }
    }
}

impl From<conf::Timeouts> for Timeouts {
    /// The `[timeouts]` section: kernel defaults with `tcp`, `tcp_fin`, `udp` applied as
    /// `ipvsadm --set` does (0 = keep the default).
    fn from(t: conf::Timeouts) -> Self {
        let mut timeouts = Timeouts::default();
        timeouts.set(t.tcp, t.tcp_fin, t.udp);
        timeouts
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// What `Table::packet_entry`'s established fast path assumes: a segment with ACK and
    /// none of SYN, FIN, RST (whatever its other bits) keeps ESTABLISHED in every table.
    /// The tables keep it for exactly those and for SYN without RST (which the fast path
    /// leaves to them).
    #[test]
    fn plain_ack_keeps_established_in_every_table() {
        let kept: Vec<u8> = (0..=u8::MAX)
            .filter(|&bits| {
                [TcpTable::Input, TcpTable::Output, TcpTable::InputOnly]
                    .iter()
                    .all(|&t| tcp_next(State::Established, t, Flags::from_bits(bits)) == ES)
            })
            .collect();
        let (fin, syn, rst, ack) = (0x01, 0x02, 0x04, 0x10);
        let expected: Vec<u8> = (0..=u8::MAX)
            .filter(|&b| b & rst == 0 && (b & syn != 0 || (b & fin == 0 && b & ack != 0)))
            .collect();
        assert_eq!(kept, expected);
        let plain_acks = (0..=u8::MAX).filter(|b| b & (fin | syn | rst | ack) == ack);
        assert_eq!(plain_acks.filter(|b| kept.contains(b)).count(), 16);
    }

    /// The three tables exactly as `ipvs-spec.md` §2 prints them, parsed independently of
    /// the constants above.
    const SPEC_TABLES: &str = "
INPUT
/*syn*/ {{sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR }},
/*fin*/ {{sCL, sCW, sSS, sTW, sTW, sTW, sCL, sCW, sLA, sLI, sTW }},
/*ack*/ {{sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES }},
/*rst*/ {{sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sSR }},
OUTPUT
/*syn*/ {{sSS, sES, sSS, sSR, sSS, sSS, sSS, sSS, sSS, sLI, sSR }},
/*fin*/ {{sTW, sFW, sSS, sTW, sFW, sTW, sCL, sTW, sLA, sLI, sTW }},
/*ack*/ {{sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sLA, sES, sES }},
/*rst*/ {{sCL, sCL, sSS, sCL, sCL, sTW, sCL, sCL, sCL, sCL, sCL }},
INPUT-ONLY
/*syn*/ {{sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR }},
/*fin*/ {{sCL, sFW, sSS, sTW, sFW, sTW, sCL, sCW, sLA, sLI, sTW }},
/*ack*/ {{sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES }},
/*rst*/ {{sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL }},
";

    fn spec_state(name: &str) -> State {
        match name {
            "sNO" => State::None,
            "sES" => State::Established,
            "sSS" => State::SynSent,
            "sSR" => State::SynRecv,
            "sFW" => State::FinWait,
            "sTW" => State::TimeWait,
            "sCL" => State::Close,
            "sCW" => State::CloseWait,
            "sLA" => State::LastAck,
            "sLI" => State::Listen,
            "sSA" => State::SynAck,
            other => panic!("unknown state {other}"),
        }
    }

    /// (table, flags of the row, the 11 next states) for each of the 12 spec rows.
    pub(in crate::conn) fn spec_rows() -> Vec<(TcpTable, Flags, Vec<State>)> {
        let mut table = TcpTable::Input;
        let mut rows = Vec::new();
        for line in SPEC_TABLES.lines().map(str::trim).filter(|l| !l.is_empty()) {
            match line {
                "INPUT" => table = TcpTable::Input,
                "OUTPUT" => table = TcpTable::Output,
                "INPUT-ONLY" => table = TcpTable::InputOnly,
                _ => {
                    let flags = match &line[2..5] {
                        "syn" => Flags::SYN,
                        "fin" => Flags::FIN,
                        "ack" => Flags::ACK,
                        "rst" => Flags::RST,
                        other => panic!("unknown row {other}"),
                    };
                    let cells = line[line.find("{{").unwrap() + 2..line.find("}}").unwrap()]
                        .split(',')
                        .map(|c| spec_state(c.trim()))
                        .collect::<Vec<_>>();
                    assert_eq!(cells.len(), 11, "{line}");
                    rows.push((table, flags, cells));
                }
            }
        }
        assert_eq!(rows.len(), 12);
        rows
    }

    #[test]
    fn every_cell_of_every_table_matches_the_spec() {
        for (table, flags, next) in spec_rows() {
            for (from, want) in State::TCP.into_iter().zip(next) {
                assert_eq!(
                    tcp_next(from, table, flags),
                    want,
                    "{table:?} {flags:?} from {from:?}"
                );
            }
        }
    }

    #[test]
    fn flag_priority_is_rst_syn_fin_ack() {
        use Flags as F;
        // Each combination must land in the row of its highest-priority flag; extra flags
        // (PSH, URG, ECE, CWR) change nothing.
        let extra = F::PSH | F::URG | F::ECE | F::CWR;
        let cases = [
            (F::RST | F::SYN | F::FIN | F::ACK, F::RST),
            (F::RST | F::ACK, F::RST),
            (F::SYN | F::FIN | F::ACK, F::SYN),
            (F::SYN | F::ACK, F::SYN),
            (F::FIN | F::ACK, F::FIN),
            (F::ACK | F::PSH, F::ACK),
        ];
        for table in [TcpTable::Input, TcpTable::Output, TcpTable::InputOnly] {
            for from in State::TCP {
                for (flags, row_flag) in cases {
                    let want = tcp_next(from, table, row_flag);
                    assert_eq!(tcp_next(from, table, flags), want, "{table:?} {from:?}");
                    assert_eq!(tcp_next(from, table, flags | extra), want);
                }
            }
        }
    }

    #[test]
    fn a_segment_without_syn_fin_ack_rst_closes_from_every_state() {
        use Flags as F;
        for table in [TcpTable::Input, TcpTable::Output, TcpTable::InputOnly] {
            for from in State::TCP {
                for flags in [
                    F::default(),
                    F::PSH,
                    F::URG,
                    F::ECE | F::CWR,
                    F::PSH | F::URG,
                ] {
                    assert_eq!(tcp_next(from, table, flags), State::Close, "{from:?}");
                }
            }
        }
    }

    #[test]
    fn table_selection_follows_direction_and_nooutput() {
        assert_eq!(TcpTable::select(Dir::In, false), TcpTable::Input);
        assert_eq!(TcpTable::select(Dir::In, true), TcpTable::InputOnly);
        assert_eq!(TcpTable::select(Dir::Out, false), TcpTable::Output);
        assert_eq!(TcpTable::select(Dir::Out, true), TcpTable::Output);
    }

    #[test]
    fn udp_is_not_moved_by_tcp_tables() {
        for table in [TcpTable::Input, TcpTable::Output, TcpTable::InputOnly] {
            for flags in [Flags::SYN, Flags::FIN, Flags::ACK, Flags::RST] {
                assert_eq!(tcp_next(State::Udp, table, flags), State::Udp);
            }
        }
    }

    #[test]
    fn only_established_is_active_and_moves_cross_that_line() {
        let all = State::TCP.into_iter().chain([State::Udp]);
        for from in all.clone() {
            assert_eq!(from.is_active(), from == State::Established);
            for to in all.clone() {
                let want = match (from == State::Established, to == State::Established) {
                    (false, true) => Move::ToActive,
                    (true, false) => Move::ToInactive,
                    _ => Move::Stay,
                };
                assert_eq!(Move::between(from, to), want, "{from:?} -> {to:?}");
            }
        }
    }

    #[test]
    fn default_timeouts_are_the_kernels() {
        let t = Timeouts::default();
        let want = [
            (State::None, 2),
            (State::Established, 900),
            (State::SynSent, 120),
            (State::SynRecv, 60),
            (State::FinWait, 120),
            (State::TimeWait, 120),
            (State::Close, 10),
            (State::CloseWait, 60),
            (State::LastAck, 30),
            (State::Listen, 120),
            (State::SynAck, 120),
            (State::Udp, 300),
        ];
        for (state, secs) in want {
            assert_eq!(t.of(state), secs, "{state:?}");
        }
        assert_eq!(NEW_CONN_TIMEOUT, 3);
    }

    #[test]
    fn set_changes_established_fin_wait_udp_and_zero_keeps() {
        let mut t = Timeouts::default();
        t.set(3600, 30, 20);
        assert_eq!(t.of(State::Established), 3600);
        assert_eq!(t.of(State::FinWait), 30);
        assert_eq!(t.of(State::Udp), 20);
        // Nothing else moved.
        assert_eq!(t.of(State::TimeWait), 120);
        assert_eq!(t.of(State::CloseWait), 60);
        t.set(0, 0, 0);
        assert_eq!(
            (
                t.of(State::Established),
                t.of(State::FinWait),
                t.of(State::Udp)
            ),
            (3600, 30, 20)
        );
        t.set(0, 45, 0);
        assert_eq!(
            (
                t.of(State::Established),
                t.of(State::FinWait),
                t.of(State::Udp)
            ),
            (3600, 45, 20)
        );
    }

    #[test]
    fn conf_timeouts_apply_like_ipvsadm_set() {
        let t = Timeouts::from(conf::Timeouts {
            tcp: 0,
            tcp_fin: 90,
            udp: 0,
        });
        assert_eq!(t.of(State::Established), 900);
        assert_eq!(t.of(State::FinWait), 90);
        assert_eq!(t.of(State::Udp), 300);
        assert_eq!(
            Timeouts::from(conf::Timeouts::default()),
            Timeouts::default()
        );
    }

    #[test]
    fn names_are_the_kernels() {
        let names: Vec<_> = State::TCP.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            names,
            [
                "NONE",
                "ESTABLISHED",
                "SYN_SENT",
                "SYN_RECV",
                "FIN_WAIT",
                "TIME_WAIT",
                "CLOSE",
                "CLOSE_WAIT",
                "LAST_ACK",
                "LISTEN",
                "SYNACK"
            ]
        );
        assert_eq!(State::Udp.as_str(), "UDP");
        for (i, s) in State::TCP.into_iter().enumerate() {
            assert_eq!(s as usize, i);
        }
    }
}
