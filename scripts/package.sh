#!/usr/bin/env bash
# Builds the hostfw .deb and .rpm: release build, man pages and completions
# generated from the command line (`hostfw generate`), `cargo deb`,
# `cargo generate-rpm`, then lintian on the .deb (fails on errors; the
# warnings left are explained in packaging/README.md). Prints the paths of
# both packages last, one per line: `deb: PATH` and `rpm: PATH`.
# Needs cargo-deb, cargo-generate-rpm, lintian, rpm (scripts/install-deps.sh).
set -euo pipefail
# One environment for every caller: the variables cargo sets for a test
# (tests/package.rs runs this) or a shell's own make cargo rebuild the
# release binary and some dependencies, so the test suite built it three
# times. Only these pass through; the build is then shared.
if [[ -z ${HOSTFW_PACKAGE_ENV:-} ]]; then
  pass=(HOSTFW_PACKAGE_ENV=1)
  for v in PATH HOME USER TMPDIR CARGO_HOME CARGO_TARGET_DIR RUSTUP_HOME \
           http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
    [[ -n ${!v:-} ]] && pass+=("$v=${!v}")
  done
  exec env -i "${pass[@]}" bash "$0" "$@"
fi
cd "$(dirname "$0")/.."
root=$PWD
export PATH="$HOME/.cargo/bin:$PATH"

missing=()
for tool in cargo-deb cargo-generate-rpm lintian dpkg-deb rpm gzip; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
  echo "package.sh: missing ${missing[*]}; run scripts/install-deps.sh" >&2
  exit 1
fi

# Cargo's target directory may be elsewhere (CARGO_TARGET_DIR); the staging
# directory target/package/ is always in the workspace, where the paths of
# hostfw/Cargo.toml point.
target_dir=$(cargo metadata --format-version 1 --no-deps \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
out=$root/target/package

echo "package.sh: cargo build --release -p hostfw"
# aya-build relays the eBPF sub-build's progress as cargo warnings: hide them.
cargo build --release -p hostfw 2> >(grep -v '^warning: hostfw@' >&2)

rm -rf "$out"
mkdir -p "$out"
"$target_dir/release/hostfw" generate --man "$out/man" --completions "$out/completions" >/dev/null
gzip -9n "$out"/man/*.8

echo "package.sh: cargo deb"
# (cargo-deb warns that target/package/ paths are not cargo outputs: true, they
# are generated above.)
deb=$(cargo deb -p hostfw --no-build --output "$out/" 2> >(grep -v "are detected as Cargo target dir" >&2) | tail -n 1)
echo "package.sh: cargo generate-rpm"
cargo generate-rpm -p hostfw --output "$out/"
rpm=$(ls "$out"/*.rpm)

echo "package.sh: lintian $deb"
# --fail-on error: warnings and info are printed but do not fail the build.
# (Not --show-overrides: with it lintian counts overridden errors.)
lintian --fail-on error --display-info "$deb"

echo "deb: $deb"
echo "rpm: $rpm"
