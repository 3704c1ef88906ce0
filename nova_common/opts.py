"""Options of the shared compute layer (nova_common), for nova.conf: ``[hci_guests]``.

Only oslo.config here, so oslo-config-generator reads it without nova installed.
"""
from oslo_config import cfg

group = cfg.OptGroup("hci_guests", title="Confinement of guest processes",
                     help="Users, groups and supervision of hypervisor processes.")
opts = [
    cfg.StrOpt("uid_range", default="1900000000:10000",
               help="'first:count': each guest process runs as one uid of this range, "
                    "unique on the host (must not overlap users of the host)."),
    cfg.IntOpt("gid", default=1900000000, min=1,
               help="Group of every guest process (shares read access to cached base "
                    "images); not a group of any login or service user."),
    cfg.StrOpt("launcher", default="auto", choices=["auto", "systemd", "detached"],
               help="'systemd': a transient unit per guest (systemd-run) in 'slice'; "
                    "'detached': a detached supervisor process; 'auto': systemd if it "
                    "is PID 1."),
    cfg.StrOpt("slice", default="hci-guests.slice",
               help="systemd slice holding the guests' units."),
    cfg.ListOpt("allowed_binaries",
                default=["/usr/bin/qemu-system-x86_64", "/usr/bin/cloud-hypervisor"],
                help="Hypervisor binaries the privileged launcher may start."),
    cfg.StrOpt("host_state_path", default=None,
               help="A directory of this host for the files of its instances that are "
                    "not disks: the instance records, the hypervisors' sockets, pidfiles, "
                    "logs and keys, in <host_state_path>/<uuid>/. Unset: they are kept "
                    "with the disks in <instances_path>/<uuid>/. It must be set, to a "
                    "directory on local storage, where instances_path is shared between "
                    "compute hosts (NFS): each host then lists only its own instances, "
                    "and live migration between them moves the RAM only."),
    cfg.StrOpt("vhostuser_socket_dir", default="/var/lib/nova/vhostuser",
               help="Directory of the vhost-user sockets of 'vhostuser' ports (Open "
                    "vSwitch with DPDK): the hypervisor creates each port's socket "
                    "there and Open vSwitch connects to it. Neutron must name sockets in "
                    "the same directory ([ovn]ovn_vhost_sock_dir of ML2/OVN, "
                    "[ovs]vhostuser_socket_dir of the OVS agent); nova-compute makes it "
                    "if missing and grants each guest uid access at plug. Only "
                    "[A-Za-z0-9._/-], at most 80 characters."),
]


def register(conf):
    conf.register_group(group)
    conf.register_opts(opts, group=group)


def list_opts():
    return [(group, opts)]
