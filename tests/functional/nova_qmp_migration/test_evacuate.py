"""Evacuation of a QMP server from a host whose nova-compute is down: rebuilt from its
image on the other host; the first host, started again, removes what it had left."""
import os

from tests.functional.nova_qmp_migration import base


class EvacuateTest(base.TwoHostsTestBase):

    def test_evacuate_rebuilds_on_the_other_host_and_the_source_cleans_up(self):
        server = self.boot()
        self.assertEqual("compute", server["OS-EXT-SRV-ATTR:host"])
        self.wait_console(server, self.guest.marker("ready"))
        self._start_compute("compute2")
        source = self.computes_by_host["compute"]
        source.stop()                       # the host's nova-compute is down ...
        self.assertTrue(self.running_on("compute", server))   # ... its guest still runs
        service = self.api.get_services(binary="nova-compute", host="compute")[0]
        self.api.put_service(service["id"], {"forced_down": True})
        self.api.post_server_action(server["id"], {"evacuate": {"host": "compute2"}})
        # since API 2.95 an evacuated server is left stopped on its new host
        server = self._wait_for_server_parameter(
            server, {"OS-EXT-SRV-ATTR:host": "compute2", "status": "SHUTOFF"},
            max_retries=240)
        self.assertTrue(os.path.exists(self.idir("compute2", server).path))
        self.api.post_server_action(server["id"], {"os-start": None})
        server = self._wait_for_state_change(server, "ACTIVE")
        self.assertTrue(self.running_on("compute2", server))
        self.wait_console(server, self.guest.marker("ready"))    # booted from the image
        # the first host comes back: its copy of the evacuated server goes
        self.restart_compute_service(source)
        self.api.put_service(service["id"], {"forced_down": False})
        self.assertFalse(self.running_on("compute", server))
        self.assertFalse(os.path.exists(self.idir("compute", server).path))
        self.assertTrue(self.running_on("compute2", server))
