#!/usr/bin/env bash
# Build the wheels a deployment installs on every host: zkq from this checkout and each of
# its dependencies, into build/wheelhouse and one archive of them, build/wheelhouse.tar
# (the Ansible roles copy it to the hosts and install from it with --no-index, so hosts
# need no access to PyPI).
#
# The wheels must suit the hosts' Python: Debian bookworm's 3.11 on x86_64 here, as on
# this machine.  Timestamps inside zkq's wheel come from the last commit, so rebuilding an
# unchanged checkout gives the same file and a deployment sees nothing new.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=build/wheelhouse
PIP=.venv/bin/pip
[ -x "$PIP" ] || { echo "build-wheelhouse: run scripts/bootstrap.sh first" >&2; exit 1; }

SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
export SOURCE_DATE_EPOCH
mkdir -p "$OUT"
# a stale build/lib would put files removed from the checkout into the wheel
rm -rf build/lib build/bdist.*
rm -f "$OUT"/zkq-*.whl
# (pip.conf may name local indexes this machine lacks: those warnings say nothing here)
"$PIP" wheel --quiet --wheel-dir "$OUT" . 2> >(grep -v "is ignored: it is neither" >&2)
# One file for the hosts: copying a single archive is much faster than one file at a time,
# and built the same way from the same wheels it is byte-for-byte the same archive.
tar --create --file build/wheelhouse.tar --directory "$OUT" --sort=name \
    --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner --mode=a+rX,u+w,go-w .
echo "build-wheelhouse: $(ls "$OUT" | wc -l) wheels in $OUT, archived in build/wheelhouse.tar"
