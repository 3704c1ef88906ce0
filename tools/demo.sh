#!/bin/bash
# The project's main job on this machine, for now: boot the test guest under QEMU (TCG),
# show its console, press its ACPI power button and clean up. The nova_qmp driver replaces
# this with a server booted through the real nova services.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export HCI_CACHE=${HCI_CACHE:-/var/cache/openstack-hci-drivers}
"$HERE/bootstrap.sh"
cd "$HERE/.."
exec "$HCI_CACHE/tools-venv/bin/tox" -q -e demo
