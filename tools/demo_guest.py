"""Boot the project's test guest under QEMU (TCG), print its console, power it off."""
import sys
import time

import fixtures

from tests.common import guest_images
from tests.common import qemu


def main():
    guest = guest_images.tiny_guest()
    print("test guest: %s (kernel %s)" % (guest.root, guest.manifest["kernel_version"]))
    with fixtures.TempDir():
        vm = qemu.QemuGuest(["-drive", "file=%s,format=qcow2,if=virtio,snapshot=on"
                             % guest.disk_qcow2,
                             "-netdev", "user,id=n0,restrict=on",
                             "-device", "virtio-net-pci,netdev=n0"])
        with vm:
            t0 = time.monotonic()
            vm.wait_for(guest.marker("ready"))
            print("guest ready after %.1f s; pressing the ACPI power button" %
                  (time.monotonic() - t0))
            vm.qmp("system_powerdown")
            rc = vm.wait_exit(60)
            print("---- guest console ----")
            print(vm.console_text().replace("\x1b[6n", ""))
            print("---- QEMU exited with %d ----" % rc)
            return rc


if __name__ == "__main__":
    sys.exit(main())
