import testtools

from zfs_manila import provisioned


class TestProvisionedBytes(testtools.TestCase):
    def setUp(self):
        super().setUp()
        self.now = 0.0
        self.counts = []
        self.on_disk = {"tank/m": 100}

        def count(root):
            self.counts.append(root)
            return self.on_disk[root]

        self.p = provisioned.ProvisionedBytes(count, 600, clock=lambda: self.now)

    def test_counted_once_then_kept_by_the_drivers_changes(self):
        self.assertEqual(100, self.p.total("tank/m"))
        self.p.add("tank/m", 50)
        self.p.add("tank/m", -20)
        self.assertEqual(130, self.p.total("tank/m"))
        self.assertEqual(["tank/m"], self.counts)

    def test_recounted_after_the_interval(self):
        self.p.total("tank/m")
        self.on_disk["tank/m"] = 7          # changed outside manila
        self.now = 599
        self.assertEqual(100, self.p.total("tank/m"))
        self.now = 600
        self.assertEqual(7, self.p.total("tank/m"))
        self.assertEqual(2, len(self.counts))

    def test_forget_recounts_at_the_next_call(self):
        self.p.total("tank/m")
        self.on_disk["tank/m"] = 9
        self.p.forget("tank/m")
        self.assertEqual(9, self.p.total("tank/m"))
        self.on_disk["tank/m"] = 11
        self.p.forget()
        self.assertEqual(11, self.p.total("tank/m"))

    def test_changes_before_the_first_count_are_not_added_twice(self):
        self.p.add("tank/m", 50)            # the count will include it
        self.assertEqual(100, self.p.total("tank/m"))

    def test_a_change_while_counting_is_not_kept(self):
        def count(root):
            self.counts.append(root)
            self.p.add(root, 5)             # another greenthread created a share
            return 100

        self.p = provisioned.ProvisionedBytes(count, 600, clock=lambda: self.now)
        self.assertEqual(100, self.p.total("tank/m"))
        self.assertEqual(100, self.p.total("tank/m"))
        self.assertEqual(2, len(self.counts))   # counted again, not 100 kept as exact

    def test_zero_interval_counts_every_time(self):
        self.p = provisioned.ProvisionedBytes(lambda r: self.on_disk[r], 0,
                                              clock=lambda: self.now)
        self.p.total("tank/m")
        self.on_disk["tank/m"] = 3
        self.assertEqual(3, self.p.total("tank/m"))
