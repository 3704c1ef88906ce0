import ddt
import testtools

from zfs_common import exception


@ddt.ddt
class TestFromCommand(testtools.TestCase):
    @ddt.data(
        ("cannot open 'tank/x': dataset does not exist", exception.DatasetNotFound),
        ("cannot open 'nope': no such pool", exception.DatasetNotFound),
        ("cannot create 'tank/x': dataset already exists", exception.DatasetExists),
        ("cannot destroy 'tank/x': dataset is busy", exception.DatasetBusy),
        ("cannot unmount '/tank/x': pool or dataset is busy", exception.DatasetBusy),
        ("cannot destroy 'tank/x': filesystem has children\nuse '-r' to destroy the "
         "following datasets:\ntank/x/y", exception.HasDependents),
        ("cannot destroy 'tank/x@s': snapshot has dependent clones\nuse '-R' to destroy "
         "the following datasets:", exception.HasDependents),
        ("cannot create 'tank/x': out of space", exception.NoSpace),
        ("cannot set property for 'tank/v': size is greater than available space",
         exception.NoSpace),
        ("cannot set property for 'tank/x': size is less than current used or reserved "
         "space", exception.SizeBelowUsage),
        ("something else entirely", exception.ZFSError),
    )
    @ddt.unpack
    def test_stderr_maps_to_typed_errors(self, stderr, cls):
        err = exception.from_command(["zfs", "x"], stderr + "\n", 1)
        self.assertIs(cls, type(err))
        self.assertEqual(1, err.exit_code)
        self.assertEqual(["zfs", "x"], err.cmd)

    def test_empty_stderr_names_the_exit_code(self):
        self.assertIn("exit code 2", str(exception.from_command(["zfs"], "", 2)))
