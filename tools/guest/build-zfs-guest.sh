#!/bin/bash
# Build the kernel-OpenZFS test guest from Debian packages only, cached by its inputs.
#
#   tools/guest/build-zfs-guest.sh [CACHE_DIR]        -> prints the artifact directory
#   tools/guest/build-zfs-guest.sh --key [CACHE_DIR]  -> prints the cache key only
#
# HCI_ZFS_SUITE selects OpenZFS: bookworm-backports (2.3, default) or bookworm (2.1).
# Artifacts: vmlinuz, initrd.gz, root.ext4 (used read-only: tests boot it with
# snapshot=on), id_ed25519 (root's SSH key), manifest.json.
# The guest runs Debian bookworm with the Debian cloud kernel (the host kernel does not
# matter), OpenZFS built with dkms for that kernel, sshd, the kernel NFS server, the LIO
# target (python3-rtslib-fb, targetcli-fb), the NVMe-oF target modules, open-iscsi, and LVM
# with thin pools (device-mapper; for the cinder benchmark's LVM side). python3-oslo.i18n
# lets cinder's rtstool run in the guest when a test installs it there.
# About 5 minutes from scratch on 2 cores; then only the cache lookup.
set -euo pipefail
KEY_ONLY=0
if [ "${1:-}" = --key ]; then KEY_ONLY=1; shift; fi
HERE=$(cd "$(dirname "$0")" && pwd)
FILES=$HERE/zfs
CACHE=${1:-${HCI_CACHE:-/var/cache/openstack-hci-drivers}}
KFLAVOUR=${HCI_GUEST_KERNEL_FLAVOUR:-cloud-amd64}
SUITE=${HCI_ZFS_SUITE:-bookworm-backports}
MIRROR=${HCI_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECMIRROR=${HCI_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
GUEST_PKGS="zfsutils-linux udev kmod iproute2 procps openssh-server nfs-kernel-server
    targetcli-fb python3-rtslib-fb open-iscsi nvme-cli util-linux e2fsprogs
    lvm2 thin-provisioning-tools python3-oslo.i18n"
. "$HERE/lib.sh"
case $SUITE in
    bookworm|bookworm-backports) ;;
    *) log "HCI_ZFS_SUITE must be bookworm or bookworm-backports"; exit 2 ;;
esac

KPKG=$(kernel_pkg)
if [ -z "$KPKG" ]; then
    newest_build "zfs-guest-$SUITE" || { log "cannot resolve linux-image-$KFLAVOUR"; exit 1; }
    exit 0
fi
KVER=${KPKG#linux-image-}
KEY=$( (cat "$0" "$HERE/lib.sh" "$FILES"/*; echo "$KPKG $SUITE $GUEST_PKGS") \
       | sha256sum | cut -c1-16)
OUT=$CACHE/zfs-guest-$SUITE/$KEY
if [ $KEY_ONLY = 1 ]; then echo "$KEY"; exit 0; fi
if [ -f "$OUT/manifest.json" ]; then echo "$OUT"; exit 0; fi

log "building $OUT (kernel $KVER, OpenZFS from $SUITE)"
mkdir -p "$CACHE/zfs-guest-$SUITE" "$CACHE/debs/archives" "$CACHE/debs/debootstrap"
W=$(mktemp -d "$CACHE/zfs-guest-$SUITE/.build.XXXXXX")
MOUNTED=()
cleanup() {
    local m
    for m in "${MOUNTED[@]}"; do umount -l "$m" 2>/dev/null || true; done
    rm -rf --one-file-system "$W"
}
trap cleanup EXIT

in_chroot() { chroot "$1" env DEBIAN_FRONTEND=noninteractive LC_ALL=C "${@:2}"; }
mount_chroot() {
    local r=$1 m
    mount -t proc proc "$r/proc"; MOUNTED=("$r/proc" "${MOUNTED[@]}")
    for m in sys dev dev/pts; do
        mount --bind "/$m" "$r/$m"; MOUNTED=("$r/$m" "${MOUNTED[@]}")
    done
    mount --bind "$CACHE/debs/archives" "$r/var/cache/apt/archives"
    MOUNTED=("$r/var/cache/apt/archives" "${MOUNTED[@]}")
    cp /etc/resolv.conf "$r/etc/resolv.conf"
}
umount_chroot() {
    local r=$1 m
    for m in var/cache/apt/archives dev/pts dev sys proc; do umount "$r/$m"; done
}

# 1. a minimal bookworm root (main + contrib), the base of both the builder and the guest
B=$W/base
debootstrap --variant=minbase --components=main,contrib \
    --cache-dir="$CACHE/debs/debootstrap" bookworm "$B" "$MIRROR" >&2
cat > "$B/etc/apt/sources.list" <<SRC
deb $MIRROR bookworm main contrib
deb $MIRROR bookworm-updates main contrib
deb $SECMIRROR bookworm-security main contrib
deb $MIRROR bookworm-backports main contrib
SRC
if [ "$SUITE" = bookworm-backports ]; then
    # only the ZFS packages from backports ("n=" matches; "a=" no longer does)
    cat > "$B/etc/apt/preferences.d/zfs-backports" <<PIN
Package: zfs-dkms zfsutils-linux zfs-zed libzfs* libzpool* libnvpair* libuutil* python3-pyzfs
Pin: release n=bookworm-backports
Pin-Priority: 990
PIN
fi
printf '#!/bin/sh\nexit 101\n' > "$B/usr/sbin/policy-rc.d"    # no services in chroots
chmod +x "$B/usr/sbin/policy-rc.d"
printf 'APT::Install-Recommends "0";\nAPT::Install-Suggests "0";\n' \
    > "$B/etc/apt/apt.conf.d/99norecommends"
echo 'Binary::apt::APT::Keep-Downloaded-Packages "true";' > "$B/etc/apt/apt.conf.d/99keep"

# 2. OpenZFS kernel modules, built with dkms for the guest kernel in a copy of the base
C=$W/builder
cp -a "$B" "$C"
mount_chroot "$C"
in_chroot "$C" apt-get update -q >&2
in_chroot "$C" apt-get install -y -q "linux-headers-$KVER" dkms build-essential >&2
in_chroot "$C" apt-get install -y -q zfs-dkms >&2
if ! ls "$C/lib/modules/$KVER/updates/dkms/zfs.ko"* >/dev/null 2>&1; then
    # the postinst builds only for kernels it finds; build for ours explicitly
    zv=$(in_chroot "$C" dpkg-query -W -f='${Version}' zfs-dkms | sed 's/-.*//')
    in_chroot "$C" dkms build -m zfs -v "$zv" -k "$KVER" >&2
    in_chroot "$C" dkms install -m zfs -v "$zv" -k "$KVER" --force >&2
fi
mkdir -p "$W/zfs-kmod"
cp "$C/lib/modules/$KVER/updates/dkms/"*.ko* "$W/zfs-kmod/"
ZFSVER=$(in_chroot "$C" dpkg-query -W -f='${Version}' zfs-dkms)
umount_chroot "$C"
rm -rf --one-file-system "$C"

# 3. the guest userland
G=$B
mount_chroot "$G"
in_chroot "$G" apt-get update -q >&2
# shellcheck disable=SC2086
in_chroot "$G" apt-get install -y -q $GUEST_PKGS >&2
ZFSUTILS=$(in_chroot "$G" dpkg-query -W -f='${Version}' zfsutils-linux)
in_chroot "$G" ssh-keygen -A >&2
umount_chroot "$G"

# 4. kernel modules: the cloud kernel's, pruned to what the guest loads, plus OpenZFS
extract_kernel "$KPKG" "$W/kernel"
M=$W/kernel/lib/modules/$KVER
mkdir -p "$M/updates/dkms"
cp "$W/zfs-kmod/"*.ko* "$M/updates/dkms/"
depmod -b "$W/kernel" "$KVER"
# shellcheck disable=SC2046
module_closure "$W/kernel" "$KVER" $(grep -v '^#' "$FILES/modules.list") > "$W/modules.keep"
GM=$G/lib/modules/$KVER
rm -rf "$GM"
mkdir -p "$GM"
cp "$M"/modules.order "$M"/modules.builtin* "$GM/"
while read -r rel; do
    mkdir -p "$GM/$(dirname "$rel")"
    cp "$M/$rel" "$GM/$rel"
done < "$W/modules.keep"
depmod -b "$G" "$KVER"

# 5. init, agent, helpers, root's SSH key
install -m755 "$FILES/zinit" "$G/sbin/zinit"
install -m755 "$FILES/zctl-agent" "$G/usr/local/sbin/zctl-agent"
install -m755 "$FILES/start-nfsd" "$G/usr/local/sbin/start-nfsd"
install -m755 "$FILES/start-iscsid" "$G/usr/local/sbin/start-iscsid"
echo zfsguest > "$G/etc/hostname"
: > "$G/etc/fstab"
ssh-keygen -q -t ed25519 -N '' -C zfs-test-guest -f "$W/id_ed25519"
mkdir -p -m700 "$G/root/.ssh"
install -m600 "$W/id_ed25519.pub" "$G/root/.ssh/authorized_keys"
printf 'UseDNS no\nPermitRootLogin prohibit-password\n' > "$G/etc/ssh/sshd_config.d/zfs-test.conf"
rm -rf "$G"/var/cache/apt/*.bin "$G"/var/lib/apt/lists/* "$G"/usr/share/doc/* \
    "$G"/usr/share/man/* "$G"/usr/share/locale/* "$G"/usr/share/info/* "$G/etc/resolv.conf"

# 6. the root image, the initramfs (busybox + what mounting the root needs) and the kernel
size_mb=$(( $(du -sm "$G" | cut -f1) * 13 / 10 + 128 ))
mkfs.ext4 -q -F -L zguest -E root_owner=0:0 -d "$G" "$W/root.ext4" "${size_mb}M"
I=$W/initramfs
mkdir -p "$I"/{bin,dev,proc,sys,newroot}
cp /bin/busybox "$I/bin/busybox"
install -m755 "$FILES/initramfs-init" "$I/init"
: > "$I/modules.load"
module_closure "$W/kernel" "$KVER" virtio_pci virtio_blk | while read -r rel; do
    mkdir -p "$I/lib/modules/$(dirname "$rel")"
    cp "$M/$rel" "$I/lib/modules/$rel"
    echo "$rel" >> "$I/modules.load"
done
(cd "$I" && find . | sort | cpio -o -H newc --quiet -R 0:0 | gzip -9) > "$W/initrd.gz"
cp "$W/kernel/boot/vmlinuz-$KVER" "$W/vmlinuz"

cat > "$W/manifest.json" <<JSON
{"key": "$KEY", "suite": "$SUITE", "kernel_package": "$KPKG", "kernel_version": "$KVER",
 "zfs_dkms_version": "$ZFSVER", "zfsutils_version": "$ZFSUTILS",
 "kernel": "vmlinuz", "initrd": "initrd.gz", "root": "root.ext4", "ssh_key": "id_ed25519",
 "cmdline": "console=ttyS0 net.ifnames=0 panic=-1 loglevel=4",
 "markers": {"ready": "ZGUEST READY", "failed": "ZGUEST ZFS-FAILED"}}
JSON
mkdir -p "$OUT"
mv "$W"/{vmlinuz,initrd.gz,root.ext4,id_ed25519,id_ed25519.pub} "$OUT/"
mv "$W/manifest.json" "$OUT/manifest.json"    # last: its presence means complete
log "done: $(du -sh "$OUT" | cut -f1) (zfs $ZFSVER)"
echo "$OUT"
