"""A nova deployment in one process (nova's functional framework) whose nova-compute runs
CloudHypervisorDriver.

The VMM is the real ``cloud-hypervisor`` when ``HCI_CH_BINARY`` names one (and /dev/kvm
works for it), otherwise the project's **stand-in** (``tests.common.ch_standin``): the same
REST API on the same socket, every request checked against the official spec, and the
guest run for real in QEMU under TCG. Guests: the project's tiny guest, in Glance as a
kernel (aki), a ramdisk (ari) and a raw disk naming them (direct kernel boot), and as a raw
bootable disk for the firmware path (with the stand-in, the configured firmware is
SeaBIOS, which QEMU runs; a real Cloud Hypervisor needs CLOUDHV.fd or hypervisor-fw,
``HCI_CH_FIRMWARE``).
"""
# nova's functional package applies (or poisons) eventlet patching: import it first
from tests.functional.nova_qmp import base as qmp_base  # noqa: I001  isort:skip
import os
import shutil
import signal
import tempfile

import fixtures
from nova import context as nova_context
from nova.tests import fixtures as nova_fixtures

from nova_cloudhypervisor import driver  # noqa: F401 - registers [cloudhypervisor]
from nova_cloudhypervisor import process
from nova_common import instance_dir
from tests.common import guest_images
from tests.common.ch_standin import fixture as standin

REAL_BINARY = os.environ.get("HCI_CH_BINARY")
SEABIOS = "/usr/share/seabios/bios.bin"


class VmmReaper(fixtures.Fixture):
    """Stops, by their pidfiles, any VMM a test left running (also after failures)."""

    def __init__(self, root):
        super().__init__()
        self.root = root

    def _setUp(self):
        self.addCleanup(self._reap)

    def _reap(self):
        for uuid in instance_dir.list_uuids(self.root):
            idir = instance_dir.InstanceDir(uuid, root=self.root)
            pid = process.read_pid(idir)
            if process.alive(pid, uuid):
                os.kill(pid, signal.SIGKILL)


class CHServerTestBase(qmp_base.QMPServerTestBase):
    def _setup_compute_service(self):
        # short: UNIX socket paths must stay under 108 bytes
        self.instances = tempfile.mkdtemp(prefix="c", dir="/tmp")
        self.addCleanup(shutil.rmtree, self.instances, True)
        if REAL_BINARY:
            binary = REAL_BINARY
            firmware = os.environ.get("HCI_CH_FIRMWARE")
        else:
            binary = self.useFixture(standin.StandInBinary([self.instances])).path
            firmware = SEABIOS
        self.flags(compute_driver="cloudhypervisor.CloudHypervisorDriver",
                   instances_path=self.instances, shutdown_timeout=5, reboot_timeout=5,
                   force_config_drive=False)
        self.flags(binary=binary, firmware=firmware, soft_reboot_timeout=60,
                   group="cloudhypervisor")
        # the VMM (the stand-in too: it is started in place of the binary) runs as the
        # instance's guest uid through the privileged launcher's detached supervisor
        self.flags(allowed_binaries=[binary], launcher="detached", group="hci_guests")
        # a serial console port range of this test process's own (not the QMP tests')
        low = 30000 + (os.getpid() % 2000) * 10
        self.flags(enabled=True, port_range="%d:%d" % (low, low + 9), group="serial_console")
        self.flags(api_paste_config=os.path.join(os.sys.prefix, "etc", "nova",
                                                 "api-paste.ini"), group="wsgi")
        self.useFixture(nova_fixtures.PrivsepFixture())
        self._privsep()
        self.useFixture(fixtures.MockPatch(
            "os_brick.initiator.connector.get_connector_properties",
            return_value={"host": "compute", "ip": "127.0.0.1", "multipath": False,
                          "platform": "x86_64", "os_type": "linux"}))
        self.useFixture(VmmReaper(self.instances))
        self.guest = guest_images.tiny_guest()
        ctx = nova_context.get_admin_context()
        self.images = {}

        def upload(name, path, fmt, **props):
            with open(path, "rb") as f:
                return self.glance.create(ctx, {
                    "name": name, "disk_format": fmt, "container_format": fmt
                    if fmt in ("aki", "ari") else "bare", "visibility": "public",
                    "status": "active", "properties": props}, data=f)["id"]

        kernel = upload("tiny-kernel", self.guest.kernel, "aki")
        ramdisk = upload("tiny-ramdisk", self.guest.initrd, "ari")
        self.images["kernel"] = upload("tiny-direct", self.guest.disk_raw, "raw",
                                       kernel_id=kernel, ramdisk_id=ramdisk,
                                       os_command_line=self.guest.cmdline)
        self.images["raw"] = upload("tiny-raw", self.guest.disk_raw, "raw")
        self.images["qcow2"] = upload("tiny-qcow2", self.guest.disk_qcow2, "qcow2")
        fixture = self.glance

        def update(_api, context, image_id, metadata, data=None, purge_props=False):
            if data is not None:
                fixture._imagedata[image_id] = data.read()
            return fixture.update(context, image_id, metadata, purge_props=purge_props)

        self.stub_out("nova.image.glance.API.update", update)
        return self._start_compute("compute")

    def _wait_for_state_change(self, server, expected_status, max_retries=240, **kw):
        # nova's default is 10 polls of 0.5 s: a first boot on a loaded 2-core machine
        # (image fetched and flattened, the stand-in and its QEMU started) takes longer
        return super()._wait_for_state_change(server, expected_status,
                                              max_retries=max_retries, **kw)

    def vmm_pid(self, server):
        return process.read_pid(instance_dir.InstanceDir(server["id"], root=self.instances))
