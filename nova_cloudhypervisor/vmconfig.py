"""The ``VmConfig`` of an instance, from its flavor, image, disks and volumes.

NICs are not in it: they are added with ``vm.add-net`` (tap fds attached) between
``vm.create`` and ``vm.boot``, as libvirt's ch driver and kata do, and hot-plugged the same
way. The serial port (ttyS0, where firmware and kernels write) is a UNIX socket in the
instance directory (``Socket`` mode, v36+), which the guest's supervisor logs into the
console log and serves over TCP for nova's serial console (``nova_common.serialbridge``);
the virtio console is off.
"""
from nova import exception
from nova.i18n import _

from nova_cloudhypervisor import models
from nova_common import disks
from nova_common import instance_dir

MiB = 1024 ** 2
CONSOLE_LOG = instance_dir.CONSOLE_LOG
ROOT_DISK = instance_dir.ROOT_DISK
CONFIG_DRIVE = instance_dir.CONFIG_DRIVE
RESCUE_DISK = instance_dir.RESCUE_DISK
SERIAL_SOCKET = "serial.sock"
ROOT_ID = "root"
CONFIG_ID = "config"
RESCUE_ID = "rescue"


def boot_mode(conf, instance, image_meta):
    """``"kernel"`` for instances of images with ``kernel_id`` (direct boot; nova copies
    the image's kernel_id and ramdisk_id into the instance), ``"firmware"`` for the
    others when ``[cloudhypervisor]firmware`` is set; anything else is refused before a
    file or process is made."""
    if instance.get("kernel_id"):
        return "kernel"
    firmware_type = image_meta.properties.get("hw_firmware_type")
    if firmware_type not in (None, "uefi"):
        raise exception.ImageUnacceptable(
            image_id=instance.image_ref,
            reason=_("hw_firmware_type=%s is not supported by Cloud Hypervisor (it boots "
                     "firmware or a kernel directly)") % firmware_type)
    if not conf.cloudhypervisor.firmware:
        raise exception.ImageUnacceptable(
            image_id=instance.image_ref,
            reason=_("the image has no kernel_id and no firmware is configured "
                     "([cloudhypervisor]firmware)"))
    return "firmware"


def payload(conf, instance, image_meta, idir, mode):
    """Direct boot from the image's kernel and ramdisk (fetched into the image cache by
    the driver at spawn), or the configured firmware."""
    if mode == "kernel":
        return models.PayloadConfig(
            kernel=disks.base_path(instance.kernel_id),
            initramfs=(disks.base_path(instance.ramdisk_id)
                       if instance.get("ramdisk_id") else None),
            cmdline=(image_meta.properties.get("os_command_line")
                     or conf.cloudhypervisor.default_cmdline))
    return models.PayloadConfig(firmware=conf.cloudhypervisor.firmware)


def rescue(conf, config, idir):
    """``config`` booting the rescue disk through the firmware, the instance's own disks
    after it."""
    config.payload = models.PayloadConfig(firmware=conf.cloudhypervisor.firmware)
    config.disks = [models.DiskConfig(path=idir.file(RESCUE_DISK), id=RESCUE_ID,
                                      image_type="Raw")] + list(config.disks or [])
    return config


def volume_disk(volume_id, path):
    """A volume's disk: raw, its id the volume's, the volume id as its serial (the guest
    finds it in /dev/disk/by-id; virtio-blk serials hold 20 bytes)."""
    return models.DiskConfig(path=path, id=volume_disk_id(volume_id), serial=volume_id[:20],
                             image_type="Raw")


def volume_disk_id(volume_id):
    return "vol-" + volume_id


def build(conf, instance, image_meta, idir, mode, volumes=(), config_drive=False,
          root_disk=True):
    """``volumes``: (volume id, device path) in attach order; with ``root_disk=False`` the
    first volume is the root disk (boot from volume)."""
    flavor = instance.flavor
    devices = []
    if root_disk:
        devices.append(models.DiskConfig(path=idir.file(ROOT_DISK), id=ROOT_ID,
                                       image_type="Raw"))
    devices += [volume_disk(vid, path) for vid, path in volumes]
    if config_drive:
        devices.append(models.DiskConfig(path=idir.file(CONFIG_DRIVE), id=CONFIG_ID,
                                       image_type="Raw", readonly=True))
    return models.VmConfig(
        payload=payload(conf, instance, image_meta, idir, mode),
        cpus=models.CpusConfig(boot_vcpus=flavor.vcpus, max_vcpus=flavor.vcpus),
        memory=models.MemoryConfig(size=flavor.memory_mb * MiB),
        disks=devices,
        rng=models.RngConfig(src="/dev/urandom"),
        serial=serial(idir),
        console=models.ConsoleConfig(mode="Off"),
        platform=models.PlatformConfig(system_uuid=instance.uuid,
                                       system_serial_number=instance.uuid),
        pvpanic=True,
    )


def serial(idir):
    return models.SerialConfig(mode="Socket", socket=idir.file(SERIAL_SOCKET))


def net(vif_id, tap, mac, mtu=None):
    """A NIC on an existing tap device (its fds passed along by the caller)."""
    return models.NetConfig(id=net_id(vif_id), mac=mac, tap=tap, mtu=mtu)


def net_id(vif_id):
    return "vif-" + vif_id
