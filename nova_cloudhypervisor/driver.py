"""Nova compute driver for Cloud Hypervisor over its REST API.

Loaded with ``compute_driver = cloudhypervisor.CloudHypervisorDriver`` (the
``nova.virt.cloudhypervisor`` shim). The nova flow is ``nova_common.driver.BaseDriver``'s;
Cloud Hypervisor is bound to it in ``nova_cloudhypervisor.hypervisor``. What neither
implements (VNC and other graphical consoles, live migration) raises
``NotImplementedError`` or ``ConsoleTypeUnavailable``. The console log and the serial
console are the base's (the serial socket bridged by the guest's supervisor).
"""
import os

import nova.conf
from nova.virt import images
from oslo_concurrency import lockutils

from nova_cloudhypervisor import hypervisor
from nova_cloudhypervisor import opts
from nova_cloudhypervisor import vmconfig
from nova_common import disks
from nova_common import driver

opts.register(nova.conf.CONF)
CONF = nova.conf.CONF


def fetch_boot_file(context, instance, image_id):
    """A kernel or ramdisk image in the image cache (``disks.base_path``), as it is: not
    a disk image, so not converted or inspected as one."""
    path = disks.base_path(image_id)
    with lockutils.lock("nova-common-base-" + os.path.basename(path)):
        if not os.path.exists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            images.fetch(context, image_id, path + ".part",
                         trusted_certs=instance.trusted_certs)
            os.rename(path + ".part", path)
    return path


class CloudHypervisorDriver(driver.BaseDriver):
    hypervisor_class = hypervisor.CloudHypervisor

    def spawn(self, context, instance, image_meta, injected_files, admin_password,
              allocations, network_info=None, block_device_info=None, power_on=True,
              accel_info=None):
        # direct kernel boot: the image's kernel and ramdisk into the image cache (the
        # launch spec names them there); refused images are refused before
        if vmconfig.boot_mode(CONF, instance, image_meta) == "kernel":
            fetch_boot_file(context, instance, instance.kernel_id)
            if instance.ramdisk_id:
                fetch_boot_file(context, instance, instance.ramdisk_id)
        super().spawn(context, instance, image_meta, injected_files, admin_password,
                      allocations, network_info=network_info,
                      block_device_info=block_device_info, power_on=power_on,
                      accel_info=accel_info)
