"""Encrypted volumes: cinder's metadata checked and turned into QEMU's LUKS options and
secret objects, and (on a real QEMU without a guest OS) a blank volume formatted, an
existing header opened, the wrong key refused with nothing left in QEMU."""
import binascii
import json
import os

from castellan.common.objects import symmetric_key
import fixtures
from nova import context as nova_context
from nova import exception
from nova import objects
from oslo_utils import uuidutils

from nova_common import hypervisor
from nova_common import instance_dir
from nova_common import record
from nova_qmp import encryption
from nova_qmp import iscsi
from nova_qmp import qemu
from tests.unit.nova_common import base
from tests.unit.nova_qmp import test_driver

objects.register_all()
MiB = 1024 * 1024
KEY = bytes(range(32))
PASSPHRASE = binascii.hexlify(KEY).decode()
VOLUME = "7a1f3c2e-1111-4c2f-9f6e-2b1d3c4e5f60"
META = {"encryption_key_id": "k-1", "provider": "luks", "cipher": "aes-xts-plain64",
        "key_size": 256, "control_location": "front-end"}


class FakeKeyManager:
    def __init__(self, keys):
        self.keys = keys

    def get(self, context, key_id):
        return symmetric_key.SymmetricKey("AES", 8 * len(self.keys[key_id]),
                                          self.keys[key_id])


class KeysCase(base.TestCase):
    def setUp(self):
        super().setUp()
        self.keys = {"k-1": KEY}
        # the key manager is the boundary (castellan's backends: barbican, vault, conf)
        self.patch = self.useFixture(fixtures.MockPatch(
            "castellan.key_manager.API", lambda _conf: FakeKeyManager(self.keys)))
        self.master = os.urandom(32)
        self.ctx = nova_context.get_admin_context()

    def entry(self, meta=None, **conn):
        return encryption.entry(self.ctx, VOLUME, conn, META if meta is None else meta,
                                self.master)


class TestEntry(KeysCase):
    def test_luks_and_its_aliases_keep_the_passphrase_encrypted(self):
        for provider in ("luks", "nova.volume.encryptors.luks.LuksEncryptor",
                         "os_brick.encryptors.luks.LuksEncryptor", "LuksEncryptor"):
            got = self.entry(dict(META, provider=provider))
            self.assertEqual("luks", got["format"])
            self.assertNotIn(PASSPHRASE, json.dumps(got))
            self.assertEqual(PASSPHRASE, iscsi.decrypt(self.master, got["key"]))
            self.assertEqual({"cipher-alg": "aes-128", "cipher-mode": "xts",
                              "ivgen-alg": "plain64"}, got["create"])

    def test_other_formats_and_uses_are_refused(self):
        for provider in ("luks2", "plain", "nova.volume.encryptors.cryptsetup."
                         "CryptsetupEncryptor", "bitlocker"):
            e = self.assertRaises(exception.VolumeEncryptionNotSupported, self.entry,
                                  dict(META, provider=provider))
            self.assertIn(VOLUME, str(e))
        self.assertRaises(exception.VolumeEncryptionNotSupported, self.entry,
                          multiattach=True)

    def test_nothing_to_decrypt_on_the_host(self):
        self.assertIsNone(self.entry(dict(META, control_location="back-end")))
        self.assertIsNone(self.entry({}))
        self.assertIsNone(self.entry(dict(META, provider=None)))

    def test_a_missing_key_is_a_clear_attach_failure(self):
        self.assertRaises(exception.VolumeAttachFailed, self.entry,
                          dict(META, encryption_key_id=None))
        e = self.assertRaises(exception.VolumeAttachFailed, self.entry,
                              dict(META, encryption_key_id="gone"))
        self.assertIn("gone", str(e))

    def test_cinder_ciphers_in_qemu_terms(self):
        def opts(cipher, key_size):
            return encryption.create_options({"cipher": cipher, "key_size": key_size})
        self.assertEqual({}, opts(None, None))
        self.assertEqual("aes-256", opts("aes-xts-plain64", 512)["cipher-alg"])
        self.assertEqual("aes-256", opts("aes-xts-plain64", None)["cipher-alg"])
        self.assertEqual({"cipher-alg": "aes-256", "cipher-mode": "cbc",
                          "ivgen-alg": "essiv", "ivgen-hash-alg": "sha256"},
                         opts("aes-cbc-essiv:sha256", 256))
        for cipher, size in (("aes-xts-plain64", 128), ("aes-xts-plain64", 100),
                             ("aes-cbc-essiv", 256), ("des-cbc-plain", 64),
                             ("aes-xts-plain64,x=1", 256), (None, 256)):
            self.assertRaises(exception.VolumeEncryptionNotSupported, opts, cipher, size)


class TestQemuArguments(KeysCase):
    def test_blockdevs_and_create_job(self):
        plain = qemu.volume_blockdev(VOLUME, "/dev/sdz", True)
        node = plain["node-name"]
        proto, luks = encryption.blockdevs(node, plain)
        self.assertEqual({"driver": "host_device", "filename": "/dev/sdz",
                          "node-name": node + "f"}, proto)
        self.assertEqual({"driver": "luks", "node-name": node, "file": node + "f",
                          "key-secret": node + "k", "discard": "unmap"}, luks)
        vol = {"encryption": self.entry()}
        job = encryption.create_job("j", node + "f", node, 64 * MiB, vol)
        self.assertEqual({"job-id": "j", "options": {
            "driver": "luks", "file": node + "f", "size": 60 * MiB,
            "key-secret": node + "k", "cipher-alg": "aes-128", "cipher-mode": "xts",
            "ivgen-alg": "plain64"}}, job)
        self.assertRaises(exception.InvalidInput, encryption.create_job, "j", "f", node,
                          4 * MiB, vol)

    def test_command_line_has_the_secret_encrypted_and_the_luks_node(self):
        uuid = uuidutils.generate_uuid()
        idir = instance_dir.InstanceDir(uuid)
        vol = {"path": "/dev/sdz", "block": True, "slot": "hp0",
               "encryption": self.entry()}
        guest = hypervisor.Guest(uuid, idir, record.Record(
            name="i", vcpus=1, memory_mb=64,
            spec={"machine": "q35", "root_disk": True, "config_drive": False},
            volumes={VOLUME: vol}))
        argv = qemu.command_line(base.CONF, guest)
        self.assertNotIn(PASSPHRASE, " ".join(argv))
        objs = [json.loads(argv[i + 1]) for i, a in enumerate(argv) if a == "-object"]
        self.assertEqual([iscsi.MASTER_ID, qemu.volume_ids(VOLUME)[0] + "k"],
                         [o["id"] for o in objs])
        self.assertEqual(iscsi.MASTER_ID, objs[1]["keyid"])
        nodes = [json.loads(argv[i + 1]) for i, a in enumerate(argv) if a == "-blockdev"]
        self.assertEqual(["host_device", "luks"], [n["driver"] for n in nodes])
        device = [a for a in argv if a.startswith("virtio-blk-pci,drive=v")][0]
        self.assertIn("drive=%s," % nodes[1]["node-name"], device)


class TestOnQemu(test_driver.DriverCase):
    """The hypervisor's block nodes for an encrypted volume on a running QEMU."""

    def setUp(self):
        super().setUp()
        self.keys = {"k-1": KEY, "k-2": os.urandom(32)}
        self.useFixture(fixtures.MockPatch(
            "castellan.key_manager.API", lambda _conf: FakeKeyManager(self.keys)))
        self.drv.power_on(None, self.inst, None)
        self.guest = self.drv._guest(self.inst)
        self.path = self.idir.file("vol.img")
        with open(self.path, "wb") as f:
            f.truncate(16 * MiB)
        self.node = qemu.volume_ids(VOLUME)[0]

    def vol(self, key_id="k-1"):
        hv = self.drv.hv
        enc = hv.volume_encryption(self.guest, nova_context.get_admin_context(), VOLUME,
                                   {}, dict(META, encryption_key_id=key_id))
        return {"path": self.path, "block": False, "slot": None, "encryption": enc}

    def qemu_has(self):
        hv = self.drv.hv
        objs = {o["name"] for o in hv._qmp(self.guest, "qom-list", path="/objects")}
        nodes = {n["node-name"] for n in hv._qmp(self.guest, "query-named-block-nodes")}
        return objs, nodes, hv._qmp(self.guest, "query-jobs")

    def test_blank_volume_formatted_then_reopened_and_wrong_key_refused(self):
        hv, vol = self.drv.hv, self.vol()
        secrets = hv._add_secrets(self.guest, self.node, vol)
        hv._add_blockdevs(self.guest, self.node, VOLUME, vol)
        with open(self.path, "rb") as f:
            self.assertEqual(b"LUKS\xba\xbe", f.read(6))
        self.assertEqual(16 * MiB, os.path.getsize(self.path))     # full size again
        payload = hv._node_size(self.guest, self.node)
        self.assertGreater(payload, 13 * MiB)
        luks_node = [n for n in hv._qmp(self.guest, "query-named-block-nodes")
                     if n["node-name"] == self.node][0]
        self.assertEqual(16 * MiB - payload,
                         luks_node["image"]["format-specific"]["data"]["payload-offset"])
        hv._del_blockdevs(self.guest, [self.node, self.node + "f"])
        hv._del_secrets(self.guest, secrets)
        with open(self.path, "rb") as f:
            header = f.read(MiB)

        # reopened with its key: not formatted again (same header, same key slots)
        secrets = hv._add_secrets(self.guest, self.node, vol)
        hv._add_blockdevs(self.guest, self.node, VOLUME, vol)
        with open(self.path, "rb") as f:
            self.assertEqual(header, f.read(MiB))
        hv._del_blockdevs(self.guest, [self.node, self.node + "f"])
        hv._del_secrets(self.guest, secrets)
        before = self.qemu_has()

        # the wrong key: a clear error, the header untouched, nothing left in QEMU
        wrong = self.vol("k-2")
        secrets = hv._add_secrets(self.guest, self.node, wrong)
        e = self.assertRaises(exception.VolumeAttachFailed, hv._add_blockdevs, self.guest,
                              self.node, VOLUME, wrong)
        self.assertIn("cannot open the encrypted volume", str(e))
        hv._del_secrets(self.guest, secrets)
        self.assertEqual(before, self.qemu_has())
        self.assertNotIn(self.node + "f", before[1])
        with open(self.path, "rb") as f:
            self.assertEqual(header, f.read(MiB))

    def test_attach_disk_failing_leaves_no_secret_or_node(self):
        hv, vol = self.drv.hv, self.vol("k-1")
        before = self.qemu_has()
        vol["slot"] = "no-such-bus"            # device_add fails after the nodes exist
        self.assertRaises(exception.InternalError, hv.attach_disk, self.guest, VOLUME, vol)
        objs, nodes, jobs = self.qemu_has()
        self.assertEqual(before[1], nodes)
        self.assertEqual(set(), {self.node + "k"} & objs)
        self.assertEqual([], jobs)
