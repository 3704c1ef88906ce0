import ddt
import testtools

from zfs_common import exception
from zfs_common import validation


@ddt.ddt
class TestNames(testtools.TestCase):
    @ddt.data("tank", "tank/a", "tank/a/b_c-d.e:f", "Pool1/x", "tank/" + "x" * 200)
    def test_good_datasets(self, name):
        self.assertEqual(name, validation.dataset(name))

    @ddt.data("", "/tank", "tank/", "tank//a", "tank/a b", "tank/-rf", "-tank", "tank/a;b",
              "tank/$(x)", "tank/a\nb", "tank/`x`", "tank/a|b", "tank/a@b", "tank/..",
              "mirror1/a", "raidz/a", "c0d0/a", "1tank", "tank/" + "x" * 300, None, 5)
    def test_bad_datasets(self, name):
        self.assertRaises(exception.InvalidName, validation.dataset, name)

    @ddt.data("tank/a@s1", "tank@snap-2026.11:1")
    def test_good_snapshots(self, name):
        self.assertEqual(name, validation.snapshot(name))

    @ddt.data("tank/a", "tank/a@", "tank/a@b@c", "tank/a@-x", "tank/a@b c", "@s")
    def test_bad_snapshots(self, name):
        self.assertRaises(exception.InvalidName, validation.snapshot, name)

    def test_dataset_or_snapshot(self):
        self.assertEqual("t/a@s", validation.dataset_or_snapshot("t/a@s"))
        self.assertEqual("t/a", validation.dataset_or_snapshot("t/a"))
        self.assertRaises(exception.InvalidName, validation.dataset_or_snapshot, "t/a@")


@ddt.ddt
class TestProperties(testtools.TestCase):
    @ddt.data("compression", "refquota", "org.openstack:share_id", "com.example:a.b-c")
    def test_good_property_names(self, name):
        self.assertEqual(name, validation.property_name(name))

    @ddt.data("Compression", "quota;x", "a b", "-o", "org.openstack", ":x", "x=y", "")
    def test_bad_property_names(self, name):
        self.assertRaises(exception.InvalidValue, validation.property_name, name)

    def test_values(self):
        self.assertEqual("on", validation.property_value("compression", True))
        self.assertEqual("off", validation.property_value("dedup", False))
        self.assertEqual("1024", validation.property_value("refquota", 1024))
        self.assertEqual("rw=@10.0.0.0/8,ro=@::1", validation.property_value(
            "sharenfs", "rw=@10.0.0.0/8,ro=@::1"))
        self.assertEqual("a=b", validation.property_value("org.openstack:x", "a=b"))

    @ddt.data(("compression", "gzip\nx"), ("compression", "-x"), ("mountpoint", "a=b"),
              ("org.openstack:x", "x" * 9000), ("compression", "a\x00b"),
              ("volblocksize", "16K; reboot"), ("compression", "lz4 on"))
    @ddt.unpack
    def test_bad_values(self, name, value):
        self.assertRaises(exception.InvalidValue, validation.property_value, name, value)

    def test_properties_arguments_are_sorted_pairs(self):
        self.assertEqual(["-o", "compression=lz4", "-o", "refquota=5"],
                         validation.properties({"refquota": 5, "compression": "lz4"}))
        self.assertEqual([], validation.properties(None))
