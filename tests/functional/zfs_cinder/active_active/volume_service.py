"""One cinder-volume service of a cluster, driver side, in a process of its own.

Started by the active-active test with a cinder.conf of its own (its host, the cluster,
``[coordination]backend_url`` on the test's etcd, a ``lock_path`` of its own as another
cinder host would have), it starts cinder's coordinator as cinder-volume does, sets the
driver up, then runs the operations it reads from stdin (one JSON object a line, many at
once in green threads, as the volume manager runs RPC calls) and answers each on stdout.
Operations call the driver as cinder's volume manager does (a delete removes the export
first).

    volume_service.ARGV + [CONFIG_FILE]

Eventlet's monkey patching comes first, as in cinder-volume (``cinder.cmd.volume``),
before this module is imported (``ARGV``).
"""
import json
import os
import sys
import threading
import traceback

from cinder import context
from cinder import coordination
from cinder import objects
from cinder.common import config  # noqa: F401 (host, cluster)
from cinder.tests.unit import fake_snapshot
from cinder.tests.unit import fake_volume
from cinder.volume import configuration
from cinder.volume import driver as cinder_driver
from oslo_config import cfg
from oslo_log import log as logging

from zfs_cinder import driver

CONF = cfg.CONF
LOG = logging.getLogger(__name__)
GROUP = "zfsguest"
CONNECTOR = {"host": "compute-aa", "initiator": "iqn.1993-08.org.debian:01:aa", "ip": "127.0.0.1"}


class Service:
    def __init__(self, config_file):
        objects.register_all()
        logging.register_options(CONF)
        CONF.register_opts(cinder_driver.volume_opts, group=GROUP)
        conf = configuration.Configuration(cinder_driver.volume_opts, config_group=GROUP)
        self.drv = driver.ZFSVolumeDriver(configuration=conf, host="%s@%s" % ("h", GROUP))
        CONF([], project="cinder", default_config_files=[config_file])
        logging.setup(CONF, "cinder")
        self.drv.host = "%s@%s" % (CONF.host, GROUP)
        self.ctx = context.get_admin_context()
        coordination.COORDINATOR.start()
        self.drv.do_setup(self.ctx)
        self.drv.check_for_setup_error()
        self._out = threading.Lock()

    def volume(self, v):
        vol = fake_volume.fake_volume_obj(
            self.ctx, id=v["id"], size=v["size"], host="%s@%s#%s" % (CONF.host, GROUP, GROUP),
            volume_type_id=None, provider_location=v.get("provider_location"),
            provider_auth=v.get("provider_auth"))
        vol.volume_attachment = objects.VolumeAttachmentList()
        return vol

    def snapshot(self, s, volume):
        return fake_snapshot.fake_snapshot_obj(self.ctx, id=s["id"], volume=volume,
                                               volume_id=volume.id,
                                               volume_size=s["volume_size"])

    def run(self, req):
        d = self.drv
        op, vol = req["op"], self.volume(req["volume"])
        result = None
        if op == "create":
            d.create_volume(vol)
        elif op == "clone":
            d.create_cloned_volume(vol, self.volume(req["source"]))
        elif op == "from_snapshot":
            source = self.volume(req["source"])
            d.create_volume_from_snapshot(vol, self.snapshot(req["snapshot"], source))
        elif op == "snapshot":
            d.create_snapshot(self.snapshot(req["snapshot"], vol))
        elif op == "delete_snapshot":
            d.delete_snapshot(self.snapshot(req["snapshot"], vol))
        elif op == "extend":
            d.extend_volume(vol, req["new_size"])
        elif op == "export":
            result = d.create_export(self.ctx, vol, CONNECTOR)
        elif op == "unexport":
            d.remove_export(self.ctx, vol)
        elif op == "delete":
            d.remove_export(self.ctx, vol)
            d.delete_volume(vol)
        else:
            raise ValueError("unknown operation %s" % op)
        return result

    def answer(self, req):
        LOG.info("operation %s %s of volume %s", req["id"], req["op"], req["volume"]["id"])
        try:
            reply = {"id": req["id"], "ok": True, "result": self.run(req)}
        except Exception as e:
            reply = {"id": req["id"], "ok": False,
                     "error": "%s: %s" % (type(e).__name__, e),
                     "trace": traceback.format_exc()[-3000:]}
        with self._out:
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()

    def serve(self):
        sys.stdout.write(json.dumps({"ready": CONF.host}) + "\n")
        sys.stdout.flush()
        buf = b""
        os.set_blocking(0, False)     # eventlet's os.read then waits in its hub
        while True:
            chunk = os.read(0, 65536)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                threading.Thread(target=self.answer, args=(json.loads(line),)).start()
        coordination.COORDINATOR.stop()


def main(config_file):
    Service(config_file).serve()


ARGV = [sys.executable, "-c",
        "import sys; from cinder import monkey_patch; monkey_patch.patch(); "
        "from tests.functional.zfs_cinder.active_active import volume_service; "
        "volume_service.main(sys.argv[1])"]
