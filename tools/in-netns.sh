#!/bin/sh
# Run a command in a network namespace of its own (only loopback, up) and a mount namespace
# with that namespace's /sys, so that the Open vSwitch userspace datapath, taps and bridges
# the tests make cannot meet another Open vSwitch on this machine (e.g. a running
# all-in-one cloud's: the userspace datapath holds one ovs-netdev device per namespace).
#
#   tools/in-netns.sh stestr --test-path ./tests/functional/net run
set -eu
exec unshare --net --mount -- sh -c \
    'mount -t sysfs sysfs /sys && ip link set lo up && exec "$@"' in-netns "$@"
