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

static STDERR: Stderr = Stderr;

/// Sets up logging once: to the journal (with the fields `SYSLOG_IDENTIFIER=hostfw`,
/// `PRIORITY`, `CODE_MODULE` and the message) when stderr is connected to it, as
/// under systemd; to stderr otherwise. `HOSTFW_LOG=debug` raises the level.
pub fn init() {
    let level = match std::env::var("HOSTFW_LOG").as_deref() {
        Ok("debug") => log::LevelFilter::Debug,
        Ok("trace") => log::LevelFilter::Trace,
        _ => log::LevelFilter::Info,
    };
    let journal = systemd_journal_logger::connected_to_journal()
        && systemd_journal_logger::JournalLog::new()
            .map(|j| j.with_syslog_identifier("hostfw".into()))
            .and_then(|j| j.install().map_err(std::io::Error::other))
            .is_ok();
    if journal || log::set_logger(&STDERR).is_ok() {
        log::set_max_level(level);
    }
}
