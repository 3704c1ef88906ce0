#!/bin/bash
# Install (or remove) this project's rootwrap filters and sudoers rule for one service,
# the way an operator or devstack/plugin.sh does.
#
#   tools/install-privsep-config.sh nova|cinder|manila [ROOTWRAP]    # install
#   tools/install-privsep-config.sh --remove nova|cinder|manila      # remove
#
# ROOTWRAP is the absolute path of <service>-rootwrap (default: the one on PATH); it
# replaces /usr/bin/<service>-rootwrap in the sudoers rule. Installs (NAME: zfs-cinder,
# zfs-manila, openstack-hci-nova)
#   /etc/<service>/rootwrap.d/NAME.filters   (0644)
#   /etc/sudoers.d/NAME                       (0440, checked with visudo -cf)
# and prints the paths it installed. Needs root.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
remove=0
if [ "${1:-}" = "--remove" ]; then
    remove=1
    shift
fi
service=${1:?usage: $0 [--remove] nova|cinder|manila [ROOTWRAP]}
case "$service" in
    cinder|manila) name=zfs-$service ;;
    nova) name=openstack-hci-nova ;;
    *) echo "unknown service: $service (nova, cinder or manila)" >&2; exit 2 ;;
esac
filters=/etc/$service/rootwrap.d/$name.filters
sudoers=/etc/sudoers.d/$name
if [ "$remove" = 1 ]; then
    rm -f "$filters" "$sudoers"
    exit 0
fi
rootwrap=${2:-$(command -v "$service-rootwrap" || true)}
case "$rootwrap" in
    /*) ;;
    *) echo "$service-rootwrap not found: give its absolute path" >&2; exit 2 ;;
esac
install -d -m 0755 "/etc/$service/rootwrap.d"
install -m 0644 "$HERE/etc/$service/rootwrap.d/$name.filters" "$filters"
tmp=$(mktemp /etc/sudoers.d/.$name.XXXXXX)
trap 'rm -f "$tmp"' EXIT
sed "s|/usr/bin/$service-rootwrap |$rootwrap |" "$HERE/etc/sudoers.d/$name" > "$tmp"
chmod 0440 "$tmp"
visudo -cqf "$tmp"
mv -f "$tmp" "$sudoers"
echo "$filters"
echo "$sudoers"
