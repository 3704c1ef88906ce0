"""What nova-compute does when it starts a guest, for test_guest_supervision.py: run as
the main process of a systemd service, start one guest (QEMU, ``-machine none``)
through the privileged launcher, then stay up as nova-compute does.

``python -m tests.functional.deploy.compute_stand_in INSTANCES UUID LAUNCHER``
"""
import os
import sys
import time

import nova.conf

from nova_common import confine
from nova_common import launcher

UID = 1900000090


def main(instances, uuid, mode):
    conf = nova.conf.CONF
    conf([], project="nova")
    conf.set_override("instances_path", instances)
    conf.set_override("launcher", mode, group="hci_guests")
    directory = os.path.join(instances, uuid)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    confine.prepare_instances_path()
    confine.grant_instance_dir(directory, UID)
    argv = [conf.hci_guests.allowed_binaries[0], "-uuid", uuid, "-machine", "none",
            "-display", "none", "-nodefaults", "-pidfile",
            os.path.join(directory, "qemu.pid")]
    print(launcher.start_guest(uuid, argv, UID, os.path.join(directory, "hypervisor.log")),
          flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main(*sys.argv[1:4])
