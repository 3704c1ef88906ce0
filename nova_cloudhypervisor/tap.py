"""File descriptors of tap devices, handed to the VMM with ``vm.add-net``.

The tap itself is made (for nova's user, with a vnet header) by ``nova_common.vifs``
through privsep; opening it by name needs no privilege for its owner. The VMM receives
the open descriptors, so it needs neither CAP_NET_ADMIN nor access to /dev/net/tun.
"""
import fcntl
import os
import struct

TUNSETIFF = 0x400454ca
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000
IFNAMSIZ = 16


def open_tap(name, tun="/dev/net/tun"):
    """An open descriptor (the caller closes it) of the existing tap device ``name``."""
    encoded = name.encode()
    if not encoded or len(encoded) >= IFNAMSIZ:
        raise ValueError("not a network device name: %r" % (name,))
    fd = os.open(tun, os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", encoded,
                                               IFF_TAP | IFF_NO_PI | IFF_VNET_HDR))
    except OSError:
        os.close(fd)
        raise
    return fd
