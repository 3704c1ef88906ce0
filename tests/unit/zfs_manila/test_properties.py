import testtools

from zfs_manila import properties

GiB = 1024 ** 3


class TestProperties(testtools.TestCase):
    def test_defaults_then_capabilities_then_zfs_specs(self):
        props = properties.dataset_properties(
            {"compression": "<is> True", "dedupe": "<is> False", "zfs:recordsize": "1M",
             "zfs:compression": "gzip-9"},
            {"compression": "off", "atime": "off"}, 2)
        self.assertEqual({"compression": "gzip-9", "dedup": "off", "recordsize": "1M",
                          "atime": "off", "refquota": 2 * GiB, "refreservation": "none"},
                         props)

    def test_compression_capability_keeps_a_configured_algorithm(self):
        props = properties.dataset_properties({"compression": "True"},
                                              {"compression": "lz4"}, 1)
        self.assertEqual("lz4", props["compression"])
        props = properties.dataset_properties({"compression": "<is> False"},
                                              {"compression": "lz4"}, 1)
        self.assertEqual("off", props["compression"])

    def test_thick_shares_reserve_their_size(self):
        self.assertEqual({"refquota": 3 * GiB, "refreservation": 3 * GiB},
                         properties.size_properties({"thin_provisioning": "<is> False"}, 3))

    def test_unknown_or_hostile_specs_are_refused(self):
        self.assertRaises(properties.InvalidSpec, properties.dataset_properties,
                          {"zfs:mountpoint": "/etc"}, {}, 1)
        self.assertRaises(properties.InvalidSpec, properties.dataset_properties,
                          {"zfs:sharenfs": "rw=*"}, {}, 1)
        self.assertRaises(properties.InvalidSpec, properties.dataset_properties,
                          {"zfs:compression": "lz4\nmountpoint=/"}, {}, 1)
