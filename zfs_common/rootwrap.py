"""How a service starts the zfs_common privsep daemon: through its own rootwrap.

oslo.privsep starts a context's daemon with ``[<context section>] helper_command`` if
the operator sets it, else with a process-wide prefix that defaults to plain ``sudo``.
cinder-volume sets that prefix to cinder-rootwrap; manila-share never sets it, and the
services' test frameworks do not either. So the drivers make the default the one the
service's own root commands use, ``sudo <service>-rootwrap <rootwrap_config>``, and
the shipped filters (etc/<service>/rootwrap.d/) and sudoers rules (etc/sudoers.d/)
admit exactly that. An operator's ``helper_command`` still wins.
"""
import shlex

from oslo_config import cfg
from oslo_log import log as logging

from zfs_common import privsep

LOG = logging.getLogger(__name__)


def helper_command(rootwrap, rootwrap_config, conf=cfg.CONF):
    """``sudo <rootwrap> <config> privsep-helper`` with the service's config files.

    oslo.privsep appends ``--privsep_context`` and ``--privsep_sock_path``.
    """
    argv = ["sudo", rootwrap, rootwrap_config, "privsep-helper"]
    for option, flag in (("config_file", "--config-file"), ("config_dir", "--config-dir")):
        try:
            paths = conf[option]    # only there once the command line has been parsed
        except cfg.NoSuchOptError:
            paths = None
        for path in ([paths] if isinstance(paths, str) else paths or ()):
            argv += [flag, path]
    return shlex.join(argv)


def use_service_rootwrap(rootwrap, conf=cfg.CONF):
    """Make ``rootwrap`` (e.g. ``manila-rootwrap``) start the daemon unless configured.

    ``conf`` is the service's configuration (its ``rootwrap_config`` and files); the
    default is set where oslo.privsep reads it, in the global configuration.
    """
    section = privsep.zfs_pctxt.cfg_section
    if not conf.rootwrap_config:
        LOG.warning("rootwrap_config is empty: the zfs_common privsep daemon starts with "
                    "oslo.privsep's default (sudo privsep-helper ...)")
        return None
    command = helper_command(rootwrap, conf.rootwrap_config, conf)
    cfg.CONF.set_default("helper_command", command, group=section)
    LOG.info("zfs_common privsep daemon starts with: %s",
             cfg.CONF[section].helper_command)
    return command
