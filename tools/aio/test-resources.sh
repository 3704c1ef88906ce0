#!/bin/bash
# What the scenario, tempest and the restart check boot on, made once and reused: the
# project's tiny test guest as image hci-tiny (its partitioned disk image; replaced when
# the guest was rebuilt, its cache key in property hci_guest_key) and the network
# demo-net with subnet demo-subnet (ML2/OVN, geneve). Needs the cloud's openrc.
#
#   tools/aio/test-resources.sh     prints the guest's artifact directory
set -Eeuo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
S=${HCI_AIO:-/var/lib/openstack-hci-aio}
export HCI_CACHE=${HCI_CACHE:-/var/cache/openstack-hci-drivers}
trap 'echo "ERROR: \"$BASH_COMMAND\" failed (exit $?) at ${BASH_SOURCE[0]}:$LINENO; logs: $S/logs" >&2' ERR
# shellcheck source=/dev/null
. "$S/openrc"
tiny=$("$HERE/../guest/build-tiny-guest.sh" "$HCI_CACHE" 2>/dev/null | tail -n1)
[ -f "$tiny/disk.qcow2" ] || { echo "ERROR: no tiny guest image (tools/guest/build-tiny-guest.sh)" >&2; exit 1; }
key=$(basename "$tiny")
have=$(openstack image show hci-tiny -f json -c properties 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["properties"].get("hci_guest_key", "-"))' 2>/dev/null || true)
if [ "$have" != "$key" ]; then
    [ -z "$have" ] || openstack image delete hci-tiny
    # the partitioned disk image (glance's inspector refuses an unpartitioned one)
    openstack image create --disk-format qcow2 --container-format bare --public \
        --property hci_guest_key="$key" --file "$tiny/disk.qcow2" hci-tiny >/dev/null
fi
if ! openstack network show demo-net >/dev/null 2>&1; then
    openstack network create demo-net >/dev/null
    openstack subnet create --network demo-net --subnet-range 10.42.0.0/24 demo-subnet >/dev/null
fi
echo "$tiny"
