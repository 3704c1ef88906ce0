#!/bin/bash
# The project's main job: an all-in-one OpenStack cloud on this machine with this
# project's drivers (nova-compute on qmp.QMPDriver, cinder-volume on zfs_cinder,
# manila-share on zfs_manila, neutron ML2/OVN), then a server, a volume and a share
# through the openstack CLI (tools/aio/scenario.sh).
#
#   tools/demo.sh           install, set up (once), start, run the scenario
#   tools/demo.sh stop      stop the cloud (state kept)
#   tools/demo.sh start     start it again
#   tools/demo.sh status | destroy
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export HCI_CACHE=${HCI_CACHE:-/var/cache/openstack-hci-drivers}
case "${1:-up}" in
    up)
        echo "bootstrapping the machine (tools/bootstrap.sh)"
        "$HERE/bootstrap.sh" >/dev/null
        "$HERE/aio/aio.sh" up
        "$HERE/aio/scenario.sh"
        ;;
    *) exec "$HERE/aio/aio.sh" "$@" ;;
esac
