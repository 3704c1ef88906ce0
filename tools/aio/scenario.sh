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
# the image of the test guest built now (its cache key in a property): replaced when the
# guest changed
key=$(basename "$tiny")
have=$(openstack image show hci-tiny -f json -c properties 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["properties"].get("hci_guest_key", "-"))' 2>/dev/null || true)
if [ "$have" != "$key" ]; then
    [ -z "$have" ] || openstack image delete hci-tiny
    # the partitioned disk image (glance's inspector refuses an unpartitioned one)
    openstack image create --disk-format qcow2 --container-format bare --public \
        --property hci_guest_key="$key" --file "$tiny/disk.qcow2" hci-tiny >/dev/null
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

# two servers on the ML2/OVN network: each asks OVN's DHCP for its address (a user-data
# script on a config drive, run by the test guest), the second pings the first; the
# result is read from its console output; both are deleted afterwards
ud=$S/data/scenario
mkdir -p "$ud"
cat >"$ud/dhcp.sh" <<'EOF2'
#!/bin/sh
printf '%s\n' '#!/bin/sh' '[ "$1" = bound ] || exit 0' \
    'ifconfig "$interface" "$ip" netmask "$subnet" mtu "${mtu:-1400}" && echo "LEASE $ip"' >/tmp/lease.sh
chmod +x /tmp/lease.sh
ip link set eth0 up
udhcpc -i eth0 -n -q -t 60 -T 2 -s /tmp/lease.sh
EOF2
openstack server delete --wait demo-peer demo-pinger >/dev/null 2>&1 || true
openstack server create --flavor m1.tiny --image hci-tiny --network demo-net \
    --config-drive true --user-data "$ud/dhcp.sh" demo-peer >/dev/null
wait_for "openstack server" demo-peer status ACTIVE 600
peer=$(openstack port list --server demo-peer -f value -c 'Fixed IP Addresses' |
    python3 -c 'import ast,sys; print(ast.literal_eval(sys.stdin.read().strip())[0]["ip_address"])')
{ cat "$ud/dhcp.sh"
  echo "for i in \$(seq 60); do ping -c 1 -W 2 $peer >/dev/null && break; done"
  echo "ping -c 3 -W 5 $peer && echo PING-\$((1+1))"; } >"$ud/pinger.sh"
openstack server create --flavor m1.tiny --image hci-tiny --network demo-net \
    --config-drive true --user-data "$ud/pinger.sh" demo-pinger >/dev/null
wait_for "openstack server" demo-pinger status ACTIVE 600
for s in demo-peer demo-pinger; do
    st=$(openstack port list --server "$s" -f value -c Status)
    [ "$st" = ACTIVE ] || die "server $s: port status $st (wanted ACTIVE)"
done
step "servers demo-peer ($peer) and demo-pinger on demo-net, both ports ACTIVE"
for _ in $(seq 300); do
    openstack console log show demo-pinger 2>/dev/null | grep -q 'USERDATA-DONE' && break
    sleep 2
done
log=$(openstack console log show demo-pinger | sed 's/\x1b\[[0-9;]*[a-zA-Z]//g')
grep -q 'USERDATA PING-2' <<<"$log" ||
    die "demo-pinger did not reach demo-peer ($peer): $(grep USERDATA <<<"$log" | tail -n 8)"
step "demo-pinger pinged demo-peer: $(grep -o '[0-9]* packets transmitted, [0-9]* packets received' <<<"$log" | tail -n1)"
openstack server delete --wait demo-peer demo-pinger
step "demo-peer and demo-pinger deleted"

cat <<EOF2

The cloud is up. Use it with:
    . $S/openrc; openstack server list
Logs: $S/logs/<service>/
Stop it:   tools/demo.sh stop     (state kept)
Start it:  tools/demo.sh start
Remove everything: tools/demo.sh destroy
EOF2
