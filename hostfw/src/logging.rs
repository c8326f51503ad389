//! Log output: the journal when connected to it, stderr otherwise.

use std::io::Write as _;

struct Stderr;

impl log::Log for Stderr {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            let level = match r.level() {
                log::Level::Error => "error: ",
                log::Level::Warn => "warning: ",
                _ => "",
            };
            let _ = writeln!(std::io::stderr(), "{level}{}", r.args());
        }
    }

    fn flush(&self) {}
}

/// hostfw's own records; the libraries' (kube, hyper, rustls, which log
/// through `tracing`'s log bridge, and repeat what hostfw says better) only
/// with `HOSTFW_LOG=debug` or `trace`.
struct Ours<L>(L);

impl<L: log::Log> log::Log for Ours<L> {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        (m.target().starts_with("hostfw") || log::max_level() >= log::LevelFilter::Debug)
            && self.0.enabled(m)
    }

    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            self.0.log(r);
        }
    }

    fn flush(&self) {
        self.0.flush();
    }
}

/// Sets up logging once: to the journal (with the fields `SYSLOG_IDENTIFIER=hostfw`,
/// `PRIORITY`, `CODE_MODULE` and the message) when stderr is connected to it, as
/// under systemd; to stderr otherwise. `HOSTFW_LOG=debug` raises the level.
pub fn init() {
    let level = match std::env::var("HOSTFW_LOG").as_deref() {
        Ok("debug") => log::LevelFilter::Debug,
        Ok("trace") => log::LevelFilter::Trace,
        _ => log::LevelFilter::Info,
    };
    let journal = if systemd_journal_logger::connected_to_journal() {
        systemd_journal_logger::JournalLog::new()
            .ok()
            .map(|j| j.with_syslog_identifier("hostfw".into()))
    } else {
        None
    };
    let installed = match journal {
        Some(j) => log::set_boxed_logger(Box::new(Ours(j))),
        None => log::set_boxed_logger(Box::new(Ours(Stderr))),
    };
    if installed.is_ok() {
        log::set_max_level(level);
    }
}
