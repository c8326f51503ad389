//! The .deb and .rpm built by `scripts/package.sh` hold every file, with
//! the right mode, conffiles marked as such. Slow: a release build (once,
//! in the one test of this binary). Needs cargo-deb, cargo-generate-rpm,
//! lintian, dpkg-deb and rpm (`scripts/install-deps.sh`).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

/// Files every package holds (the unit's directory and the zsh completion's
/// differ and are added per format), with their modes.
const COMMON: &[(&str, u32)] = &[
    ("/usr/sbin/hostfw", 0o755),
    ("/etc/hostfw/hostfw.toml", 0o644),
    ("/etc/hostfw/policies.d/node-baseline.yaml", 0o644),
    ("/usr/lib/systemd/system/hostfw.service", 0o644),
    ("/usr/share/man/man8/hostfw.8.gz", 0o644),
    ("/usr/share/man/man8/hostfw-daemon.8.gz", 0o644),
    ("/usr/share/man/man8/hostfw-status.8.gz", 0o644),
    ("/usr/share/man/man8/hostfw-trace.8.gz", 0o644),
    ("/usr/share/bash-completion/completions/hostfw", 0o644),
    ("/usr/share/fish/vendor_completions.d/hostfw.fish", 0o644),
    ("/usr/share/doc/hostfw/README.md", 0o644),
];

const CONFFILES: &[&str] = &[
    "/etc/hostfw/hostfw.toml",
    "/etc/hostfw/policies.d/node-baseline.yaml",
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn require_tools() {
    let missing: Vec<&str> = [
        "dpkg-deb",
        "rpm",
        "lintian",
        "cargo-deb",
        "cargo-generate-rpm",
    ]
    .into_iter()
    .filter(|tool| {
        let home = std::env::var("HOME").unwrap_or_default();
        let path = format!(
            "{home}/.cargo/bin:{}",
            std::env::var("PATH").unwrap_or_default()
        );
        !std::env::split_paths(&path).any(|dir| dir.join(tool).is_file())
    })
    .collect();
    assert!(
        missing.is_empty(),
        "missing packaging tools {missing:?}: run scripts/install-deps.sh"
    );
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `-rwxr-xr-x` → 0o755 (regular files only).
fn mode_of(perm: &str) -> Option<u32> {
    let bits = perm.strip_prefix('-')?;
    if bits.len() != 9 {
        return None;
    }
    Some(
        bits.chars()
            .fold(0, |acc, c| (acc << 1) | u32::from(c != '-')),
    )
}

/// Regular files of a listing whose lines start with the permissions and end
/// with the path (`dpkg-deb -c`, `rpm -qlv`), by path.
fn files_of(listing: &str, strip_dot: bool) -> BTreeMap<String, u32> {
    listing
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let mode = mode_of(fields.next()?)?;
            let path = fields.next_back()?;
            let path = if strip_dot {
                path.strip_prefix('.')?
            } else {
                path
            };
            Some((path.to_owned(), mode))
        })
        .collect()
}

fn check_files(what: &str, files: &BTreeMap<String, u32>, expected: &[(&str, u32)]) {
    for (path, mode) in expected {
        match files.get(*path) {
            Some(m) => assert_eq!(m, mode, "{what}: {path} has mode {m:o}, expected {mode:o}"),
            None => panic!("{what}: {path} missing; files: {files:#?}"),
        }
    }
}

#[test]
fn packages_hold_every_file() {
    require_tools();
    let root = workspace();
    let start = Instant::now();
    let out = run(Command::new(root.join("scripts/package.sh")).current_dir(&root));
    eprintln!("package.sh: {:.0?}", start.elapsed());
    let line = |prefix: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .map(PathBuf::from)
            .unwrap_or_else(|| panic!("package.sh printed no `{prefix}` line:\n{out}"))
    };
    let deb = line("deb: ");
    let rpm = line("rpm: ");

    // .deb: files and modes, conffiles, control fields, maintainer scripts.
    let listing = run(Command::new("dpkg-deb").arg("-c").arg(&deb));
    let mut expected = COMMON.to_vec();
    expected.push(("/usr/share/zsh/vendor-completions/_hostfw", 0o644));
    expected.push(("/usr/share/doc/hostfw/copyright", 0o644));
    expected.push(("/usr/share/doc/hostfw/changelog.Debian.gz", 0o644));
    check_files(".deb", &files_of(&listing, true), &expected);
    let conffiles = run(Command::new("dpkg-deb")
        .arg("-I")
        .arg(&deb)
        .arg("conffiles"));
    for path in CONFFILES {
        assert!(
            conffiles.lines().any(|l| l.trim() == *path),
            ".deb: {path} is not a conffile:\n{conffiles}"
        );
    }
    let info = run(Command::new("dpkg-deb").arg("-I").arg(&deb));
    assert!(info.contains("Package: hostfw"), "{info}");
    for script in ["postinst", "prerm", "postrm"] {
        assert!(info.contains(script), ".deb: no {script}:\n{info}");
    }
    let postinst = run(Command::new("dpkg-deb").arg("-I").arg(&deb).arg("postinst"));
    assert!(
        postinst.contains("deb-systemd-helper enable hostfw.service")
            && postinst.contains("_dh_action=restart"),
        ".deb postinst neither enables nor restarts:\n{postinst}"
    );
    let postrm = run(Command::new("dpkg-deb").arg("-I").arg(&deb).arg("postrm"));
    assert!(
        postrm.contains("rm -rf /sys/fs/bpf/hostfw /var/lib/hostfw"),
        "{postrm}"
    );

    // .rpm: files and modes, config files, scriptlets.
    let listing = run(Command::new("rpm").arg("-qlvp").arg(&rpm));
    let mut expected = COMMON.to_vec();
    expected.push(("/usr/share/zsh/site-functions/_hostfw", 0o644));
    check_files(".rpm", &files_of(&listing, false), &expected);
    let config = run(Command::new("rpm").arg("-qcp").arg(&rpm));
    for path in CONFFILES {
        assert!(
            config.lines().any(|l| l.trim() == *path),
            ".rpm: {path} is not %config:\n{config}"
        );
    }
    let info = run(Command::new("rpm").arg("-qip").arg(&rpm));
    assert!(info.contains("hostfw"), "{info}");
    let scripts = run(Command::new("rpm").arg("-qp").arg("--scripts").arg(&rpm));
    for s in ["postinstall", "preuninstall", "postuninstall"] {
        assert!(scripts.contains(s), ".rpm: no {s} scriptlet:\n{scripts}");
    }

    // The .rpm installs into a scratch root.
    let scratch = std::env::temp_dir().join(format!("hostfw-rpm-root-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).expect("scratch root");
    run(Command::new("rpm")
        .arg("--root")
        .arg(&scratch)
        .args(["--nodeps", "--noscripts", "-i"])
        .arg(&rpm));
    for (path, mode) in &expected {
        let file = scratch.join(path.trim_start_matches('/'));
        let meta = std::fs::metadata(&file)
            .unwrap_or_else(|e| panic!("rpm --root: {} not installed: {e}", file.display()));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            meta.permissions().mode() & 0o7777,
            *mode,
            "rpm --root: {} mode",
            file.display()
        );
    }
    let version = run(Command::new(scratch.join("usr/sbin/hostfw")).arg("--version"));
    assert!(version.starts_with("hostfw "), "{version}");
    std::fs::remove_dir_all(&scratch).expect("remove scratch root");
    eprintln!("package test: {:.0?}", start.elapsed());
}
