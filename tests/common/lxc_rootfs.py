"""A tiny container root filesystem from Debian's busybox-static, as a tarball and as an
ext4 filesystem image, for the LXC driver's tests.

Its init (busybox) prints ``HCILXC READY uid=<uid> pid=<pid>`` on the console when it has
run its start script (and ``HCILXC SEED <instance-id>`` / ``HCILXC USERDATA <first line>``
from a cloud-init NoCloud seed) and ``HCILXC HALT`` when it shuts down; it halts on SIGUSR2
(``lxc_halt_signal`` of the test images).
"""
import os
import subprocess

BUSYBOX = "/bin/busybox"
APPLETS = ("sh", "ls", "cat", "echo", "id", "touch", "mount", "sleep", "poweroff",
           "halt", "reboot", "ps", "ip", "ping", "grep", "test", "sync", "stat", "mkdir",
           "sed", "head")
HALT_SIGNAL = "SIGUSR2"
INITTAB = """::sysinit:/etc/init.d/rcS
::respawn:/bin/sleep 1000000
::shutdown:/bin/echo HCILXC HALT
"""
RCS = """#!/bin/sh
mount -t proc proc /proc 2>/dev/null
echo "HCILXC READY uid=$(id -u) pid=$$"
[ -f /etc/hci-marker ] && echo "HCILXC MARKER $(cat /etc/hci-marker)"
seed=/var/lib/cloud/seed/nocloud
[ -f $seed/meta-data ] && echo "HCILXC SEED $(sed -n 's/^instance-id: //p' $seed/meta-data)"
[ -s $seed/user-data ] && echo "HCILXC USERDATA $(head -n 1 $seed/user-data)"
for n in /sys/class/net/eth*; do [ -e "$n" ] && echo "HCILXC NIC ${n##*/}"; done
"""


def build_tree(root):
    """The root filesystem as a directory at ``root`` (created)."""
    for d in ("bin", "sbin", "etc/init.d", "proc", "sys", "dev", "tmp", "root", "run",
              "mnt", "var"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    with open(BUSYBOX, "rb") as src, open(os.path.join(root, "bin", "busybox"), "wb") as dst:
        dst.write(src.read())
    os.chmod(os.path.join(root, "bin", "busybox"), 0o755)
    for applet in APPLETS:
        os.symlink("busybox", os.path.join(root, "bin", applet))
    os.symlink("../bin/busybox", os.path.join(root, "sbin", "init"))
    with open(os.path.join(root, "etc", "inittab"), "w") as f:
        f.write(INITTAB)
    with open(os.path.join(root, "etc", "init.d", "rcS"), "w") as f:
        f.write(RCS)
    os.chmod(os.path.join(root, "etc", "init.d", "rcS"), 0o755)
    os.chmod(os.path.join(root, "tmp"), 0o1777)
    return root


def tarball(workdir, name="rootfs.tar.gz"):
    """A gzip root filesystem tarball built in ``workdir`` (all files root's, whoever
    builds it); returns its path."""
    tree = build_tree(os.path.join(workdir, "tree"))
    path = os.path.join(workdir, name)
    subprocess.run(["tar", "--numeric-owner", "--owner=0", "--group=0", "-czf", path,
                    "-C", tree, "."], check=True)
    return path


def ext4_image(workdir, name="rootfs.ext4", size_mb=16):
    """An unpartitioned ext4 filesystem image of the tree (mkfs.ext4 -d)."""
    tree = os.path.join(workdir, "tree")
    if not os.path.isdir(tree):
        build_tree(tree)
    path = os.path.join(workdir, name)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", tree, path, "%dM" % size_mb],
                   check=True, capture_output=True)
    return path
