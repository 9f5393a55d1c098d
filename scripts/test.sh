#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit + integration + end-to-end tests, and the
# fuzz target build. End-to-end tests need the Debian packages `prometheus` (promtool) and
# `prometheus-node-exporter`; `.ci/run` installs them.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/vigie/target}"

step() { printf '\n== %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

step "tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --no-fail-fast
else
  cargo test --no-fail-fast
fi

step "Helm chart: lint, render and validate offline (tests/chart/check.sh)"
tests/chart/check.sh

step "fuzz target builds (fuzz/fuzz_targets/exposition.rs)"
cargo check --manifest-path fuzz/Cargo.toml --bins
