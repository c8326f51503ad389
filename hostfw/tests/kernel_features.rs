//! The kernel feature probes run before loading (`datapath::kernel`): this
//! kernel has everything, and the probes can tell a missing helper. Needs
//! root.

mod common;

use aya::{
    programs::ProgramType,
    sys::{BpfHelper, is_helper_supported},
};
use hostfw::datapath::kernel;

#[test]
fn this_kernel_has_what_the_programs_need() {
    common::require_root();
    let missing = kernel::missing();
    assert!(
        missing.is_empty(),
        "{}",
        kernel::refusal(&kernel::release(), &missing).unwrap_or_default()
    );
}

#[test]
fn the_probe_tells_a_helper_the_program_type_cannot_use() {
    common::require_root();
    // bpf_skb_load_bytes exists, but not for XDP programs.
    assert!(matches!(
        is_helper_supported(ProgramType::Xdp, BpfHelper::BPF_FUNC_skb_load_bytes),
        Ok(false)
    ));
    assert!(matches!(
        is_helper_supported(ProgramType::Xdp, BpfHelper::BPF_FUNC_xdp_load_bytes),
        Ok(true)
    ));
}
