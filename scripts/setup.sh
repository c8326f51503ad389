#!/usr/bin/env bash
# Installs everything (idempotent), builds, and runs hostfw on this host
# with the example configuration in audit mode until Ctrl-C; then detaches.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
./scripts/install-deps.sh
quiet() { grep -v '^warning: hostfw@' || true; }
cargo build -q --release -p hostfw 2>&1 | quiet
echo "hostfw: running with examples/hostfw.toml (audit mode); Ctrl-C to detach and stop"
exec ./target/release/hostfw daemon --config examples/hostfw.toml --detach-on-exit
