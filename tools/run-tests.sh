#!/bin/bash
# The project's default test run (what CI runs): bootstrap the machine, then tox.
#
#   tools/run-tests.sh            # tox's envlist (tox.ini): the default environments
#   tools/run-tests.sh -e py3     # any tox arguments instead
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export HCI_CACHE=${HCI_CACHE:-/var/cache/openstack-hci-drivers}
"$HERE/bootstrap.sh"
cd "$HERE/.."
started=$(mktemp)
trap 'rm -f "$started"' EXIT
rc=0
"$HCI_CACHE/tools-venv/bin/tox" "$@" || rc=$?
if [ "$rc" -ne 0 ] && [ -x .tox/py3/bin/python ]; then
    # CI keeps the head and tail of the log: repeat the failures at the end.
    mapfile -t runs < <(find .stestr -maxdepth 1 -regex '.*/[0-9]+' \
        -newer "$started" 2>/dev/null | sort -t/ -k2 -n)
    if [ "${#runs[@]}" -gt 0 ]; then
        .tox/py3/bin/python tools/show-failures.py "${runs[@]}" || true
    fi
fi
exit "$rc"
