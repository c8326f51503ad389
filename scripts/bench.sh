#!/usr/bin/env bash
# Verdict cost per packet at 10..100,000 rules (BPF_PROG_TEST_RUN). Root.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh >/dev/null
cargo run -q --release -p hostfw --example verdict_cost -- "${1:-1000000}" 2>&1 \
  | grep -v '^warning: hostfw@'
