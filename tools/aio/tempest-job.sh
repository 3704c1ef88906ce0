#!/bin/bash
# tox -e tempest: the fixed tempest list (tools/aio/tempest.sh) against the all-in-one
# cloud. A cloud that runs is used as it is; a stopped one is started and stopped again at
# the end; with no cloud, one is brought up (tools/bootstrap.sh, tools/aio/aio.sh up) and
# destroyed at the end (also on failure), so that the deployment tests, which refuse
# while the cloud's service users exist, run after it.
#
# nova-compute is restarted (tools/aio/compute-restart.sh): by default once before
# tempest, with nothing in flight (HCI_TEMPEST_COMPUTE_RESTART=before); with N (seconds)
# from a background job N seconds into the run instead (requests reaching nova-compute
# while it restarts are lost: README); 0: none. A server of its own, booted first, must
# still be ACTIVE after tempest with the same QEMU process.
set -Eeuo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export HCI_CACHE=${HCI_CACHE:-/var/cache/openstack-hci-drivers}
S=${HCI_AIO:-/var/lib/openstack-hci-aio}
[ "$(id -u)" = 0 ] || { echo "ERROR: run as root (the all-in-one cloud installs and starts services)" >&2; exit 1; }
T0=$(date +%s)
step() { printf '[%4ds] %s\n' $(($(date +%s) - T0)) "$*"; }
running() {   # keystone answers and the three drivers' services run
    local st
    [ -f "$S/openrc" ] || return 1
    # shellcheck source=/dev/null
    curl -s -o /dev/null -m 5 "$(. "$S/openrc"; echo "$OS_AUTH_URL")" || return 1
    st=$("$HERE/aio.sh" status 2>/dev/null)
    for svc in nova-compute cinder-volume manila-share; do
        grep -q "^$svc: running" <<<"$st" || return 1
    done
}
after=
if running; then
    step "the all-in-one cloud runs: using it as it is"
elif [ -f "$S/initialised" ]; then
    step "the all-in-one cloud is stopped: starting it (stopped again at the end)"
    after=stop
    "$HERE/aio.sh" stop >/dev/null 2>&1 || true   # whatever half of it still runs
    "$HERE/aio.sh" start
else
    step "no all-in-one cloud: bringing one up (destroyed at the end)"
    after=destroy
    "$HERE/../bootstrap.sh" >/dev/null
fi
KEEP=${HCI_TEMPEST_LOGS:-$HERE/../../logs/tempest}
# "before" (default): restart nova-compute once before tempest, nothing in flight; N:
# restart it N seconds into the run (requests arriving meanwhile are lost, README); 0: none
RESTART_AFTER=${HCI_TEMPEST_COMPUTE_RESTART:-before}
case $RESTART_AFTER in
    before) ;;
    ''|*[!0-9]*) echo "ERROR: HCI_TEMPEST_COMPUTE_RESTART must be 'before' or seconds, not '$RESTART_AFTER'" >&2; exit 1 ;;
esac
restarted=
restart_job=
cleanup() {
    # the restart job (a session of its own) if the run ended before it did
    if [ -n "$restart_job" ] && kill -0 "$restart_job" 2>/dev/null; then
        kill -TERM -- "-$restart_job" 2>/dev/null || true
        wait "$restart_job" 2>/dev/null || true
        "$HERE/compute-restart.sh" clean || true
    fi
    # the run's and the services' logs outlive a destroyed cloud
    mkdir -p "$KEEP"
    cp -a "$S/logs" "$KEEP/" 2>/dev/null || true
    cp -a "$S/tempest/run.log" "$S/tempest/tempest.log" "$KEEP/" 2>/dev/null || true
    [ -n "$after" ] || return 0
    step "tools/aio/aio.sh $after (the cloud was not running before this run)"
    "$HERE/aio.sh" "$after" >/dev/null || echo "ERROR: tools/aio/aio.sh $after failed" >&2
    step "done"
}
trap cleanup EXIT
[ "$after" = destroy ] && "$HERE/aio.sh" up
# the image and network that tempest and the restart job's server boot on, made once
"$HERE/test-resources.sh" >/dev/null
if [ "$RESTART_AFTER" = before ]; then
    step "nova-compute restart before tempest (tools/aio/compute-restart.sh)"
    "$HERE/compute-restart.sh" run 0 || { "$HERE/compute-restart.sh" clean || true; exit 1; }
    restarted=yes
elif [ "$RESTART_AFTER" != 0 ]; then
    step "nova-compute restart in ${RESTART_AFTER} s (tools/aio/compute-restart.sh, in the background)"
    setsid "$HERE/compute-restart.sh" run "$RESTART_AFTER" &
    restart_job=$!
fi
step "running tempest (tools/aio/tempest.sh)"
rc=0
"$HERE/tempest.sh" "$@" || rc=$?
if [ -n "$restart_job" ]; then
    crc=0
    wait "$restart_job" || crc=$?
    restart_job=
    if [ "$crc" = 0 ]; then
        "$HERE/compute-restart.sh" check || rc=1
    else
        echo "ERROR: the nova-compute restart job failed (exit $crc)" >&2
        "$HERE/compute-restart.sh" clean || true
        rc=1
    fi
fi
if [ -n "$restarted" ]; then
    "$HERE/compute-restart.sh" check || rc=1
fi
[ "$rc" = 0 ] || exit "$rc"
