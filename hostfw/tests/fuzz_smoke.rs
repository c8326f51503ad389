//! A deterministic mutation smoke test of the policy front end: every
//! example and test policy file, mutated thousands of times with a fixed
//! seed (bytes flipped, ranges deleted, lines duplicated, files truncated
//! and spliced, YAML/TOML syntax, deep nesting, huge numbers and odd
//! Unicode inserted), is parsed and, when valid, lowered; nothing may
//! panic. Each panicking input is written to a temporary file named in the
//! failure. The coverage-guided fuzzers are in `hostfw/fuzz/` (nightly).
//!
//! Deep nesting is bounded by the parsers (saphyr's and toml's limits,
//! hostfw's YAML depth check) and runs on the test thread's 2 MiB stack:
//! a stack overflow aborts the whole test binary, which `catch_unwind`
//! cannot report. The mutants are the same on every run: rerun with
//! `HOSTFW_FUZZ_SMOKE_SAVE=1` and the input being tried is always in
//! `$TMPDIR/hostfw-fuzz-smoke-current.{yaml,toml}` (removed when the test
//! passes), so after an abort that file is the culprit. (Not by default:
//! writing every input doubles the test's time.)

use std::{
    fs,
    net::IpAddr,
    panic::{AssertUnwindSafe, catch_unwind},
    path::{Path, PathBuf},
    time::Instant,
};

use hostfw::policy::{Format, LowerContext, format_of, lower, parse_str};
use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};

/// Mutated inputs per format (so at least 2 × this in all).
const MUTATIONS: usize = 12_000;

/// The seed files: every policy under `examples/` and the policy tests'
/// fixtures, with their format.
fn seeds() -> Vec<(PathBuf, Format, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs = vec![
        root.join("src/policy/testdata"),
        root.join("../examples/policies.d"),
    ];
    for role in fs::read_dir(root.join("../examples")).expect("examples/") {
        let role = role.expect("directory entry").path();
        if role.is_dir() {
            dirs.push(role.join("policies"));
            dirs.push(role.join("policies-toml"));
        }
    }
    let mut out = Vec::new();
    for dir in dirs.into_iter().filter(|d| d.is_dir()) {
        for entry in fs::read_dir(&dir).expect("policy directory") {
            let path = entry.expect("directory entry").path();
            if let Some(format) = format_of(&path) {
                let text = fs::read_to_string(&path).expect("policy file");
                out.push((path, format, text));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Text that means something to YAML or TOML, or to the policy decoder.
const SPECIAL: &[&str] = &[
    // YAML
    "- ",
    ": ",
    "? ",
    "{",
    "}",
    "[",
    "]",
    ",",
    "&a ",
    "*a",
    "&a [1, *a]",
    "!!str ",
    "!!int ",
    "!!binary ",
    "!tag ",
    "!<tag:x> ",
    "|",
    "|-\n",
    ">",
    ">+\n",
    "'",
    "\"",
    "#",
    "---\n",
    "...\n",
    "%YAML 1.2\n",
    "%TAG ! tag:x,2024:\n",
    "<<: *a\n",
    "~",
    "null",
    "yes",
    "no",
    "on",
    ".inf",
    ".nan",
    "0o17",
    "0x1F",
    "1_000",
    "\t",
    "\n",
    "\r\n",
    "\r",
    " ",
    "  ",
    "\\u0000",
    "\\x80",
    "\\",
    // TOML
    "[[",
    "]]",
    "[[policy]]\n",
    "[[policy.ingress]]\n",
    "[policy]\n",
    "=",
    " = ",
    ".",
    "\"\"\"",
    "'''",
    "inf",
    "nan",
    "-inf",
    "+0",
    "-0",
    "1979-05-27T07:32:00Z",
    "07:32:00",
    "1979-05-27",
    "0b101",
    "true",
    "false",
    "a.b.c = 1\n",
    "{ }",
    "[ ]",
    // the policy language
    "fromEntities",
    "toEntities",
    "fromCIDR",
    "toCIDR",
    "fromCIDRSet",
    "toCIDRSet",
    "except",
    "toPorts",
    "ports",
    "port",
    "endPort",
    "protocol",
    "icmps",
    "fields",
    "type",
    "family",
    "nodeSelector",
    "endpointSelector",
    "matchLabels",
    "matchExpressions",
    "operator",
    "values",
    "ingress",
    "ingressDeny",
    "egress",
    "egressDeny",
    "enableDefaultDeny",
    "specs",
    "spec",
    "items",
    "kind",
    "List",
    "world",
    "all",
    "cluster",
    "host",
    "remote-node",
    "kube-apiserver",
    "health",
    "none",
    "EchoRequest",
    "IPv6",
    "IPv4",
    "ANY",
    "ICMP",
    "In",
    "NotIn",
    "Exists",
    "DoesNotExist",
    "0.0.0.0/0",
    "::/0",
    "10.0.0.0/33",
    "::ffff:10.0.0.1/128",
    "fe80::1%eth0",
    "255.255.255.255/32",
    "k8s:",
    "any:",
    "rules",
    "toFQDNs",
];

/// Numbers at and past the edges of every integer type the decoder uses.
const NUMBERS: &[&str] = &[
    "0",
    "-1",
    "255",
    "256",
    "65535",
    "65536",
    "-65536",
    "4294967295",
    "4294967296",
    "2147483648",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551616",
    "340282366920938463463374607431768211456",
    "99999999999999999999999999999999999999999999999999",
    "1e400",
    "-1e400",
    "1.5",
    "0x10000",
    "00",
    "010",
    "0009",
    "+22",
    "22 ",
    " 22",
    "2_2",
    "٢٢",
];

/// Odd Unicode: multi-byte, zero-width, line separators YAML knows
/// (NEL, LS, PS), BOM, bidi override, combining marks, NUL, astral.
const UNICODE: &[&str] = &[
    "é",
    "ß",
    "İ",
    "ﬁ",
    "\u{301}",
    "\u{200B}",
    "\u{FEFF}",
    "\u{202E}",
    "\u{85}",
    "\u{2028}",
    "\u{2029}",
    "\0",
    "\u{7F}",
    "\u{FFFD}",
    "𝕏",
    "🙂",
    "\u{10FFFF}",
    "\u{E000}",
    "中文",
];

fn mutate(rng: &mut StdRng, text: &str, seeds: &[(PathBuf, Format, String)]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    let rounds = rng.random_range(1..=4);
    for _ in 0..rounds {
        let len = bytes.len();
        let at = rng.random_range(0..=len);
        match rng.random_range(0..14) {
            // Flip a bit.
            0 if len > 0 => {
                let i = rng.random_range(0..len);
                bytes[i] ^= 1 << rng.random_range(0..8);
            }
            // A random byte.
            1 if len > 0 => {
                let i = rng.random_range(0..len);
                bytes[i] = rng.random();
            }
            // Delete a range.
            2 => {
                let end = (at + rng.random_range(0..64)).min(len);
                bytes.drain(at..end);
            }
            // Duplicate, delete or swap lines.
            3..=5 => {
                let mut lines: Vec<Vec<u8>> =
                    bytes.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
                let n = lines.len();
                let (i, j) = (rng.random_range(0..n), rng.random_range(0..n));
                match rng.random_range(0..3) {
                    0 => {
                        let dup = lines[i].clone();
                        for _ in 0..rng.random_range(1..=3) {
                            lines.insert(j, dup.clone());
                        }
                    }
                    1 => {
                        lines.remove(i);
                    }
                    _ => lines.swap(i, j),
                }
                bytes = lines.join(&b'\n');
            }
            // Truncate.
            6 => bytes.truncate(at),
            // Splice with another seed file (of either format).
            7 => {
                let other = &seeds.choose(rng).expect("seeds").2.as_bytes();
                let from = rng.random_range(0..=other.len());
                bytes.truncate(at);
                bytes.extend_from_slice(&other[from..]);
            }
            // Syntax and keywords.
            8 | 9 => {
                let s = SPECIAL.choose(rng).expect("special");
                bytes.splice(at..at, s.bytes());
            }
            // Deep nesting, closed or not.
            10 => {
                let open = ["[", "{", "- ", "[[", "{a: ", "{ a = ", "a:\n ", "? "]
                    .choose(rng)
                    .expect("opener");
                let depth = *[10, 63, 64, 65, 200, 1_000, 20_000]
                    .choose(rng)
                    .expect("depth");
                let mut nest = open.repeat(depth);
                if rng.random_bool(0.5) {
                    let close = match *open {
                        "[" | "[[" => "]",
                        "{" | "{a: " | "{ a = " => "}",
                        _ => "",
                    };
                    nest.push('x');
                    nest.push_str(&close.repeat(depth * open.matches(['[', '{']).count()));
                }
                bytes.splice(at..at, nest.bytes());
            }
            // Replace a number (or a run of digits) by an edge case.
            11 => {
                let n = NUMBERS.choose(rng).expect("number");
                let start = (at..len).find(|&i| bytes[i].is_ascii_digit()).unwrap_or(at);
                let end = (start..len)
                    .find(|&i| !bytes[i].is_ascii_digit())
                    .unwrap_or(len);
                bytes.splice(start..end, n.bytes());
            }
            // Unicode, possibly inside a multi-byte character.
            12 => {
                let u = UNICODE.choose(rng).expect("unicode");
                bytes.splice(at..at, u.bytes());
            }
            // Re-indent a line.
            _ => {
                let start = bytes[..at]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1);
                if rng.random_bool(0.5) {
                    let pad = if rng.random_bool(0.8) { " " } else { "\t" };
                    bytes.splice(start..start, pad.repeat(rng.random_range(1..4)).bytes());
                } else if bytes.get(start) == Some(&b' ') {
                    bytes.remove(start);
                }
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A node with addresses in every entity's set, so that lowering cuts
/// cluster addresses out of CIDRs.
fn populated() -> LowerContext {
    let ip = |s: &str| s.parse::<IpAddr>().expect("address");
    LowerContext {
        node_labels: [
            ("node-role.kubernetes.io/control-plane", ""),
            ("node-access", "ssh"),
            ("role", "etcd"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        host_addresses: vec![ip("10.0.0.11"), ip("2001:db8:0:1::11")],
        cluster_nodes: ["10.0.0.11", "10.0.0.12", "10.0.0.21", "2001:db8:0:1::21"]
            .map(ip)
            .to_vec(),
        pod_cidrs: vec![
            "10.244.0.0/16".parse().expect("cidr"),
            "2001:db8:244::/56".parse().expect("cidr"),
        ],
        apiservers: vec![ip("10.0.0.11"), ip("192.0.2.10")],
        ..LowerContext::default()
    }
}

/// The whole front end on one input; what a panic would interrupt.
fn front_end(text: &str, format: Format, contexts: &[LowerContext]) -> (bool, usize) {
    match parse_str(text, Path::new("mutant"), format) {
        Ok(policies) => {
            let mut rules = 0;
            for ctx in contexts {
                let l = lower(&policies, ctx);
                rules += l.rules.rules.len();
                // Reports are output too.
                std::hint::black_box(format!("{:?}", l.report));
            }
            (true, rules)
        }
        Err(errors) => {
            for e in &errors {
                assert!(!e.to_string().is_empty());
            }
            (false, 0)
        }
    }
}

fn run(format: Format, seed: u64) {
    let all = seeds();
    let mine: Vec<&(PathBuf, Format, String)> =
        all.iter().filter(|(_, f, _)| *f == format).collect();
    assert!(mine.len() >= 4, "seed files of {format:?}: {mine:?}");
    let contexts = [LowerContext::default(), populated()];
    let mut rng = StdRng::seed_from_u64(seed);
    let start = Instant::now();
    let (mut valid, mut rules) = (0, 0);
    let mut panicked = Vec::new();
    let ext = |f: Format| match f {
        Format::Yaml => "yaml",
        Format::Toml => "toml",
    };
    let current = std::env::var_os("HOSTFW_FUZZ_SMOKE_SAVE")
        .map(|_| std::env::temp_dir().join(format!("hostfw-fuzz-smoke-current.{}", ext(format))));
    for i in 0..MUTATIONS {
        let (path, _, text) = mine[i % mine.len()];
        let input = mutate(&mut rng, text, &all);
        // Now and then, read it as the other format.
        let as_format = if i % 16 == 15 {
            match format {
                Format::Yaml => Format::Toml,
                Format::Toml => Format::Yaml,
            }
        } else {
            format
        };
        if let Some(current) = &current {
            fs::write(current, &input).expect("write the current input");
        }
        match catch_unwind(AssertUnwindSafe(|| front_end(&input, as_format, &contexts))) {
            Ok((ok, n)) => {
                valid += usize::from(ok);
                rules += n;
            }
            Err(_) => {
                let out = std::env::temp_dir().join(format!(
                    "hostfw-fuzz-smoke-{}-{i}.{}",
                    std::process::id(),
                    ext(as_format)
                ));
                fs::write(&out, &input).expect("write the panicking input");
                panicked.push(format!(
                    "mutant {i} of {} as {as_format:?}: {}",
                    path.display(),
                    out.display()
                ));
            }
        }
    }
    if let Some(current) = &current {
        let _ = fs::remove_file(current);
    }
    eprintln!(
        "{format:?}: {MUTATIONS} mutants of {} files in {:.1?}: {valid} valid, {rules} rules",
        mine.len(),
        start.elapsed()
    );
    assert!(
        panicked.is_empty(),
        "{} inputs panicked (saved):\n{}",
        panicked.len(),
        panicked.join("\n")
    );
    // The mutations are small enough that some inputs stay valid: the
    // lowering half is exercised too.
    assert!(valid > MUTATIONS / 50, "only {valid} valid mutants");
}

#[test]
fn mutated_yaml_policies_never_panic() {
    run(Format::Yaml, 0x686f_7374_6677_0001);
}

#[test]
fn mutated_toml_policies_never_panic() {
    run(Format::Toml, 0x686f_7374_6677_0002);
}
