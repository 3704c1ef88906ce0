#!/bin/bash
# The fixed list of upstream tempest tests (tools/aio/tempest-tests.txt) against the running
# all-in-one cloud (tools/demo.sh): tempest and its cinder and manila plugins in their own
# venv ($HCI_TEMPEST_VENV, the tox env 'tempest'; else $HCI_AIO/tempest-venv made by
# 'aio.sh install-tempest', both pinned by tools/aio/constraints-tempest.txt), a workspace
# in $HCI_AIO/tempest, tempest.conf from the cloud's openrc and the drivers' feature flags
# (devstack/lib/hci: hci_configure_tempest, shared with the devstack plugin). Prints the
# results per group (compute, image, network, volume, share); exit status 1 on a failure.
#
#   tools/aio/tempest.sh [tempest run arguments]
set -Eeuo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
HCI_DIR=$(cd "$HERE/../.." && pwd)
export HCI_CACHE=${HCI_CACHE:-/var/cache/openstack-hci-drivers}
S=${HCI_AIO:-/var/lib/openstack-hci-aio}
W=$S/tempest
trap 'echo "ERROR: \"$BASH_COMMAND\" failed (exit $?) at ${BASH_SOURCE[0]}:$LINENO; logs: $S/logs, $W" >&2' ERR
[ "$(id -u)" = 0 ] || { echo "ERROR: run as root (the cloud's state is root's)" >&2; exit 1; }
[ -f "$S/openrc" ] || { echo "ERROR: no cloud: run tools/demo.sh first" >&2; exit 1; }
if [ -n "${HCI_TEMPEST_VENV:-}" ]; then
    TV=$HCI_TEMPEST_VENV
else
    TV=$S/tempest-venv
    "$HERE/aio.sh" install-tempest
fi
[ -x "$TV/bin/tempest" ] || { echo "ERROR: no tempest in $TV" >&2; exit 1; }
# shellcheck source=/dev/null
. "$S/openrc"
export PATH=$S/venv/bin:$PATH   # the cloud's openstack CLI
# shellcheck source=devstack/lib/hci
. "$HCI_DIR/devstack/lib/hci"
# devstack's iniset for tempest.conf and the shared library (lib/hci), with tempest's Python
iniset() { HCI_PYTHON=$TV/bin/python hci_iniset "$@"; }

# what the tests boot and attach: the project's tiny test guest (partitioned disk image),
# a network of the admin's project, a multiattach volume type on zfs_cinder
"$HERE/test-resources.sh" >/dev/null
openstack volume type show zfs-multiattach >/dev/null 2>&1 ||
    openstack volume type create --property volume_backend_name=zfs \
        --property multiattach='<is> True' zfs-multiattach >/dev/null

# a fresh workspace each run, registered in a workspace file of the cloud's own (tempest
# refuses to init a name its registry, by default ~/.tempest, already holds)
rm -rf "$W" "$S/tempest-workspace.yaml"
"$TV/bin/tempest" init --name hci-aio --workspace-path "$S/tempest-workspace.yaml" "$W" >/dev/null
C=$W/etc/tempest.conf
image=$(openstack image show hci-tiny -f value -c id)
iniset "$C" DEFAULT log_file "$W/tempest.log"
iniset "$C" auth admin_username "$OS_USERNAME"
iniset "$C" auth admin_password "$OS_PASSWORD"
iniset "$C" auth admin_project_name "$OS_PROJECT_NAME"
iniset "$C" auth admin_domain_name Default
iniset "$C" auth use_dynamic_credentials True
iniset "$C" identity uri_v3 "$OS_AUTH_URL"
iniset "$C" identity auth_version v3
iniset "$C" identity region RegionOne
iniset "$C" identity-feature-enabled api_v2 False
iniset "$C" compute image_ref "$image"
iniset "$C" compute image_ref_alt "$image"
iniset "$C" compute flavor_ref 42
iniset "$C" compute flavor_ref_alt 84
iniset "$C" compute fixed_network_name demo-net
iniset "$C" compute build_timeout 600
iniset "$C" compute min_compute_nodes 1
iniset "$C" compute max_microversion latest
iniset "$C" network project_networks_reachable False
iniset "$C" network shared_physical_network False
iniset "$C" network public_network_id ""
iniset "$C" validation run_validation False
iniset "$C" image container_formats bare
iniset "$C" image disk_formats qcow2,raw
iniset "$C" volume build_timeout 300
iniset "$C" volume storage_protocol iSCSI
iniset "$C" volume vendor_name openstack-hci-drivers
iniset "$C" volume backend_names zfs
iniset "$C" volume volume_type zfs
iniset "$C" volume volume_type_multiattach zfs-multiattach
iniset "$C" volume volume_size 1
iniset "$C" volume max_microversion latest
iniset "$C" share build_timeout 300
iniset "$C" share default_share_type_name default
iniset "$C" share capability_storage_protocol NFS
iniset "$C" share backend_names zfs_manila
iniset "$C" service_available cinder True
iniset "$C" service_available neutron True
iniset "$C" service_available glance True
iniset "$C" service_available nova True
iniset "$C" service_available manila True
iniset "$C" service_available swift False
iniset "$C" service_available horizon False
hci_configure_tempest "$C"

cd "$W"
rc=0
"$TV/bin/tempest" run --concurrency "${HCI_TEMPEST_CONCURRENCY:-2}" \
    --include-list "$HERE/tempest-tests.txt" "$@" >"$W/run.log" 2>&1 || rc=$?
grep -E '^\{[0-9]+\} .* \.\.\. (FAILED|SKIPPED)' "$W/run.log" | cut -c1-300 || true
"$TV/bin/stestr" last --subunit | "$TV/bin/python" "$HERE/tempest_summary.py" || rc=1
echo "tempest output: $W/run.log, tempest log: $W/tempest.log, service logs: $S/logs"
exit "$rc"
