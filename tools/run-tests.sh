#!/bin/bash
# The project's default test run (what CI runs): bootstrap the machine, then tox.
#
#   tools/run-tests.sh            # every environment of tox's envlist, one line each
#   tools/run-tests.sh -e py3     # any tox arguments instead (tox's own output)
#
# The default run prints one line per environment; each environment's full output goes to
# logs/tests/<env>.log (HCI_TEST_LOGS overrides the directory). Every environment runs even
# after a failure; the failed tests are repeated, short, at the end.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export HCI_CACHE=${HCI_CACHE:-/var/cache/openstack-hci-drivers}
"$HERE/bootstrap.sh"
cd "$HERE/.."
TOX="$HCI_CACHE/tools-venv/bin/tox"
started=$(mktemp)
trap 'rm -f "$started"' EXIT

show_failures() {
    # CI keeps the head and tail of the log: repeat the failed tests at the end.
    [ -x .tox/py3/bin/python ] || return 0
    local runs
    mapfile -t runs < <(find .stestr -maxdepth 1 -regex '.*/[0-9]+' \
        -newer "$started" 2>/dev/null | sort -t/ -k2 -n)
    if [ "${#runs[@]}" -gt 0 ]; then
        .tox/py3/bin/python tools/show-failures.py "${runs[@]}" || true
    fi
}

if [ "$#" -gt 0 ]; then
    rc=0
    "$TOX" "$@" || rc=$?
    [ "$rc" -eq 0 ] || show_failures
    exit "$rc"
fi

logs=${HCI_TEST_LOGS:-$PWD/logs/tests}
mkdir -p "$logs"
mapfile -t envs < <("$TOX" l --no-desc -d)
echo "==> ${#envs[@]} test environments; full output in $logs/<env>.log"
failed=()
total_start=$SECONDS
for env in "${envs[@]}"; do
    start=$SECONDS
    printf '==> %-24s ' "$env"
    if "$TOX" -e "$env" >"$logs/$env.log" 2>&1; then
        printf 'passed  %4ds\n' "$((SECONDS - start))"
    else
        printf 'FAILED  %4ds  (%s)\n' "$((SECONDS - start))" "$logs/$env.log"
        tail -n 25 "$logs/$env.log" | cut -c1-200 | sed 's/^/    /'
        failed+=("$env")
    fi
done
echo "==> $(( ${#envs[@]} - ${#failed[@]} ))/${#envs[@]} environments passed in $(( (SECONDS - total_start) / 60 )) min"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "==> failed: ${failed[*]}"
    show_failures
    exit 1
fi
