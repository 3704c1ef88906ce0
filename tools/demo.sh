#!/bin/bash
# The project's main job on this machine: boot a server through the real nova services
# (API, conductor, scheduler, placement fixture, nova-compute) with compute_driver =
# qmp.QMPDriver, QEMU under TCG; print its status and the guest's console output from
# the API, stop, start and delete it. Installs what it needs first (tools/bootstrap.sh).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export HCI_CACHE=${HCI_CACHE:-/var/cache/openstack-hci-drivers}
"$HERE/bootstrap.sh"
cd "$HERE/.."
exec "$HCI_CACHE/tools-venv/bin/tox" -q -e demo
