"""Options of the LXC compute driver: the ``[lxc_native]`` group of nova.conf.

(Not ``[lxc]``: nova's libvirt driver has no such group, but the name would read as if it
configured libvirt's LXC mode.)
"""
from oslo_config import cfg

lxc_group = cfg.OptGroup("lxc_native", title="Native LXC compute driver",
                         help="System containers started by liblxc (no libvirt, no LXD).")

lxc_opts = [
    cfg.BoolOpt("privileged", default=False,
                help="Run containers privileged (root in the container is root on the "
                     "host). Off by default: containers get a user namespace mapping "
                     "their ids 0..id_map_size-1 to the host range starting at "
                     "id_map_start. Only for trusted images."),
    cfg.IntOpt("id_map_start", default=100000, min=1,
               help="First host uid and gid of the subordinate range containers map "
                    "their root to (as in /etc/subuid and /etc/subgid). Must not "
                    "overlap the ids of host users."),
    cfg.IntOpt("id_map_size", default=65536, min=1, max=2 ** 31,
               help="Number of ids in the container's user namespace."),
    cfg.ListOpt("include_configs", default=["/usr/share/lxc/config/common.conf"],
                help="liblxc configuration files included in every container's config: "
                     "the default drops capabilities, loads the seccomp policy and sets "
                     "the device allow-list. userns.conf is added for unprivileged "
                     "containers."),
    cfg.StrOpt("apparmor_profile", default=None,
               help="lxc.apparmor.profile of every container; unset: liblxc's default "
                    "(its generated profile where AppArmor is enabled). Use "
                    "'unconfined' on hosts whose kernel has no AppArmor."),
    cfg.StrOpt("halt_signal", default="SIGPWR",
               help="Signal sent to a container's init for a clean shutdown "
                    "(SIGRTMIN+3 for systemd, SIGUSR1 or SIGUSR2 for busybox init). An "
                    "image may set its own with the lxc_halt_signal property."),
    cfg.StrOpt("cgroup_version", default="auto", choices=["auto", "1", "2"],
               help="Which cgroup key names to write: 'auto' reads the host "
                    "(/sys/fs/cgroup/cgroup.controllers means the unified v2 tree)."),
    cfg.IntOpt("pids_max", default=4096, min=0,
               help="pids.max of every container (0: no limit)."),
    cfg.IntOpt("start_timeout", default=30, min=1,
               help="Seconds a container may take from lxc-start to RUNNING."),
    cfg.IntOpt("freeze_timeout", default=10, min=1,
               help="Seconds freezing (pause) may take; after that the freezer is "
                    "thawed again and pause fails with the container still running."),
    cfg.IntOpt("kill_timeout", default=10, min=1,
               help="Seconds a hard stop (SIGKILL of the container's processes) may "
                    "take."),
    cfg.BoolOpt("nocloud_seed", default=True,
                help="Give each container cloud-init's NoCloud seed "
                     "(/var/lib/cloud/seed/nocloud/meta-data with instance-id, hostname "
                     "and SSH keys; user-data from the server's user data), written into "
                     "its root before the first start."),
    cfg.StrOpt("image_cache_path", default=None,
               help="Where images are unpacked once (one directory per image and id "
                    "map); unset: <instances_path>/_lxc_base. Containers' roots are "
                    "overlays over these directories."),
]


def register(conf):
    conf.register_group(lxc_group)
    conf.register_opts(lxc_opts, group=lxc_group)


def list_opts():
    return [(lxc_group, lxc_opts)]
