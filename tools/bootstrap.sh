#!/bin/bash
# Prepare a Debian 12 machine for this project's tests and demo. Idempotent; run as root.
#
#   tools/bootstrap.sh
#
# Installs the Debian packages the tests need, a small virtualenv holding tox
# ($HCI_CACHE/tools-venv), and builds (or finds in the cache) the test guest images.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export HCI_CACHE=${HCI_CACHE:-/var/cache/openstack-hci-drivers}
log() { echo "bootstrap: $*" >&2; }

[ "$(id -u)" = 0 ] || { log "run as root (it installs Debian packages)"; exit 1; }

PACKAGES=(
    # QEMU under TCG, qemu-img, config drives
    qemu-system-x86 qemu-utils genisoimage
    # QEMU's own iSCSI initiator (libiscsi block driver) and a userspace iSCSI target
    # for its tests (tgtd, started by the tests only)
    qemu-block-extra tgt
    # ZFS in userspace (datasets) and exportfs for the manila driver's tests
    zfs-fuse nfs-kernel-server
    # LXC and what the Python binding builds against
    lxc lxc-dev gcc libc6-dev
    # test guest images: busybox userland, kernel modules, bootable disk
    busybox-static kmod cpio gzip zstd dosfstools mtools syslinux syslinux-common fdisk
    # the kernel-OpenZFS test guest (debootstrap + chroot builds)
    debootstrap e2fsprogs
    # networking in tests (namespaces, bridges, taps), ssh to test guests; sudo and sshd
    # for the benchmarks' upstream drivers (rootwrap, ssh to themselves)
    iproute2 openssh-client openssh-server sudo
    # guest confinement: ACLs on instance files, setpriv (util-linux) in tests
    acl util-linux
    # Open vSwitch (userspace datapath) and OVN carrying the guests' traffic in the
    # networking tests (started by the tests themselves, never as system services)
    openvswitch-switch ovn-central ovn-host
    # Open vSwitch built with DPDK (its own ovs-vswitchd, alternative of lower priority:
    # /usr/sbin/ovs-vswitchd stays the plain one) and DPDK's ring mempool driver (a
    # plugin, only recommended) for the vhost-user test, run without hugepages
    openvswitch-switch-dpdk librte-mempool-ring23
    # Python for tox and the test virtualenvs
    python3 python3-venv python3-dev git
    # the all-in-one cloud (tools/demo.sh): database, message queue, QEMU's iSCSI
    # initiator; shellcheck for the devstack plugin's unit test
    mariadb-server rabbitmq-server qemu-block-extra shellcheck
    # etcd for cinder's coordination in the active-active test (started by the test on
    # loopback; the package's own service is not used)
    etcd-server
)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' \
        || missing+=("$p")
done
newest_list=$(find /var/lib/apt/lists -maxdepth 1 -name '*Release' -printf '%T@\n' 2>/dev/null \
    | sort -n | tail -n1 | cut -d. -f1)
lists_age=$(( $(date +%s) - ${newest_list:-0} ))
if [ ${#missing[@]} -gt 0 ] || [ $lists_age -gt 86400 ]; then
    # fresh lists: the guest builders resolve the current Debian kernel from them
    log "apt-get update"
    apt-get update -q >/dev/null
fi
if [ ${#missing[@]} -gt 0 ]; then
    log "installing: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${missing[@]}" >/dev/null
fi

# tox with tox-uv (uv makes the envs' virtualenvs: 2 to 30 s where pip took 40 to 70 s
# for nova's, cinder's or manila's tree), in a virtualenv of its own
TOOLS_VENV=$HCI_CACHE/tools-venv
if ! "$TOOLS_VENV/bin/tox" --version 2>/dev/null | grep -q tox-uv; then
    log "creating $TOOLS_VENV"
    mkdir -p "$HCI_CACHE/logs"
    if ! { python3 -m venv "$TOOLS_VENV" &&
           "$TOOLS_VENV/bin/pip" install -q -U pip &&
           "$TOOLS_VENV/bin/pip" install -q 'tox>=4.11,<5' 'tox-uv>=1.11,<2'
         } >"$HCI_CACHE/logs/tools-venv.log" 2>&1; then
        tail -n 20 "$HCI_CACHE/logs/tools-venv.log" >&2
        log "creating $TOOLS_VENV failed (log: $HCI_CACHE/logs/tools-venv.log)"
        exit 1
    fi
fi

# /dev/net/tun as udev leaves it on Debian (0666: opening it grants nothing by itself);
# these machines run no udev and keep it 0600. Guests attach to their taps through it.
if [ -c /dev/net/tun ] && [ "$(stat -c %a /dev/net/tun)" != 666 ]; then
    chmod 0666 /dev/net/tun
fi

# test guest images (cached by their inputs; the ZFS guest takes ~5 min from scratch)
# The builders' own progress lines are shown; debootstrap's and apt's output goes to
# $HCI_CACHE/logs/<builder>.log, and its end is shown only if the build fails.
build_guest() {
    local b=$1 logf=$HCI_CACHE/logs/$1.log rc
    mkdir -p "$HCI_CACHE/logs"
    set +e
    "$HERE/guest/$b.sh" "$HCI_CACHE" 2>&1 >/dev/null \
        | tee "$logf" | grep --line-buffered "^$b.sh: " >&2
    rc=${PIPESTATUS[0]}
    set -e
    if [ "$rc" -ne 0 ]; then
        tail -n 20 "$logf" >&2
        log "$b.sh failed (exit $rc; whole log: $logf)"
        exit "$rc"
    fi
}
build_guest build-tiny-guest
build_guest build-zfs-guest
log "ready (cache: $HCI_CACHE)"
