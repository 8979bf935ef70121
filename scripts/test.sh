#!/usr/bin/env bash
# Runs every test of the Careline workspace on a fresh Debian machine that has
# only the Rust toolchain. Installs redis-server and nats-server (the tests
# start their own instances on free loopback ports; nothing system-wide is
# started or stopped), grpcurl (an end-to-end test drives the platform with
# the real binary) and the browser test's Debian Chromium and pinned
# playwright-core (tests/browser), then runs the tests with cargo-nextest, or
# with `cargo test` when nextest is not installed. A full run starts with the deployment
# tests (scripts/test-deploy.sh: Helm chart, manifests, alert rules, Dockerfile), which
# install helm, promtool, kubernetes-validate and hadolint.
#
#   scripts/test.sh                  # every test
#   scripts/test.sh -p careline-router   # extra arguments go to the test runner
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$CARELINE_ROOT"
started_at=$SECONDS

report_elapsed() {
    local status=$? elapsed=$((SECONDS - started_at))
    if [ "$status" -eq 0 ]; then
        say "tests passed in $((elapsed / 60))m $((elapsed % 60))s"
    else
        say "tests FAILED (exit $status) after $((elapsed / 60))m $((elapsed % 60))s"
    fi
}
trap report_elapsed EXIT

say "checking test dependencies: redis-server, nats-server, grpcurl"
need_apt_packages redis-server
ensure_nats_server
add_sbin_to_path
ensure_grpcurl
if [ -x "$CARELINE_ROOT/.careline/bin/grpcurl" ]; then
    export CARELINE_GRPCURL="$CARELINE_ROOT/.careline/bin/grpcurl"
fi
ensure_nextest
say "checking the browser test's tools: chromium, node, playwright-core"
ensure_browser_tools

# `-p crate` narrows the run; otherwise every crate of the workspace.
scope=(--workspace)
for arg in "$@"; do
    case "$arg" in
        -p | -p* | --package | --package=*) scope=() ;;
    esac
done

# The chaos run (careline-e2e) starts the service binaries as child processes
# from target/<profile>/. `--workspace` builds them (router and presence have
# integration tests), `-p careline-e2e` alone does not: build them first, in
# release too when the tests run in release.
profile=()
for arg in "$@"; do
    if [ "$arg" = --release ]; then profile=(--release); fi
done
say "building careline-router, careline-presence (e2e chaos run) and careline (deploy tests)"
cargo build ${profile[@]+"${profile[@]}"} -p careline-router -p careline-presence -p careline --bins

if [ "${#scope[@]}" -gt 0 ]; then
    target_dir=debug
    if [ "${#profile[@]}" -gt 0 ]; then target_dir=release; fi
    say "running the deployment tests: scripts/test-deploy.sh"
    CARELINE_CLI="$CARELINE_ROOT/target/$target_dir/careline" bash scripts/test-deploy.sh
fi

if [ "$CARELINE_TEST_RUNNER" = nextest ]; then
    cmd=(cargo nextest run "${scope[@]}" --no-fail-fast "$@")
else
    cmd=(cargo test "${scope[@]}" --no-fail-fast "$@")
fi
say "running tests: ${cmd[*]}"
"${cmd[@]}"
