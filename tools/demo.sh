#!/bin/bash
# The project's main job: an all-in-one OpenStack cloud on this machine with this
# project's drivers (nova-compute on qmp.QMPDriver, cinder-volume on zfs_cinder,
# manila-share on zfs_manila, neutron ML2/OVN), then a server, a volume and a share
# through the openstack CLI (tools/aio/scenario.sh).
#
#   tools/demo.sh           install, set up (once), start, run the scenario
#   tools/demo.sh stop      stop the cloud (state kept; the running servers are stopped)
#   tools/demo.sh start     start it again (and the servers), then check the scenario's
#                           server: ACTIVE, booted again, its volume attached, its data
#   tools/demo.sh restart   stop, then start
#   tools/demo.sh status | destroy
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
S=${HCI_AIO:-/var/lib/openstack-hci-aio}
export HCI_CACHE=${HCI_CACHE:-/var/cache/openstack-hci-drivers}
running() { [ -f "$S/openrc" ] && curl -s -o /dev/null -m 5 "http://127.0.0.1:${HCI_AIO_PORT_BASE:-42000}/v3"; }
stop() {
    # how often the scenario's server booted, for the check after the start
    if running; then "$HERE/aio/scenario.sh" record; fi
    "$HERE/aio/aio.sh" stop
}
start() {
    "$HERE/aio/aio.sh" start
    "$HERE/aio/scenario.sh" check
}
case "${1:-up}" in
    up)
        echo "bootstrapping the machine (tools/bootstrap.sh)"
        "$HERE/bootstrap.sh" >/dev/null
        "$HERE/aio/aio.sh" up
        "$HERE/aio/scenario.sh"
        ;;
    stop) stop ;;
    start) start ;;
    restart) stop; start ;;
    *) exec "$HERE/aio/aio.sh" "$@" ;;
esac
