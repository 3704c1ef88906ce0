"""Options of the QMP compute driver: the ``[qmp]`` group of nova.conf."""
from oslo_config import cfg

qmp_group = cfg.OptGroup("qmp", title="QMP compute driver",
                         help="QEMU run directly by nova-compute and managed over QMP.")

qmp_opts = [
    cfg.StrOpt("qemu_binary", default="/usr/bin/qemu-system-x86_64",
               help="QEMU system emulator to run; its name's suffix is the guest "
                    "architecture reported to the scheduler."),
    cfg.StrOpt("accelerator", default="kvm", choices=["kvm", "tcg"],
               help="QEMU accelerator. 'kvm' needs /dev/kvm; 'tcg' is software emulation "
                    "(slow; for hosts without usable KVM and for tests)."),
    cfg.StrOpt("machine_type", default="q35",
               help="QEMU machine type (e.g. q35, pc)."),
    cfg.StrOpt("cpu_model", default=None,
               help="QEMU -cpu model; unset: 'host' with kvm, 'max' with tcg."),
    cfg.StrOpt("extra_args", default="",
               help="Extra QEMU arguments appended to every command line, split as a "
                    "shell would (quote an argument holding spaces; commas stay inside "
                    "their argument), e.g. '-device virtio-balloon-pci,id=balloon0'. "
                    "Taken at every start of a guest (a stop/start or hard reboot)."),
    cfg.BoolOpt("sandbox", default=True,
                help="Run QEMU with its seccomp sandbox (-sandbox on, with spawning, "
                     "elevating privileges and obsolete system calls denied)."),
    cfg.IntOpt("qmp_timeout", default=30, min=1,
               help="Seconds a QMP command or connection may take."),
    cfg.IntOpt("start_timeout", default=30, min=1,
               help="Seconds QEMU may take from start to its QMP socket answering."),
    cfg.IntOpt("save_timeout", default=600, min=1,
               help="Seconds saving or restoring a guest's state (suspend, resume) or "
                    "copying its disk for a snapshot may take."),
    cfg.IntOpt("console_log_max_bytes", default=1024 * 1024, min=64 * 1024,
               help="Size at which a guest's console log (console.log in its instance "
                    "directory) is rotated; one older file is kept, so a guest's console "
                    "output takes at most twice this much of instances_path. The console "
                    "output nova's API returns is the newest 100 KiB."),
    cfg.IntOpt("stop_timeout", default=10, min=1,
               help="Seconds to wait for a QEMU process to exit after 'quit' before it "
                    "is killed."),
    cfg.StrOpt("iscsi_initiator", default="os-brick", choices=["os-brick", "qemu"],
               help="Who connects cinder's 'iscsi' volumes: 'os-brick' logs in from the "
                    "host (open-iscsi, the iscsi_tcp kernel module) and gives QEMU the "
                    "block device; 'qemu' lets each guest's QEMU connect with its own "
                    "iSCSI initiator (libiscsi, Debian's qemu-block-extra): no host "
                    "session, no kernel module, CHAP passed to QEMU encrypted. With "
                    "'qemu', multipath portals are not used together: the first that "
                    "answers is."),
    cfg.StrOpt("iscsi_initiator_name", default=None,
               help="iSCSI initiator name (IQN) QEMU's initiator uses and nova sends "
                    "cinder with iscsi_initiator = qemu. Unset: the host's open-iscsi name "
                    "(/etc/iscsi/initiatorname.iscsi), else "
                    "'iqn.2026-12.org.openstack.hci:<[DEFAULT] host>'."),
    # live migration (nova_qmp.migration): the [libvirt] options of the same names
    cfg.StrOpt("live_migration_inbound_addr", default=None,
               help="Address other compute hosts send live migrations (RAM and disks) "
                    "to on this host, and fetch the disks of cold migrations and "
                    "resizes from; unset: my_ip."),
    cfg.StrOpt("live_migration_tls_dir", default="/etc/pki/qemu",
               help="Directory of the X.509 files of live migrations over TLS (QEMU's "
                    "tls-creds-x509, as libvirt's default_tls_x509_cert_dir): "
                    "ca-cert.pem, server-cert.pem and server-key.pem (this host "
                    "receiving; the certificate names live_migration_inbound_addr), "
                    "client-cert.pem and client-key.pem (this host sending); readable "
                    "by the [hci_guests]gid group. Both peers are verified. Cold "
                    "migrations and resizes to another host use them too (this host "
                    "serving the disks: server files; fetching them: client files; "
                    "then also readable by nova-compute's user)."),
    cfg.BoolOpt("live_migration_plain_tcp", default=False,
                help="Send live migrations (RAM and disks) and the disks of cold "
                     "migrations over plain TCP instead of TLS: only on a network kept "
                     "for migrations between trusted hosts. Both hosts must agree."),
    cfg.IntOpt("live_migration_bandwidth", default=0, min=0,
               help="Maximum bandwidth of a live migration in MiB/s; 0: unlimited."),
    cfg.IntOpt("live_migration_downtime", default=500, min=100,
               help="The longest pause (ms) of the guest at the switch-over the "
                    "migration ends with allowing."),
    cfg.IntOpt("live_migration_downtime_steps", default=10, min=3,
               help="Steps in which the allowed downtime grows to "
                    "live_migration_downtime."),
    cfg.IntOpt("live_migration_downtime_delay", default=75, min=3,
               help="Seconds per GiB of guest RAM between two downtime steps."),
    cfg.IntOpt("live_migration_completion_timeout", default=800, min=0,
               help="Seconds per GiB of guest RAM a live migration may take before "
                    "live_migration_timeout_action; 0: no limit."),
    cfg.StrOpt("live_migration_timeout_action", default="abort",
               choices=["abort", "force_complete"],
               help="What to do with a live migration past its completion timeout: "
                    "abort it (the guest stays on the source) or force it to complete "
                    "(post-copy when permitted, else the guest is paused)."),
    cfg.BoolOpt("live_migration_permit_post_copy", default=False,
                help="Allow a forced completion to switch to post-copy (the guest runs "
                     "on the destination while the rest of its RAM is fetched; a network "
                     "failure then loses the guest)."),
]


def register(conf):
    conf.register_group(qmp_group)
    conf.register_opts(qmp_opts, group=qmp_group)


def list_opts():
    return [(qmp_group, qmp_opts)]
