#!/bin/bash
# Build the project's tiny test guest from Debian packages only, cached by its inputs.
#
#   tools/guest/build-tiny-guest.sh [CACHE_DIR]        -> prints the artifact directory
#   tools/guest/build-tiny-guest.sh --key [CACHE_DIR]  -> prints the cache key only
#
# Artifacts: vmlinuz, initrd.gz (busybox userland + the few modules a guest needs),
# disk.raw / disk.qcow2 (a SeaBIOS-bootable disk: MBR + FAT partition + syslinux),
# rootfs.tar.gz (the same userland for LXC), manifest.json.
# Inputs that make the cache key: this script, tools/guest/tiny/*, the guest kernel
# package version (linux-image-cloud-amd64's current dependency) and busybox's version.
set -euo pipefail
KEY_ONLY=0
if [ "${1:-}" = --key ]; then KEY_ONLY=1; shift; fi
HERE=$(cd "$(dirname "$0")" && pwd)
FILES=$HERE/tiny
CACHE=${1:-${HCI_CACHE:-/var/cache/openstack-hci-drivers}}
KFLAVOUR=${HCI_GUEST_KERNEL_FLAVOUR:-cloud-amd64}
. "$HERE/lib.sh"

KPKG=$(kernel_pkg)
if [ -z "$KPKG" ]; then
    # no apt lists: reuse the newest cached build if there is one
    newest_build tiny-guest || { log "cannot resolve linux-image-$KFLAVOUR (apt-get update)"; exit 1; }
    exit 0
fi
KVER=${KPKG#linux-image-}
BBVER=$(dpkg-query -W -f='${Version}' busybox-static)
KEY=$( (cat "$0" "$HERE/lib.sh" "$FILES"/*; echo "$KPKG $BBVER") | sha256sum | cut -c1-16)
OUT=$CACHE/tiny-guest/$KEY
if [ $KEY_ONLY = 1 ]; then echo "$KEY"; exit 0; fi
if [ -f "$OUT/manifest.json" ]; then echo "$OUT"; exit 0; fi

log "building $OUT (kernel $KVER, busybox $BBVER)"
mkdir -p "$CACHE/tiny-guest"
W=$(mktemp -d "$CACHE/tiny-guest/.build.XXXXXX")
trap 'rm -rf "$W"' EXIT

# 1. the kernel package, downloaded (never installed on the host)
extract_kernel "$KPKG" "$W/kernel"

# 2. initramfs tree: busybox, init, helpers, and the module closure of modules.list
R=$W/root
mkdir -p "$R"/{bin,sbin,dev,proc,sys,run,tmp,mnt,root,etc/acpi/PWRF,lib/modules}
cp /bin/busybox "$R/bin/busybox"
ln -s busybox "$R/bin/sh"
install -m755 "$FILES/init" "$R/init"
ln -s ../init "$R/sbin/init"
install -m755 "$FILES/power-button" "$R/etc/acpi/PWRF/00000080"
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$R/etc/passwd"
printf 'root:x:0:\n' > "$R/etc/group"
: > "$R/etc/modules.load"
RFS=$W/rootfs
cp -a "$R" "$RFS"    # the container userland: no kernel modules needed
# shellcheck disable=SC2046
module_closure "$W/kernel" "$KVER" $(grep -v '^#' "$FILES/modules.list") | while read -r rel; do
    mkdir -p "$R/lib/modules/$(dirname "$rel")"
    cp "$W/kernel/lib/modules/$KVER/$rel" "$R/lib/modules/$rel"
    echo "$rel" >> "$R/etc/modules.load"
done
(cd "$R" && find . | sort | cpio -o -H newc --quiet -R 0:0 | gzip -9) > "$W/initrd.gz"
cp "$W/kernel/boot/vmlinuz-$KVER" "$W/vmlinuz"

# 3. SeaBIOS-bootable disk: MBR, one bootable FAT partition at 1 MiB, syslinux
img=$W/disk.raw
truncate -s 64M "$img"
echo 'start=2048, type=c, bootable' | sfdisk -q "$img"
mkfs.vfat -S 512 --offset 2048 -n HCIGUEST "$img" $(( (64 * 1024 - 1024) )) >/dev/null
mcopy -i "$img@@1M" "$W/vmlinuz" "$W/initrd.gz" "$FILES/syslinux.cfg" ::/
syslinux --offset $((2048 * 512)) --install "$img"
dd if=/usr/lib/syslinux/mbr/mbr.bin of="$img" bs=440 count=1 conv=notrunc status=none
qemu-img convert -c -f raw -O qcow2 "$img" "$W/disk.qcow2"

# 4. the same userland as a root filesystem tarball (for LXC)
tar --numeric-owner --owner=0 --group=0 -C "$RFS" -czf "$W/rootfs.tar.gz" .

cat > "$W/manifest.json" <<JSON
{"key": "$KEY", "kernel_package": "$KPKG", "kernel_version": "$KVER",
 "busybox_version": "$BBVER",
 "kernel": "vmlinuz", "initrd": "initrd.gz", "disk_raw": "disk.raw",
 "disk_qcow2": "disk.qcow2", "rootfs_tar": "rootfs.tar.gz",
 "cmdline": "console=tty0 console=ttyS0,115200 panic=-1 quiet",
 "markers": {"booted": "HCIGUEST BOOTED", "ready": "HCIGUEST READY",
             "poweroff": "HCIGUEST POWEROFF"}}
JSON
mkdir -p "$OUT"
mv "$W"/{vmlinuz,initrd.gz,disk.raw,disk.qcow2,rootfs.tar.gz} "$OUT/"
mv "$W/manifest.json" "$OUT/manifest.json"    # last: its presence means complete
log "done: $(du -sh "$OUT" | cut -f1)"
echo "$OUT"
