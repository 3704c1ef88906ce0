"""Options for reaching a ZFS host, shared by the Cinder and Manila drivers.

Each driver registers them in its backend's section (``configuration.append_config_values``)
next to its own options.
"""
from oslo_config import cfg

zfs_host_opts = [
    cfg.HostAddressOpt(
        "zfs_ssh_host",
        help="ZFS host to manage over SSH. Unset (the default): ZFS runs on this host and "
             "commands run locally through oslo.privsep."),
    cfg.HostAddressOpt(
        "zfs_peer_ssh_host",
        help="For a backend whose ZFS is local to its own service host (zfs_ssh_host "
             "unset): the address other hosts' services use to reach that ZFS host over "
             "SSH, with zfs_ssh_user, zfs_ssh_port, zfs_ssh_private_key and "
             "zfs_ssh_known_hosts_file. Manila reads it from the peer backend's section "
             "for replication and shares from snapshots across hosts; cinder reports it "
             "in the pool's location_info for volume migration from other backends."),
    cfg.PortOpt("zfs_ssh_port", default=22, help="SSH port of the ZFS host."),
    cfg.StrOpt("zfs_ssh_user", default="root",
               help="User on the ZFS host; it must be allowed to run zfs and zpool."),
    cfg.StrOpt("zfs_ssh_private_key", help="Private key for the SSH connection."),
    cfg.StrOpt("zfs_ssh_known_hosts_file",
               help="known_hosts file to check the ZFS host's key against; unset uses "
                    "the service user's."),
    cfg.StrOpt("zfs_ssh_strict_host_key_checking", default="yes",
               choices=["yes", "accept-new", "no"],
               help="OpenSSH StrictHostKeyChecking for the ZFS host: keep 'yes' in "
                    "production and provision the host key."),
    cfg.IntOpt("zfs_command_timeout", default=120, min=1,
               help="Seconds a single zfs/zpool command may take before it is killed."),
    cfg.FloatOpt("zfs_busy_timeout", default=30.0, min=0,
                 help="Seconds to keep retrying destroy and rename of a dataset that is "
                      "transiently busy, with a growing backoff."),
]


def list_opts():
    return [("DEFAULT", zfs_host_opts)]
