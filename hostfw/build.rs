//! Builds the eBPF object with aya-build and Debian's matched Rust toolchain.
use anyhow::Context as _;

fn main() -> anyhow::Result<()> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../hostfw-ebpf");
    let ebpf = aya_build::Package {
        name: "hostfw-ebpf",
        root_dir: root,
        ..Default::default()
    };
    // Debian's rustc-web counts as a stable compiler; build-std needs this.
    // SAFETY: build scripts are single-threaded here; nothing reads the
    // environment concurrently.
    unsafe { std::env::set_var("RUSTC_BOOTSTRAP", "1") };
    let toolchain = std::env::var("HOSTFW_EBPF_TOOLCHAIN").unwrap_or_else(|_| "debweb".into());
    println!("cargo:rerun-if-env-changed=HOSTFW_EBPF_TOOLCHAIN");
    aya_build::build_ebpf([ebpf], aya_build::Toolchain::Custom(&toolchain))
        .context("building hostfw-ebpf (run scripts/install-deps.sh if the toolchain is missing)")
}
