"""Ephemeral and swap disks through the real nova services: the flavor's (which nova's
API turns into block device mappings) and ones asked for in the server's own block
device mappings, created, formatted as nova formats them, and seen by the guest."""
# nova's functional package applies (or poisons) eventlet patching: import it first
from tests.functional.nova_qmp import base  # noqa: I001  isort:skip
import os

from nova_common import disks
from nova_common import instance_dir

GiB_SECTORS = 2 * 1024 * 1024


class TestLocalDisks(base.QMPServerTestBase):
    def _boot(self, server):
        server = self.api.post_server({"server": server})
        return self._wait_for_state_change(server, "ACTIVE", max_retries=240)   # as boot()

    def test_flavor_ephemeral_and_swap_disks_are_formatted_and_usable(self):
        flavor = self._create_flavor(memory_mb=512, vcpu=1, disk=1, ephemeral=1, swap=32)
        server = self._boot(self._build_server(image_uuid=self.images["qcow2"],
                                               flavor_id=flavor, networks="none"))
        out = self.wait_console(server, self.guest.marker("ready"))
        self.assertIn("DISK vda sectors=%d" % GiB_SECTORS, out)
        self.assertIn("DISK vdb sectors=%d" % GiB_SECTORS, out)      # ephemeral, 1 GiB
        self.assertIn("DISK vdc sectors=65536", out)                  # swap, 32 MiB
        idir = instance_dir.InstanceDir(server["id"], root=self.instances)
        for name in (disks.EPHEMERAL_DISK % 0, disks.SWAP_DISK):
            st = os.stat(idir.file(name))
            self.assert_private(server, idir.file(name))   # nova's user and the guest's
            self.assertLess(st.st_blocks * 512, 16 * 1024 ** 2)     # sparse

        conn = self.serial(server)
        # nova's format: the image has no os_type, so vfat labelled ephemeral0; swap
        # made by mkswap (the guest takes it into use)
        got = self.shell(conn, "findfs LABEL=ephemeral0; "
                         "dd if=/dev/vdb bs=1 skip=82 count=5 2>/dev/null; "
                         "echo; echo lbl-$((1+1))-done", "lbl-2-done").decode()
        self.assertIn("/dev/vdb\r\n", got)
        self.assertIn("FAT32\r\n", got)         # the FAT32 boot sector's type field
        self.shell(conn, "swapon /dev/vdc && grep -c vdc /proc/swaps && "
                   "echo swp-$((3+4))-on", "swp-7-on")

        self._delete_server(server)
        self.assert_nothing_left(server)

    def test_block_device_mapping_ephemerals_with_their_guest_format(self):
        flavor = self._create_flavor(memory_mb=512, vcpu=1, disk=1, ephemeral=2)
        server = self._build_server(image_uuid=self.images["raw"], flavor_id=flavor,
                                    networks="none")
        server["block_device_mapping_v2"] = [
            {"boot_index": 0, "uuid": self.images["raw"], "source_type": "image",
             "destination_type": "local"},
            {"boot_index": -1, "source_type": "blank", "destination_type": "local",
             "guest_format": "ext4", "volume_size": 1},
            {"boot_index": -1, "source_type": "blank", "destination_type": "local",
             "volume_size": 1}]
        server = self._boot(server)
        out = self.wait_console(server, self.guest.marker("ready"))
        self.assertIn("DISK vdb sectors=%d" % GiB_SECTORS, out)
        self.assertIn("DISK vdc sectors=%d" % GiB_SECTORS, out)
        self.assertNotIn("DISK vdd", out)                             # no swap asked
        conn = self.serial(server)
        got = self.shell(conn, "findfs LABEL=ephemeral0; findfs LABEL=ephemeral1; "
                         "dd if=/dev/vdb bs=1 skip=1080 count=2 2>/dev/null | xxd -p; "
                         "echo lbl-$((1+1))-done", "lbl-2-done").decode()
        self.assertIn("/dev/vdb\r\n/dev/vdc\r\n", got)
        self.assertIn("53ef", got)              # ext4's superblock magic on vdb
        # the one without a guest format: nova's default for no os_type (vfat)
        got = self.shell(conn, "dd if=/dev/vdc bs=1 skip=82 count=5 2>/dev/null; "
                         "echo; echo fat-$((2+3))-done", "fat-5-done").decode()
        self.assertIn("FAT32\r\n", got)
        self._delete_server(server)
        self.assert_nothing_left(server)
