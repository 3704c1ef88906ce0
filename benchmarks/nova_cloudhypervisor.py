"""nova_cloudhypervisor: what the driver's client costs itself per API call, and the round
trip over the API socket.

- "client cost": building a call's body (``VmConfig`` from a flavor, to JSON) and decoding
  a ``vm.info`` answer into models, in this process, with no I/O: the driver's own time
  per operation outside the VMM.
- "round trip": ``vmm.ping`` and ``vm.info`` over the UNIX socket to a running VMM. With no
  real cloud-hypervisor on this machine the server is the project's **stand-in**
  (tests/common/ch_standin, Python, validating each request against the spec), so the
  number is the stand-in's, not Cloud Hypervisor's; ``HCI_CH_BINARY`` names a real one.

    python benchmarks/nova_cloudhypervisor.py [-n 2000]

Prints a Markdown table of medians (microseconds).
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from nova import objects  # noqa: E402
import nova.conf  # noqa: E402
from oslo_utils import uuidutils  # noqa: E402

from nova_cloudhypervisor import models  # noqa: E402
from nova_cloudhypervisor import opts  # noqa: E402
from nova_cloudhypervisor import process  # noqa: E402
from nova_cloudhypervisor import vmconfig  # noqa: E402
from nova_common import instance_dir  # noqa: E402
from tests.common.ch_standin import fixture  # noqa: E402

CONF = nova.conf.CONF


def timed(fn, n):
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1e6)
    return statistics.median(samples)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=2000)
    args = parser.parse_args()
    objects.register_all()
    opts.register(CONF)
    root = tempfile.mkdtemp(prefix="b", dir="/tmp")
    CONF.set_override("instances_path", root)
    binary = os.environ.get("HCI_CH_BINARY")
    stand_in = None
    if not binary:
        stand_in = fixture.StandInBinary()
        stand_in.setUp()
        binary = stand_in.path
    CONF.set_override("binary", binary, "cloudhypervisor")
    CONF.set_override("firmware", "/usr/share/seabios/bios.bin", "cloudhypervisor")
    inst = objects.Instance(uuid=uuidutils.generate_uuid(), image_ref="i", kernel_id="",
                            ramdisk_id="", flavor=objects.Flavor(vcpus=2, memory_mb=512,
                                                                 root_gb=1))
    image = objects.ImageMeta.from_dict({"disk_format": "raw", "properties": {}})
    idir = instance_dir.InstanceDir(inst.uuid).create()
    api = process.start(CONF, inst, idir)
    try:
        api.create(vmconfig.build(CONF, inst, image, idir, "firmware"))
        info = api._http.get("vm.info").content

        def build():
            vmconfig.build(CONF, inst, image, idir, "firmware").to_json()

        def decode():
            api._decode("vm.info", 200, info)

        rows = [("client cost: VmConfig built and serialised", timed(build, args.n)),
                ("client cost: vm.info answer decoded", timed(decode, args.n)),
                ("round trip: vmm.ping (%s)" % ("stand-in" if stand_in else binary),
                 timed(api.ping, max(200, args.n // 10))),
                ("round trip: vm.info (%s)" % ("stand-in" if stand_in else binary),
                 timed(api.info, max(200, args.n // 10)))]
        assert isinstance(api.info(), models.VmInfo)
    finally:
        process.stop(CONF, inst.uuid, idir, api)
        api.close()
        idir.remove()
        shutil.rmtree(root, ignore_errors=True)
        if stand_in:
            stand_in.cleanUp()
    print("| measurement | median (µs) |\n|---|---|")
    for name, value in rows:
        print("| %s | %.0f |" % (name, value))


if __name__ == "__main__":
    main()
