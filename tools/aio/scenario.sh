#!/bin/bash
# What an operator does first with the all-in-one cloud, with the openstack CLI: the test
# guest image, a server on a neutron network, a volume attached to it, a share with an
# access rule, the server's console output. Re-runnable: it reuses what it made before.
# The server writes a token into its volume at its first boot and reads it back at every
# later one (a user-data script on its config drive), so that a restart of the cloud can
# be checked from inside the guest:
#
#   tools/aio/scenario.sh           the scenario
#   tools/aio/scenario.sh record    before a stop: how often demo-server has booted
#   tools/aio/scenario.sh check     after a start: demo-server ACTIVE again, booted again,
#                                   demo-volume attached, the token read back from it
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

console() {   # console SERVER: its console output, without terminal escapes
    openstack console log show "$1" 2>/dev/null | sed 's/\x1b\[[0-9;]*[a-zA-Z]//g'
}
ud=$S/data/scenario
BOOTS=$ud/demo-server-boots TOKEN=$ud/demo-volume-token
boots() { console demo-server | grep -c 'HCIGUEST BOOTED' || true; }
# what demo-server's user data reported of its volume at its latest boot, "VOLUME <dev>
# wrote|found <token>" (nothing until it did)
volume_since_boot() {
    console demo-server | awk '/HCIGUEST BOOTED/ { v = "" } /HCIGUEST USERDATA VOLUME / { v = $0 } END { print v }' |
        grep -o 'VOLUME .*' || true
}

if [ "${1:-}" = record ]; then
    if openstack server show demo-server >/dev/null 2>&1; then
        boots >"$BOOTS"
        step "demo-server has booted $(cat "$BOOTS") time(s)"
    fi
    exit 0
fi
if [ "${1:-}" = check ]; then
    if ! openstack server show demo-server >/dev/null 2>&1; then
        step "no demo-server (tools/demo.sh makes it): nothing to check"; exit 0
    fi
    id=$(openstack server show demo-server -f value -c id)
    st=$(openstack server show demo-server -f value -c status)
    [ "$st" = ACTIVE ] || die "demo-server is $st after the start (wanted ACTIVE; log: $S/logs/nova/nova-compute.log)"
    before=$(cat "$BOOTS" 2>/dev/null || echo 1)
    for _ in $(seq 300); do
        [ "$(boots)" -gt "$before" ] && break
        sleep 2
    done
    [ "$(boots)" -gt "$before" ] ||
        die "demo-server ACTIVE but its console shows no new boot ($(boots) boots, $before before the stop)"
    att=$(openstack volume show demo-volume -f json -c status -c attachments |
        python3 -c 'import json,sys; v=json.load(sys.stdin); print(v["status"], *[a["server_id"] for a in v["attachments"]])')
    [ "$att" = "in-use $id" ] || die "demo-volume: status and attachments '$att' (wanted in-use $id)"
    # the user data runs after each boot; it reads the volume once the disk is there
    for _ in $(seq 300); do
        [ -n "$(volume_since_boot)" ] && break
        sleep 2
    done
    last=$(volume_since_boot)
    want=$(cat "$TOKEN" 2>/dev/null) || die "no token recorded in $TOKEN (run tools/demo.sh first)"
    case $last in
        "VOLUME "*" found $want") ;;
        *) die "demo-server's volume after the restart: '${last:-no report from the guest}' (wanted the token $want)" ;;
    esac
    rm -f "$BOOTS"
    step "demo-server ACTIVE, booted again ($(boots) boots), demo-volume attached, its data intact (${last#VOLUME })"
    step "console output of demo-server (last lines):"
    openstack console log show --lines 12 demo-server | sed 's/\x1b\[[0-9;]*[a-zA-Z]//g; s/^/    /'
    exit 0
fi

tiny=$("$HERE/test-resources.sh")
step "image hci-tiny: $(openstack image show hci-tiny -f value -c status)"
step "network demo-net (ML2/OVN, geneve)"
mkdir -p "$ud"
# demo-server's user data: the attached volume is the disk that is neither the root disk
# (vda) nor the config drive; at the first boot it gets a token in its first sector, at
# every later boot the token is read back (its own names: the user data is not the
# guest's init, HCIGUEST is)
cat >"$ud/volume.sh" <<'EOF2'
#!/bin/sh
cfg=$(findfs LABEL=config-2 2>/dev/null); cfg=${cfg#/dev/}
vol=
for i in $(seq 600); do
    for d in /sys/block/vd* /sys/block/sd*; do
        n=${d##*/}
        if [ -e "$d" ] && [ "$n" != vda ] && [ "$n" != "$cfg" ] && [ -b "/dev/$n" ]; then vol=$n; break 2; fi
    done
    sleep 1
done
[ -n "$vol" ] || { echo "VOLUME none"; exit 0; }
data=$(head -c 80 "/dev/$vol" | tr -d '\000' | head -n 1)
case $data in
    "HCIDATA "*) echo "VOLUME $vol found ${data#HCIDATA }" ;;
    *) tok=$(cat /proc/sys/kernel/random/uuid)
       printf 'HCIDATA %s\n' "$tok" | dd of="/dev/$vol" conv=fsync 2>/dev/null && sync &&
           echo "VOLUME $vol wrote $tok" || echo "VOLUME $vol write failed" ;;
esac
EOF2
if ! openstack server show demo-server >/dev/null 2>&1; then
    openstack server create --flavor m1.tiny --image hci-tiny --network demo-net \
        --config-drive true --user-data "$ud/volume.sh" demo-server >/dev/null
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
if [ "$(openstack server show demo-server -f value -c config_drive)" = True ]; then
    for _ in $(seq 300); do
        [ -n "$(volume_since_boot)" ] && break
        sleep 2
    done
    v=$(volume_since_boot)
    case $v in
        "VOLUME "*" wrote "*) echo "${v##* }" >"$TOKEN" ;;
        "VOLUME "*" found "*) [ "${v##* }" = "$(cat "$TOKEN" 2>/dev/null)" ] ||
            die "demo-server read '${v##* }' from demo-volume, not the token written ($(cat "$TOKEN" 2>/dev/null))" ;;
        *) die "demo-server did not report its volume: '${v:-nothing}' (console: openstack console log show demo-server)" ;;
    esac
    step "demo-server ${v#VOLUME } (a token in demo-volume's first sector, from inside the guest)"
else
    step "demo-server predates the volume check (no config drive): not checked"
fi
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
Start it:  tools/demo.sh start    (and checks demo-server and the data on its volume)
Remove everything: tools/demo.sh destroy
EOF2
