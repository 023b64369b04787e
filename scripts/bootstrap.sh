#!/usr/bin/env bash
# Prepare this machine to run zkq locally: Debian packages, then the Python venv.
#
# Idempotent: a second run changes nothing and touches the network only if something is
# missing.  Installing packages needs root (or sudo); when everything is there already it
# runs as any user.  Debian's zookeeper service is never left running or enabled: the
# local cluster starts its own JVMs (`zkq dev up`), one per node, on free ports.
set -euo pipefail

cd "$(dirname "$0")/.."

VENV=.venv
STAMP="$VENV/.bootstrap-stamp"
PACKAGES=(zookeeper default-jre-headless mariadb-server haproxy)
# `bootstrap.sh --deploy`: also what deploying with Ansible and its test need (the test
# hosts are Debian roots made by debootstrap, reaching the mirror through apt-cacher-ng).
if [ "${1:-}" = "--deploy" ]; then
    PACKAGES+=(ansible ansible-lint debootstrap apt-cacher-ng openssh-client)
fi

say() { echo "bootstrap: $*" >&2; }
die() { say "error: $*"; exit 1; }

installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        die "need root to run: $* (run this script as root, or install sudo)"
    fi
}

# -- Debian packages ------------------------------------------------------------------------
command -v dpkg-query >/dev/null || die "not a Debian system: install ${PACKAGES[*]} by hand"

python=$(command -v python3) || die "no python3 on PATH: install python3 (3.11 or newer)"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    die "$python is $("$python" -V 2>&1); zkq needs Python 3.11 or newer first on PATH"

missing=()
for pkg in "${PACKAGES[@]}"; do
    installed "$pkg" || missing+=("$pkg")
done
# Debian's python3 splits venv/ensurepip into python3-venv; another python3 on PATH (pyenv,
# a source build) brings its own, and then the Debian package is not needed.
if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
    installed python3-venv || missing+=(python3-venv)
fi

if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "${missing[@]}"
fi

# Bookworm's zookeeper ships no service, older releases (and zookeeperd) do: stop and
# disable it wherever it exists, since it would hold port 2181 and a JVM's worth of memory.
if [ -d /run/systemd/system ] && systemctl list-unit-files zookeeper.service 2>/dev/null |
    grep -q '^zookeeper\.service'; then
    if systemctl is-active --quiet zookeeper || systemctl is-enabled --quiet zookeeper; then
        say "stopping and disabling the zookeeper service"
        as_root systemctl disable --now zookeeper
    fi
elif [ -x /etc/init.d/zookeeper ]; then
    say "stopping and disabling the zookeeper init script"
    as_root /etc/init.d/zookeeper stop || true
    as_root update-rc.d zookeeper disable || true
fi

# -- Python ---------------------------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV with $python"
    "$python" -m venv "$VENV"
    rm -f "$STAMP"
fi
"$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    die "$VENV was made with $("$VENV/bin/python" -V 2>&1): remove it (rm -rf $VENV) and run again"

# Reinstall only when the dependencies may have changed.
if [ ! -e "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ]; then
    say "installing zkq and its dependencies into $VENV"
    "$VENV/bin/pip" install --quiet -e '.[dev]'
    touch "$STAMP"
fi
say "ready"
