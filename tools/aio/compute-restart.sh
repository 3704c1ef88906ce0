#!/bin/bash
# A nova-compute restart while the cloud is busy (tox -e tempest: tools/aio/tempest-job.sh
# runs it beside tempest). A server of its own, hci-canary, boots first and its QEMU
# process is recorded; DELAY seconds after the start nova-compute is restarted as a
# service manager would (tools/aio/aio.sh restart nova-compute: SIGTERM, started again,
# waited for until it reports). 'check' afterwards: the server ACTIVE and running, with
# the same QEMU process (the guests are not nova-compute's children), nova-compute's PID
# a new one; the server is deleted.
#
#   tools/aio/compute-restart.sh run DELAY    boot hci-canary, restart nova-compute
#   tools/aio/compute-restart.sh check        after the run
#   tools/aio/compute-restart.sh clean        delete hci-canary (after a failure)
set -Eeuo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
S=${HCI_AIO:-/var/lib/openstack-hci-aio}
D=$S/data/compute-restart
T0=$(date +%s)
step() { printf '[%4ds] compute-restart: %s\n' $(($(date +%s) - T0)) "$*"; }
die() { echo "ERROR: compute-restart: $*" >&2; exit 1; }
trap 'echo "ERROR: \"$BASH_COMMAND\" failed (exit $?) at ${BASH_SOURCE[0]}:$LINENO; logs: $S/logs" >&2' ERR
[ "$(id -u)" = 0 ] || die "run as root (it restarts the cloud's nova-compute)"
# shellcheck source=/dev/null
. "$S/openrc"

qemu_pid() {   # qemu_pid UUID: the QEMU process whose command line has -uuid UUID
    python3 - "$1" <<'PY'
import os, sys
uuid = sys.argv[1].encode()
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        with open("/proc/%s/cmdline" % pid, "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        continue
    if os.path.basename(argv[0]).startswith(b"qemu-system") and \
            any(a == b"-uuid" and b == uuid for a, b in zip(argv, argv[1:])):
        print(pid)
PY
}
server() { openstack server show hci-canary -f value -c "$1"; }

do_run() {
    local delay=$1 id pid
    [[ $delay =~ ^[0-9]+$ ]] || die "DELAY must be seconds, not '$delay'"
    rm -rf "$D"
    mkdir -p "$D"
    openstack server delete --wait hci-canary >/dev/null 2>&1 || true
    openstack server create --flavor m1.tiny --image hci-tiny --network demo-net hci-canary >/dev/null
    id=$(server id)
    echo "$id" >"$D/server"
    for _ in $(seq 600); do
        case $(server status) in
            ACTIVE) break ;;
            ERROR) die "hci-canary went to ERROR: $(server fault | cut -c1-300)" ;;
        esac
        sleep 1
    done
    [ "$(server status)" = ACTIVE ] || die "hci-canary not ACTIVE after 600 s"
    pid=$(qemu_pid "$id")
    [[ $pid =~ ^[0-9]+$ ]] || die "no single QEMU process for hci-canary ($id): '$pid'"
    echo "$pid" >"$D/qemu-pid"
    step "hci-canary ($id) ACTIVE, QEMU PID $pid"
    while [ $(($(date +%s) - T0)) -lt "$delay" ]; do sleep 5; done
    cat "$S/run/nova-compute.pid" >"$D/compute-pid-before"
    echo $(($(date +%s) - T0)) >"$D/restart-at"
    date -u +%H:%M:%S >"$D/restart-from"
    "$HERE/aio.sh" restart nova-compute | sed 's/^/    /'
    date -u +%H:%M:%S >"$D/restart-to"
    cat "$S/run/nova-compute.pid" >"$D/compute-pid-after"
    echo $(($(date +%s) - T0 - $(cat "$D/restart-at"))) >"$D/restart-seconds"
    step "nova-compute restarted $(cat "$D/restart-at") s into the run, $(cat "$D/restart-from")-$(cat "$D/restart-to") UTC (PID $(cat "$D/compute-pid-before") -> $(cat "$D/compute-pid-after"), up again after $(cat "$D/restart-seconds") s)"
}

do_check() {
    local id pid now st power
    [ -f "$D/compute-pid-after" ] || die "no restart was recorded in $D (see the run's output)"
    id=$(cat "$D/server")
    pid=$(cat "$D/qemu-pid")
    st=$(server status)
    power=$(server OS-EXT-STS:power_state)
    now=$(qemu_pid "$id")
    [ "$(cat "$D/compute-pid-before")" != "$(cat "$D/compute-pid-after")" ] ||
        die "nova-compute's PID did not change: no restart"
    # the power state: 1 (RUNNING) from the CLI with -f value, Running in its tables
    case "$st $power" in "ACTIVE 1"|"ACTIVE Running") ;; *) false ;; esac ||
        die "hci-canary is $st, power state $power after the restart (wanted ACTIVE, Running)"
    [ "$now" = "$pid" ] || die "hci-canary's QEMU PID is '$now' after the restart, was $pid: the guest did not survive"
    step "after the run: hci-canary ACTIVE, Running, same QEMU PID $pid; nova-compute restarted $(cat "$D/restart-at") s into the run, $(cat "$D/restart-from")-$(cat "$D/restart-to") UTC (PID $(cat "$D/compute-pid-before") -> $(cat "$D/compute-pid-after"), up again after $(cat "$D/restart-seconds") s)"
    do_clean
}

do_clean() {
    openstack server delete --wait hci-canary >/dev/null 2>&1 || true
}

case "${1:-}" in
    run) do_run "${2:-}" ;;
    check) do_check ;;
    clean) do_clean ;;
    *) echo "usage: $0 run DELAY | check | clean" >&2; exit 2 ;;
esac
