"""Options of the Cloud Hypervisor compute driver: the ``[cloudhypervisor]`` group."""
from oslo_config import cfg

ch_group = cfg.OptGroup("cloudhypervisor", title="Cloud Hypervisor compute driver",
                        help="One cloud-hypervisor process per instance, managed over its "
                             "REST API socket.")

ch_opts = [
    cfg.StrOpt("binary", default="/usr/bin/cloud-hypervisor",
               help="The cloud-hypervisor executable (v52 or later)."),
    cfg.StrOpt("firmware", default=None,
               help="Firmware that boots images without kernel_id: the edk2 'CloudHv' "
                    "build (CLOUDHV.fd) or rust-hypervisor-firmware (hypervisor-fw). "
                    "Unset: only images with kernel_id (direct kernel boot) can boot."),
    cfg.StrOpt("default_cmdline", default="console=ttyS0 root=/dev/vda rw",
               help="Kernel command line for direct kernel boot when the image has no "
                    "os_command_line property."),
    cfg.BoolOpt("seccomp", default=True,
                help="Run cloud-hypervisor with its seccomp filter (--seccomp true)."),
    cfg.ListOpt("extra_args", default=[],
                help="Extra cloud-hypervisor arguments appended to every command line "
                     "(one list item per argument)."),
    cfg.IntOpt("console_log_max_bytes", default=1024 * 1024, min=64 * 1024,
               help="Size at which a guest's console log (console.log in its instance "
                    "directory, written from its serial port) is rotated; one older file "
                    "is kept. The console output nova's API returns is the newest "
                    "100 KiB."),
    cfg.IntOpt("api_timeout", default=30, min=1,
               help="Seconds an API call may take."),
    cfg.IntOpt("start_timeout", default=30, min=1,
               help="Seconds cloud-hypervisor may take from start to its API socket "
                    "answering vmm.ping."),
    cfg.IntOpt("stop_timeout", default=10, min=1,
               help="Seconds to wait for the process to exit after vmm.shutdown before "
                    "it is killed."),
    cfg.IntOpt("soft_reboot_timeout", default=120, min=1,
               help="Seconds a guest may take to power off after the ACPI power button "
                    "in a soft reboot before the VM is reset instead (hard reboot)."),
    cfg.IntOpt("save_timeout", default=600, min=1,
               help="Seconds a snapshot/restore (suspend, resume) or a disk copy for a "
                    "Glance snapshot may take."),
]


def register(conf):
    conf.register_group(ch_group)
    conf.register_opts(ch_opts, group=ch_group)


def list_opts():
    return [(ch_group, ch_opts)]
