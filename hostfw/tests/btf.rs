//! The kernel accepts the object's BTF (aya only warns and loads without
//! it otherwise, losing type information for tools like bpftool). Needs
//! root.

mod common;

use std::sync::Mutex;

static WARNINGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Warn
    }

    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata())
            && let Ok(mut w) = WARNINGS.lock()
        {
            w.push(r.args().to_string());
        }
    }

    fn flush(&self) {}
}

static CAPTURE: Capture = Capture;

#[test]
fn the_kernel_accepts_the_object_btf() {
    log::set_logger(&CAPTURE).expect("the only logger of this test binary");
    log::set_max_level(log::LevelFilter::Warn);
    let t = common::TestDatapath::load();
    let warnings = WARNINGS.lock().expect("lock").clone();
    let btf: Vec<&String> = warnings.iter().filter(|w| w.contains("BTF")).collect();
    assert!(
        btf.is_empty(),
        "BTF rejected by the kernel: {}",
        btf.iter()
            .map(|w| w.lines().take(3).collect::<Vec<_>>().join(" / "))
            .collect::<Vec<_>>()
            .join("\n")
    );
    drop(t);
}
