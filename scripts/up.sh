#!/usr/bin/env bash
# Brings the whole Careline platform up locally with the demo tenant, on a
# fresh Debian machine that has only the Rust toolchain. Installs
# redis-server and nats-server, then builds and runs `careline up`, which
# starts them as child processes under .careline/, applies
# deploy/tenants/demo-health.yaml, runs every service in one process and
# prints each endpoint. Ctrl-C stops everything.
#
#   scripts/up.sh            # extra arguments go to `careline up`
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$CARELINE_ROOT"

say "checking runtime dependencies: redis-server, nats-server"
need_apt_packages redis-server
ensure_nats_server
add_sbin_to_path

say "building and starting Careline (release build; the first one takes a few minutes)"
say "cargo run --release -p careline -- up $*"
exec cargo run --release -p careline -- up "$@"
