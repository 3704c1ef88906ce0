"""Ports bound as ``tap`` VIFs: the driver makes the taps (privsep), opens them and hands
their descriptors to the VMM (``vm.add-net`` with SCM_RIGHTS); the guest sees the NIC at
boot with the port's MAC, and a second port hot-plugged and removed."""
# nova's functional package applies (or poisons) eventlet patching: import it first
from tests.functional.nova_cloudhypervisor import base  # noqa: I001  isort:skip
import copy
import subprocess
import time


def ip(args, check=True):
    res = subprocess.run(["ip"] + args, capture_output=True, text=True, timeout=30)
    if check and res.returncode:
        raise RuntimeError("ip %s: %s" % (" ".join(args), res.stderr))
    return res.stdout if res.returncode == 0 else ""


class TestInterfaces(base.CHServerTestBase):
    def test_tap_ports_at_boot_and_hot_plugged(self):
        ports = [self.neutron.port_1, self.neutron.port_2]
        for port in ports:       # bound as tap VIFs by the fixture's "neutron"
            self.neutron._ports[port["id"]] = dict(copy.deepcopy(port),
                                                   **{"binding:vif_type": "tap"})
        taps = ["tap" + port["id"][:11] for port in ports]
        self.addCleanup(lambda: [ip(["link", "del", t], check=False) for t in taps])

        server = self.boot(image=self.images["kernel"], networks=[{"port": ports[0]["id"]}])
        out = self.wait_console(server, self.guest.marker("ready"))
        self.assertIn("NIC eth0 mac=%s" % ports[0]["mac_address"], out)

        before = len(self.console(server))
        self.api.attach_interface(server["id"], {"interfaceAttachment": {
            "port_id": ports[1]["id"]}})
        self.wait_console(server, "ADDED NIC eth1 mac=%s" % ports[1]["mac_address"],
                          since=before)
        before = len(self.console(server))
        self.api.detach_interface(server["id"], ports[1]["id"])
        self.wait_console(server, "REMOVED NIC eth1", since=before)
        self._wait_for_tap_gone(taps[1])

        self._delete_server(server)
        self.assert_nothing_left(server)
        self._wait_for_tap_gone(taps[0])

    def _wait_for_tap_gone(self, tap, timeout=30):
        deadline = time.monotonic() + timeout
        while ip(["link", "show", tap], check=False):
            if time.monotonic() > deadline:
                self.fail("%s was not removed" % tap)
            time.sleep(0.2)
