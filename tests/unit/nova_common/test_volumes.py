import os

from nova import exception

from nova_common import volumes
from tests.unit.nova_common import base


class TestVolumes(base.TestCase):
    """os-brick's own connectors; ``local`` needs no privileges or devices."""

    def test_local_connection_gives_the_path_back(self):
        path = os.path.join(self.instances, "vol.img")
        with open(path, "wb") as f:
            f.truncate(1024 ** 2)
        info = {"driver_volume_type": "local", "data": {"device_path": path}}
        found, device = volumes.connect(info)
        self.assertEqual(path, found)
        self.assertFalse(volumes.is_block_device(found))
        self.assertIsNone(volumes.extend(info, found))   # a file grows in the hypervisor
        volumes.disconnect(info, device)

    def test_unknown_protocols_and_missing_devices(self):
        self.assertRaises(exception.VolumeDriverNotFound, volumes.connect,
                          {"driver_volume_type": "carrier-pigeon", "data": {}})
        self.assertRaises(exception.VolumeAttachFailed, volumes.connect, {
            "driver_volume_type": "local",
            "data": {"device_path": os.path.join(self.instances, "none"),
                     "volume_id": "v1"}})
