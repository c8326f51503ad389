//! BPF_PROG_TEST_RUN of the loaded programs on crafted frames.

use aya::programs::{Program, TestRun, TestRunOptions};
use hostfw::datapath::Datapath;
use hostfw_common::names::{PROG_TC_EGRESS, PROG_TC_INGRESS, PROG_XDP};

/// Which program to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prog {
    Xdp,
    TcIn,
    TcOut,
}

impl Prog {
    pub fn name(self) -> &'static str {
        match self {
            Self::Xdp => PROG_XDP,
            Self::TcIn => PROG_TC_INGRESS,
            Self::TcOut => PROG_TC_EGRESS,
        }
    }
}

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const TC_UNSPEC: u32 = u32::MAX; // -1
const TC_SHOT: u32 = 2;

/// Runs `prog` once on `frame`; true = pass, false = drop.
pub fn passes(dp: &Datapath, prog: Prog, frame: &[u8]) -> bool {
    run_raw(dp, prog, frame, 1).0
}

/// Runs `prog` `repeat` times; returns (pass, ns per run).
pub fn run_raw(dp: &Datapath, prog: Prog, frame: &[u8], repeat: u32) -> (bool, f64) {
    let p = dp
        .ebpf()
        .program(prog.name())
        .unwrap_or_else(|| panic!("program {} missing", prog.name()));
    let mut out = vec![0u8; frame.len() + 256];
    let opts = TestRunOptions {
        data_in: Some(frame),
        data_out: Some(&mut out),
        repeat,
        ..TestRunOptions::default()
    };
    let res = match p {
        Program::Xdp(x) => x.test_run(opts),
        Program::SchedClassifier(t) => t.test_run(opts),
        other => panic!("unexpected program type {:?}", other.prog_type()),
    }
    .unwrap_or_else(|e| panic!("BPF_PROG_TEST_RUN of {} failed: {e:?}", prog.name()));
    let pass = match (prog, res.return_value) {
        (Prog::Xdp, XDP_PASS) | (Prog::TcIn | Prog::TcOut, TC_UNSPEC) => true,
        (Prog::Xdp, XDP_DROP) | (Prog::TcIn | Prog::TcOut, TC_SHOT) => false,
        (p, r) => panic!("{p:?} returned unexpected {r}"),
    };
    let ns = res.duration.as_nanos() as f64;
    (pass, ns)
}
