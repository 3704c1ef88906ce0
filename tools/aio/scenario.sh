#!/bin/bash
# What an operator does first with the all-in-one cloud, with the openstack CLI: the test
# guest image, a server on a neutron network, a volume attached to it, a share with an
# access rule, the server's console output. Re-runnable: it reuses what it made before.
set -Eeuo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
S=${HCI_AIO:-/var/lib/openstack-hci-aio}
export HCI_CACHE=${HCI_CACHE:-/var/cache/openstack-hci-drivers}
# shellcheck source=/dev/null
. "$S/openrc"
T0=$(date +%s)
step() { printf '[%4ds] %s\n' $(($(date +%s) - T0)) "$*"; }
die() { echo "ERROR: $*" >&2; exit 1; }
trap 'echo "ERROR: \"$BASH_COMMAND\" failed (exit $?) at ${BASH_SOURCE[0]}:$LINENO; logs: $S/logs" >&2' ERR
wait_for() {   # wait_for WHAT ID FIELD WANTED [seconds]
    local what=$1 id=$2 field=$3 want=$4 t=${5:-300} v=
    for _ in $(seq "$t"); do
        v=$($what show "$id" -f value -c "$field" 2>/dev/null || true)
        [ "$v" = "$want" ] && return 0
        case "$v" in error|ERROR|error_*)
            die "$what $id: $field=$v $($what show "$id" -f value -c fault 2>/dev/null | cut -c1-400) (logs: $S/logs/<service>/)";;
        esac
        sleep 1
    done
    die "$what $id: $field=$v after ${t}s (wanted $want)"
}

tiny=$("$HERE/../guest/build-tiny-guest.sh" "$HCI_CACHE" 2>/dev/null | tail -n1)
if ! openstack image show hci-tiny >/dev/null 2>&1; then
    # the partitioned disk image (glance's inspector refuses an unpartitioned one)
    openstack image create --disk-format qcow2 --container-format bare --public \
        --file "$tiny/disk.qcow2" hci-tiny >/dev/null
fi
step "image hci-tiny: $(openstack image show hci-tiny -f value -c status)"
if ! openstack network show demo-net >/dev/null 2>&1; then
    openstack network create demo-net >/dev/null
    openstack subnet create --network demo-net --subnet-range 10.42.0.0/24 demo-subnet >/dev/null
fi
step "network demo-net (ML2/OVN, geneve)"
if ! openstack server show demo-server >/dev/null 2>&1; then
    openstack server create --flavor m1.tiny --image hci-tiny --network demo-net \
        demo-server >/dev/null
fi
wait_for "openstack server" demo-server status ACTIVE 600
step "server demo-server ACTIVE on $(openstack server show demo-server -f value -c OS-EXT-SRV-ATTR:host), addresses $(openstack server show demo-server -f value -c addresses)"
if ! openstack volume show demo-volume >/dev/null 2>&1; then
    openstack volume create --size 1 demo-volume >/dev/null
fi
wait_for "openstack volume" demo-volume status available 300 2>/dev/null ||
    [ "$(openstack volume show demo-volume -f value -c status)" = in-use ]
step "volume demo-volume on zfs_cinder: $(openstack volume show demo-volume -f value -c status)"
if [ "$(openstack volume show demo-volume -f value -c status)" = available ]; then
    openstack server add volume demo-server demo-volume >/dev/null
fi
wait_for "openstack volume" demo-volume status in-use 300
step "volume demo-volume attached to demo-server"
if ! openstack share show demo-share >/dev/null 2>&1; then
    openstack share create NFS 1 --name demo-share --share-type default >/dev/null
fi
wait_for "openstack share" demo-share status available 300
if [ -z "$(openstack share access list demo-share -f value -c id 2>/dev/null)" ]; then
    openstack share access create demo-share ip 10.42.0.0/24 >/dev/null
fi
step "share demo-share on zfs_manila: $(openstack share show demo-share -f value -c status), access rule 10.42.0.0/24, export $(openstack share export location list demo-share -f value -c Path | head -n1)"
marker=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["markers"]["ready"])' "$tiny/manifest.json")
for _ in $(seq 300); do
    openstack console log show demo-server 2>/dev/null | grep -q "$marker" && break
    sleep 2
done
step "console output of demo-server (last lines):"
openstack console log show --lines 15 demo-server | sed 's/\x1b\[[0-9;]*[a-zA-Z]//g; s/^/    /'
cat <<EOF2

The cloud is up. Use it with:
    . $S/openrc; openstack server list
Logs: $S/logs/<service>/
Stop it:   tools/demo.sh stop     (state kept)
Start it:  tools/demo.sh start
Remove everything: tools/demo.sh destroy
EOF2
