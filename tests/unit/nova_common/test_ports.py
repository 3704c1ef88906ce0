from nova import exception

from nova_common import ports
from tests.unit.nova_common import base


class TestPorts(base.TestCase):
    def test_ranges(self):
        self.assertEqual(range(10000, 10003), ports.parse_range("10000:10002"))
        for bad in ("10000", "a:b", "0:10", "20:10", "1:70000"):
            self.assertRaises(exception.InvalidInput, ports.parse_range, bad)
