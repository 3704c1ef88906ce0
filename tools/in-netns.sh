#!/bin/sh
# Run a command in a network namespace of its own (only loopback, up) and a mount namespace
# with that namespace's /sys, so that the Open vSwitch userspace datapath, taps and bridges
# the tests make cannot meet another Open vSwitch on this machine (e.g. a running
# all-in-one cloud's: the userspace datapath holds one ovs-netdev device per namespace).
# The host's cgroup hierarchies stay at /sys/fs/cgroup (liblxc starts containers there).
#
#   tools/in-netns.sh stestr --test-path ./tests/functional/net run
set -eu
exec unshare --net --mount -- sh -c '
    cg=$(mktemp -d /tmp/hci-cgroup.XXXXXX)
    mount --rbind /sys/fs/cgroup "$cg"
    mount -t sysfs sysfs /sys
    mount --move "$cg" /sys/fs/cgroup
    rmdir "$cg"
    ip link set lo up && exec "$@"' in-netns "$@"
