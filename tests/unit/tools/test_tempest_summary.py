"""tools/aio/tempest_summary.py counts a tempest run's results per group."""
import io
import os
import subprocess
import sys

import subunit
import testtools

from tests.common import paths

SCRIPT = os.path.join(paths.TOOLS, "aio", "tempest_summary.py")


def stream(*tests):
    out = io.BytesIO()
    result = subunit.StreamResultToBytes(out)
    for test_id, status in tests:
        result.status(test_id=test_id, test_status="inprogress")
        result.status(test_id=test_id, test_status=status)
    return out.getvalue()


class TestTempestSummary(testtools.TestCase):
    def summary(self, data):
        res = subprocess.run([sys.executable, SCRIPT], input=data, capture_output=True)
        self.assertEqual(b"", res.stderr)
        return res.returncode, res.stdout.decode()

    def test_counts_per_group_and_names_the_failures(self):
        rc, out = self.summary(stream(
            ("tempest.api.compute.servers.test_a.T.test_x[id-1]", "success"),
            ("tempest.api.compute.servers.test_a.T.test_y[id-2]", "fail"),
            ("tempest.api.image.v2.test_images.T.test_z[id-3]", "skip"),
            ("cinder_tempest_plugin.api.volume.test_r.T.test_r[id-4]", "success"),
            ("tempest.api.volume.test_v.T.test_v[id-5]", "success"),
            ("setUpClass (manila_tempest_tests.tests.api.test_shares.SharesNFSTest)", "fail"),
            ("tempest.api.network.test_n.T.test_n[id-6]", "success"),
        ))
        self.assertEqual(1, rc)
        lines = out.splitlines()
        self.assertIn("  compute    1 passed   1 failed   0 skipped", lines)
        self.assertIn("  image      0 passed   0 failed   1 skipped", lines)
        self.assertIn("  network    1 passed   0 failed   0 skipped", lines)
        self.assertIn("  volume     2 passed   0 failed   0 skipped", lines)
        self.assertIn("  share      0 passed   1 failed   0 skipped", lines)
        self.assertIn("  FAILED tempest.api.compute.servers.test_a.T.test_y[id-2]", lines)
        self.assertIn("  FAILED setUpClass (manila_tempest_tests.tests.api.test_shares."
                      "SharesNFSTest)", lines)
        # groups in their fixed order
        self.assertEqual(["compute", "image", "network", "volume", "share"],
                         [line.split()[0] for line in lines[1:6]])

    def test_all_passed(self):
        rc, out = self.summary(stream(
            ("tempest.api.image.v2.test_images.T.test_z[id-3]", "success")))
        self.assertEqual(0, rc)
        self.assertNotIn("FAILED", out)
