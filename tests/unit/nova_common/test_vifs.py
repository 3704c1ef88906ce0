from unittest import mock

from nova import exception
from nova.network import model as network_model

from nova_common import privsep
from nova_common import vifs
from tests.unit.nova_common import base


def vif(kind="tap", devname="tap12345678-9a", **details):
    return network_model.VIF(id="12345678-9abc-def0-1234-56789abcdef0", type=kind,
                             devname=devname, address="fa:16:3e:00:00:01",
                             details=details,
                             network=network_model.Network(id="n1", meta={"mtu": 1400}))


class TestVifs(base.TestCase):
    def test_only_tap_vifs_with_a_device_name(self):
        vifs.check(vif())
        for bad in (vif("ovs"), vif("bridge"), vif(devname=None)):
            self.assertRaises(exception.VirtualInterfacePlugException, vifs.check, bad)

    def test_plug_makes_a_tap_for_nova_s_user(self):
        with mock.patch.object(privsep, "create_tap") as create:      # privileged boundary
            self.assertEqual("tap12345678-9a",
                             vifs.plug(None, vif(mac_address="fe:16:3e:00:00:02")))
        create.assert_called_once_with("tap12345678-9a", mock.ANY, mtu=1400,
                                       mac="fe:16:3e:00:00:02")

    def test_privileged_side_validates_names(self):
        for bad in ("", "a" * 16, "-x", "tap 1", "tap;x", None):
            self.assertRaises(ValueError, privsep._device, bad)
        self.assertEqual("tap12345678-9a", privsep._device("tap12345678-9a"))
        self.assertRaises(ValueError, privsep._mac, "fa:16:3e:00:00")
