//! BPF_PROG_TEST_RUN of the loaded programs on crafted frames: used by
//! the verdict tests and the benchmark.

use super::Datapath;
use aya::programs::{Program, TestRun, TestRunOptions};
use hostfw_common::names::{PROG_TC_EGRESS, PROG_TC_INGRESS, PROG_XDP};

/// Which program to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prog {
    /// XDP on ingress.
    Xdp,
    /// TC on ingress.
    TcIn,
    /// TC on egress.
    TcOut,
}

impl Prog {
    /// The program's name in the object.
    #[must_use]
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
///
/// # Panics
/// If the program is missing or the kernel refuses the test run.
#[must_use]
pub fn passes(dp: &Datapath, prog: Prog, frame: &[u8]) -> bool {
    run_raw(dp, prog, frame, 1).0
}

/// Runs `prog` `repeat` times; returns (pass, ns per run).
///
/// # Panics
/// If the program is missing or the kernel refuses the test run.
#[must_use]
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
    #[expect(clippy::cast_precision_loss, reason = "nanoseconds fit easily")]
    let ns = res.duration.as_nanos() as f64;
    (pass, ns)
}

/// Instructions the verifier processed to load `prog` (`verified_insns`),
/// when the kernel reports it.
#[must_use]
pub fn verified_insns(dp: &Datapath, prog: Prog) -> Option<u32> {
    let p = dp.ebpf().program(prog.name())?;
    p.info().ok()?.verified_instruction_count()
}
