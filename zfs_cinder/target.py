"""The export side of the driver: cinder's own target helpers, on the ZFS host.

With ZFS on this host the helper named by ``target_helper`` is used unchanged, as the LVM
driver uses it. With a remote (SSH) ZFS host the export must be made there: the LIO
helper's ``cinder-rtstool`` calls run on that host through the ZFS executor. Helpers that
write local files or use local privsep (tgtadm, nvmet, ...) cannot, and are refused.
"""
import shlex

from cinder import exception
from cinder import utils
from cinder.i18n import _
from cinder.volume.targets import lio
from oslo_concurrency import processutils as putils
from oslo_utils import importutils

from zfs_cinder import locks
from zfs_common import exception as zfs_exc

# helpers that can serve a remote ZFS host ("fake", cinder's test helper, runs nothing)
REMOTE_HELPERS = ("lioadm", "fake")


class RemoteLioAdm(lio.LioAdm):
    """LIO iSCSI targets on a remote ZFS host, through its ``cinder-rtstool``.

    The host needs LIO (``rtslib-fb``) and cinder's ``cinder-rtstool`` on its PATH; the
    ZFS executor's SSH user must be root there.
    """

    def __init__(self, *args, zfs_executor, rtstool_timeout=120, **kwargs):
        self._remote = zfs_executor
        self._timeout = rtstool_timeout
        super().__init__(*args, **kwargs)

    def _verify_rtstool(self):
        self._execute("cinder-rtstool", "verify")

    def _host_lock(self):
        """The lock of the ZFS host's rtslib, for every cinder-volume process using it.

        rtslib races with itself (upstream's LioAdm holds a file lock of the cinder host
        around its calls), and the processes exporting from one ZFS host may be on
        several hosts (an active-active cluster): ``zfs_cinder.locks``.
        """
        return locks.host_lock("lioadm", self._remote)

    def remove_leftover(self, volume):
        """Remove the target of ``volume`` if one exists although cinder recorded none
        (the service making it died before saving ``provider_location``); True if one
        was removed."""
        if not self._get_target("%s%s" % (self.iscsi_target_prefix, volume.name)):
            return False
        self.remove_iscsi_target(0, 0, volume.id, volume.name)
        return True

    def _execute(self, *cmd, **kwargs):
        argv = [str(c) for c in cmd]
        with self._host_lock():
            try:
                res = self._remote.run(argv, timeout=self._timeout)
            except zfs_exc.ZFSError as e:
                # unreachable host or a timeout: what LioAdm handles as a failed command
                raise putils.ProcessExecutionError(stderr=str(e), exit_code=e.exit_code,
                                                   cmd=shlex.join(argv)) from e
        if res.exit_code != 0 and kwargs.get("check_exit_code", True) is not False:
            raise putils.ProcessExecutionError(stdout=res.stdout, stderr=res.stderr,
                                               exit_code=res.exit_code,
                                               cmd=shlex.join(argv))
        return res.stdout, res.stderr


def build(driver, configuration, zfs_executor, remote):
    """The target helper for a backend: cinder's, or the remote LIO one."""
    helper = configuration.safe_get("target_helper")
    mapping = driver.target_mapping
    if helper not in mapping:
        raise exception.InvalidConfigurationValue(option="target_helper", value=helper)
    if remote:
        if helper not in REMOTE_HELPERS:
            raise exception.InvalidConfigurationValue(_(
                "target_helper=%(helper)s cannot export from the remote ZFS host "
                "%(host)s; use one of: %(ok)s (or run cinder-volume on the ZFS host)")
                % {"helper": helper, "host": configuration.zfs_ssh_host,
                   "ok": ", ".join(REMOTE_HELPERS)})
        if helper == "lioadm":
            return RemoteLioAdm(configuration=configuration, zfs_executor=zfs_executor,
                                rtstool_timeout=configuration.zfs_command_timeout)
    return importutils.import_object(mapping[helper], configuration=configuration,
                                     executor=utils.execute)
