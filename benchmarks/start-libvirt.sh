#!/bin/bash
# Start Debian 12's libvirtd (and virtlogd) without systemd, for the nova benchmark's
# libvirt side. Idempotent; run as root. Installs the packages it needs.
set -euo pipefail
need=()
for p in libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients libvirt-dev tini pkg-config; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi
# the user and directories libvirt-daemon-system would create (that package needs systemd)
getent passwd libvirt-qemu >/dev/null || useradd --system --user-group --no-create-home \
    --home-dir /var/lib/libvirt --shell /usr/sbin/nologin libvirt-qemu
mkdir -p /var/log/libvirt/qemu /var/lib/libvirt/qemu /var/lib/libvirt/images /var/cache/libvirt/qemu
# guests run as root, in the caller's cgroups (no cgroup controllers managed by libvirt)
[ -e /etc/libvirt/qemu.conf ] || \
    printf 'user = "root"\ngroup = "root"\ncgroup_controllers = [ ]\n' > /etc/libvirt/qemu.conf
# LIBVIRT_SETUP_ONLY=1: packages, user and configuration only (benchmarks/nova_net.py
# starts its own daemons in a namespace of its own)
[ -z "${LIBVIRT_SETUP_ONLY:-}" ] || exit 0
[ -e /run/virtlogd.pid ] && kill -0 "$(cat /run/virtlogd.pid)" 2>/dev/null || virtlogd -d
# under a child subreaper: libvirt's destroy waits until the double-forked QEMU is reaped
if ! virsh -c qemu:///system uri >/dev/null 2>&1; then
    setsid tini -s -- libvirtd </dev/null >>/var/log/libvirt/libvirtd-fg.log 2>&1 &
fi
for _ in $(seq 100); do
    virsh -c qemu:///system uri >/dev/null 2>&1 && exit 0
    sleep 0.1
done
echo "libvirtd did not answer" >&2
tail -20 /var/log/libvirt/libvirtd-fg.log >&2
exit 1
