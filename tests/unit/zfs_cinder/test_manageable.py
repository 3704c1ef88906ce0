from tests.unit.zfs_cinder.base import VOL_ID
from tests.unit.zfs_cinder.base import DriverTestCase
from tests.unit.zfs_cinder.base import GiB

ROWS = [
    ("tank/cinder", "type", "filesystem"),
    ("tank/cinder/volume-" + VOL_ID, "type", "volume"),
    ("tank/cinder/volume-" + VOL_ID, "volsize", str(GiB)),
    ("tank/cinder/volume-" + VOL_ID + "@snapshot-s1", "type", "snapshot"),
    ("tank/cinder/volume-" + VOL_ID + "@snapshot-s1", "volsize", str(GiB)),
    ("tank/cinder/volume-" + VOL_ID + "@clone-c1", "type", "snapshot"),
    ("tank/cinder/volume-" + VOL_ID + "@clone-c1", "volsize", str(GiB)),
    ("tank/cinder/volume-" + VOL_ID + "@gone", "type", "snapshot"),
    ("tank/cinder/volume-" + VOL_ID + "@gone", "defer_destroy", "on"),
    ("tank/cinder/volume-" + VOL_ID + "@gone", "volsize", str(GiB)),
    ("tank/cinder/legacy", "type", "volume"),
    ("tank/cinder/legacy", "volsize", str(GiB + 1)),
    ("tank/cinder/legacy@before", "type", "snapshot"),
    ("tank/cinder/legacy@before", "volsize", str(GiB)),
]
TREE = "".join("%s\t%s\t%s\n" % r for r in ROWS)


class TestManageable(DriverTestCase):
    def test_volumes_mark_cinders_own(self):
        self.answer((0, TREE, ""))
        entries = self.drv.get_manageable_volumes([{"id": VOL_ID}], None, 100, 0,
                                                  ["reference"], ["asc"])
        by_name = {e["reference"]["source-name"]: e for e in entries}
        self.assertEqual(2, len(entries))
        own = by_name["tank/cinder/volume-" + VOL_ID]
        self.assertEqual((False, VOL_ID), (own["safe_to_manage"], own["cinder_id"]))
        legacy = by_name["tank/cinder/legacy"]
        self.assertEqual((True, 2), (legacy["safe_to_manage"], legacy["size"]))

    def test_snapshots_skip_helpers_and_deferred(self):
        self.answer((0, TREE, ""))
        entries = self.drv.get_manageable_snapshots([], None, 100, 0, ["reference"], ["asc"])
        self.assertEqual(["before", "snapshot-s1"],
                         sorted(e["reference"]["source-name"] for e in entries))
        self.assertEqual({"source-name": "tank/cinder/legacy"},
                         [e for e in entries if e["reference"]["source-name"] == "before"][0]
                         ["source_reference"])

    def test_manage_renames_and_rounds_up(self):
        self.answer((0, "tank/cinder/legacy\ttype\tvolume\ntank/cinder/legacy\tvolsize\t%d\n"
                     % (GiB + 1), ""))
        vol = self.volume()
        self.drv.manage_existing(vol, {"source-name": "legacy"})
        self.assertEqual(["zfs", "rename", "tank/cinder/legacy", "tank/cinder/volume-" + VOL_ID],
                         self.ex.calls[1])
        self.assertIn("volsize=%d" % (2 * GiB), self.ex.calls[2] + self.ex.calls[3])

    def test_manage_refuses_what_is_not_a_zvol_of_this_pool(self):
        from cinder import exception
        self.answer((0, "tank/cinder/fs\ttype\tfilesystem\n", ""))
        self.assertRaises(exception.ManageExistingInvalidReference,
                          self.drv.manage_existing_get_size, self.volume(),
                          {"source-name": "tank/cinder/fs"})
        self.assertRaises(exception.ManageExistingInvalidReference,
                          self.drv.manage_existing_get_size, self.volume(),
                          {"source-name": "tank/$(reboot)"})
        self.assertRaises(exception.ManageExistingInvalidReference,
                          self.drv.manage_existing_get_size, self.volume(), {})
