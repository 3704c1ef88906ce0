import json
import os

import fixtures
import testtools

from nova_common import record


class TestRecord(testtools.TestCase):
    def setUp(self):
        super().setUp()
        self.dir = self.useFixture(fixtures.TempDir()).path
        self.path = os.path.join(self.dir, record.FILE)

    def test_round_trip_private_and_versioned(self):
        self.assertIsNone(record.read(self.dir))
        rec = record.Record(name="a", vcpus=1, memory_mb=64, spec={"machine": "q35"},
                            vifs={"p": {"tap": "tap1", "mac": "fa:16:3e:00:00:01",
                                        "slot": "hp0"}})
        record.write(self.dir, rec)
        self.assertEqual(rec, record.read(self.dir))
        self.assertEqual(0o600, os.stat(self.path).st_mode & 0o777)
        with open(self.path) as f:
            self.assertEqual(record.SCHEMA_VERSION, json.load(f)["version"])
        self.assertEqual([record.FILE], os.listdir(self.dir))     # no temporary left

    def test_a_failed_write_keeps_the_old_record(self):
        record.write(self.dir, record.Record("a", 1, 64, {}))
        bad = record.Record("b", 1, 64, {"x": object()})          # not JSON-able
        self.assertRaises(TypeError, record.write, self.dir, bad)
        self.assertEqual("a", record.read(self.dir).name)
        self.assertEqual([record.FILE], os.listdir(self.dir))

    def test_corrupt_records_say_why(self):
        for content, why in ((b'{"name": "a", "vcp', "not JSON"),
                             (b"[]", "not a JSON object"),
                             (b'{"version": 2, "name": "a"}', "missing fields"),
                             (b'{"version": 2, "name": "a", "vcpus": "1", "memory_mb": 1,'
                              b' "spec": {}}', "vcpus is not a int"),
                             (b'{"version": 9}', "schema version 9")):
            with open(self.path, "wb") as f:
                f.write(content)
            e = self.assertRaises(record.CorruptRecord, record.read, self.dir)
            self.assertIn(why, str(e))
            self.assertIn(self.path, str(e))

    def test_version_1_is_migrated_on_read(self):
        with open(self.path, "w") as f:
            json.dump({"name": "a", "vcpus": 1, "memory_mb": 64, "argv": ["q"]}, f)
        self.assertRaises(record.CorruptRecord, record.read, self.dir)   # no migration
        rec = record.read(self.dir, lambda d: {"name": d["name"], "vcpus": d["vcpus"],
                                               "memory_mb": d["memory_mb"],
                                               "spec": {"argv": d["argv"]}})
        self.assertEqual({"argv": ["q"]}, rec.spec)
        self.assertEqual(record.SCHEMA_VERSION, rec.version)
