//! Arbitrary bytes as a hostfw TOML policy file: parse, validate, lower.
#![no_main]

use hostfw::policy::Format;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| hostfw_fuzz::run(data, Format::Toml));
