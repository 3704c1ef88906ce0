import json
import os
import socket
import stat

from nova import exception
from oslo_utils import uuidutils

from nova_common import hypervisor
from nova_common import instance_dir
from nova_common import record
from nova_qmp import iscsi
from nova_qmp import opts
from nova_qmp import qemu
from tests.unit.nova_common import base

opts.register(base.CONF)
IQN = "iqn.2010-10.org.openstack:volume-1"
PASSWORD = "Sup3r-s3cret"


class ISCSITestCase(base.TestCase):
    def setUp(self):
        super().setUp()
        # a listening portal on loopback (the first that answers is used)
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.addCleanup(self.listener.close)
        self.portal = "127.0.0.1:%d" % self.listener.getsockname()[1]
        self.uuid = uuidutils.generate_uuid()
        self.idir = instance_dir.InstanceDir(self.uuid)
        self.idir.create()
        self.flags(iscsi_initiator="qemu", iscsi_initiator_name="iqn.2026-12.test:host",
                   group="qmp")

    def info(self, **data):
        data.setdefault("target_portal", self.portal)
        data.setdefault("target_iqn", IQN)
        data.setdefault("target_lun", 1)
        return {"driver_volume_type": "iscsi", "data": data}

    def chap(self, **data):
        return self.info(auth_method="CHAP", auth_username="alice",
                         auth_password=PASSWORD, **data)


class TestTarget(ISCSITestCase):
    def test_chap_password_is_kept_encrypted_with_the_instance_key(self):
        key = iscsi.master_key(self.idir, 0)
        entry = iscsi.target("vol-1", self.chap(), key)
        self.assertEqual({"kind", "portal", "target", "lun", "user", "password"},
                         set(entry))
        self.assertNotIn(PASSWORD, json.dumps(entry))
        self.assertEqual(PASSWORD, iscsi.decrypt(key, entry["password"]))
        mode = os.stat(self.idir.file(iscsi.MASTER_KEY)).st_mode
        self.assertEqual(0o600, stat.S_IMODE(mode))
        self.assertEqual(key, iscsi.master_key(self.idir, 0))     # kept, not remade

    def test_first_answering_portal_of_a_multipath_connection(self):
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))
        dead = "127.0.0.1:%d" % closed.getsockname()[1]
        closed.close()
        info = self.info(target_portals=[dead, self.portal],
                         target_iqns=[IQN + "a", IQN + "b"], target_luns=[3, 4])
        entry = iscsi.target("vol-1", info, iscsi.master_key(self.idir, 0))
        self.assertEqual((self.portal, IQN + "b", 4),
                         (entry["portal"], entry["target"], entry["lun"]))
        info = self.info(target_portal=dead)
        self.assertRaises(exception.VolumeAttachFailed, iscsi.target, "vol-1", info,
                          b"k" * 32)

    def test_bad_values_are_refused(self):
        key = b"k" * 32
        for bad in (self.info(target_portal="127.0.0.1"),
                    self.info(target_portal="127.0.0.1:99999"),
                    self.info(target_portal="a,b:3260"),
                    self.info(target_iqn="iqn.bad name"),
                    self.info(target_lun="x"),
                    self.info(target_lun=70000),
                    self.info(auth_method="CHAP", auth_username="a b",
                              auth_password="p"),
                    self.info(auth_method="CHAP", auth_username="a"),
                    self.info(auth_method="kerberos")):
            self.assertRaises(exception.VolumeAttachFailed, iscsi.target, "vol-1", bad,
                              key)

    def test_connector_gets_an_initiator_name_only_with_the_qemu_initiator(self):
        props = {"host": "compute", "ip": "127.0.0.1"}
        self.assertEqual("iqn.2026-12.test:host",
                         iscsi.connector_properties(base.CONF, props)["initiator"])
        kept = dict(props, initiator="iqn.2004-10.com.ubuntu:01:abc")
        self.assertEqual(kept, iscsi.connector_properties(base.CONF, kept))
        self.flags(iscsi_initiator_name=None, group="qmp")
        self.flags(host="Compute_1")
        if not os.path.exists("/etc/iscsi/initiatorname.iscsi"):
            self.assertEqual("iqn.2026-12.org.openstack.hci:compute-1",
                             iscsi.initiator_name(base.CONF))
        self.flags(iscsi_initiator="os-brick", group="qmp")
        self.assertEqual(props, iscsi.connector_properties(base.CONF, props))


class TestQemuArguments(ISCSITestCase):
    def argv(self, volumes):
        guest = hypervisor.Guest(self.uuid, self.idir, record.Record(
            name="instance-1", vcpus=1, memory_mb=128,
            spec={"machine": "q35", "root_disk": True, "config_drive": False},
            volumes=volumes))
        return qemu.command_line(base.CONF, guest)

    def test_blockdev_and_secret_objects_on_the_command_line(self):
        volume_id = uuidutils.generate_uuid()
        node = qemu.volume_ids(volume_id)[0]
        key = iscsi.master_key(self.idir, 0)
        vol = dict(iscsi.target(volume_id, self.chap(), key), slot="hp0", boot=False)
        argv = self.argv({volume_id: vol})
        self.assertNotIn(PASSWORD, " ".join(argv))
        objects = [json.loads(argv[i + 1]) for i, a in enumerate(argv) if a == "-object"]
        self.assertEqual([{"qom-type": "secret", "id": iscsi.MASTER_ID, "format": "raw",
                           "file": self.idir.file(iscsi.MASTER_KEY)},
                          {"qom-type": "secret", "id": node + "s", "format": "base64",
                           "keyid": iscsi.MASTER_ID, "data": vol["password"]["data"],
                           "iv": vol["password"]["iv"]}], objects)
        self.assertEqual(PASSWORD, iscsi.decrypt(key, objects[1]))
        blockdev = json.loads(argv[argv.index("-blockdev") + 1])
        self.assertEqual(
            {"driver": "raw", "node-name": node, "discard": "unmap",
             "file": {"driver": "iscsi", "node-name": node + "f", "transport": "tcp",
                      "portal": self.portal, "target": IQN, "lun": 1, "user": "alice",
                      "password-secret": node + "s",
                      "initiator-name": "iqn.2026-12.test:host"}}, blockdev)

    def test_without_chap_no_secret(self):
        volume_id = uuidutils.generate_uuid()
        vol = dict(iscsi.target(volume_id, self.info(), b"k" * 32), slot="hp0")
        argv = self.argv({volume_id: vol})
        objects = [json.loads(argv[i + 1]) for i, a in enumerate(argv) if a == "-object"]
        self.assertEqual([iscsi.MASTER_ID], [o["id"] for o in objects])
        file = json.loads(argv[argv.index("-blockdev") + 1])["file"]
        self.assertNotIn("user", file)
        self.assertNotIn("password-secret", file)
