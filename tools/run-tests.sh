#!/bin/bash
# The project's default test run (what CI runs): bootstrap the machine, then tox.
#
#   tools/run-tests.sh            # tox's envlist (tox.ini): the default environments
#   tools/run-tests.sh -e py3     # any tox arguments instead
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export HCI_CACHE=${HCI_CACHE:-/var/cache/openstack-hci-drivers}
"$HERE/bootstrap.sh"
cd "$HERE/.."
exec "$HCI_CACHE/tools-venv/bin/tox" "$@"
