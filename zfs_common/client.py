"""A typed client for ZFS: one method per zfs/zpool operation.

Every name and value is validated before it reaches a command line; only machine output
is parsed (``-H`` tab-separated, exact numbers from ``zfs get -p``, which zfs-fuse has
too, unlike ``zfs list -p`` and JSON); stderr becomes a typed error from
``zfs_common.exception``.
"""
import math
import random
import time

from oslo_log import log as logging

from zfs_common import exception
from zfs_common import executor as executor_mod
from zfs_common import sendstream
from zfs_common import validation

LOG = logging.getLogger(__name__)

FILESYSTEM = "filesystem"
VOLUME = "volume"
SNAPSHOT = "snapshot"
#: how often a retirement starts over after meeting a concurrent one
RETIRE_ATTEMPTS = 20


class ZFSClient:
    """ZFS operations on one host, through an executor (local or SSH).

    :param executor: a ``zfs_common.executor.Executor``.
    :param timeout: seconds any single command may take.
    :param busy_timeout: how long operations that can meet a transiently busy dataset
        (destroy, rename) retry, with a growing backoff, before giving up.
    """

    def __init__(self, executor, timeout=120, busy_timeout=30.0):
        self.executor = executor
        self.timeout = timeout
        self.busy_timeout = busy_timeout
        self._has_clones_property = None    # unknown until first asked

    @classmethod
    def from_config(cls, conf):
        """A client for the ZFS host a backend's configuration names (``zfs_host_opts``)."""
        if conf.zfs_ssh_host:
            return cls.over_ssh(conf, conf.zfs_ssh_host)
        return cls(executor_mod.LocalExecutor(), timeout=conf.zfs_command_timeout,
                   busy_timeout=conf.zfs_busy_timeout)

    @classmethod
    def over_ssh(cls, conf, host, port=None):
        """A client for ZFS host ``host`` (port ``port``, default ``zfs_ssh_port``) over
        SSH with the credentials and timeouts of backend configuration ``conf``."""
        ex = executor_mod.SSHExecutor(
            host, user=conf.zfs_ssh_user, port=conf.zfs_ssh_port if port is None else port,
            private_key=conf.zfs_ssh_private_key, known_hosts=conf.zfs_ssh_known_hosts_file,
            strict_host_key_checking=conf.zfs_ssh_strict_host_key_checking)
        return cls(ex, timeout=conf.zfs_command_timeout, busy_timeout=conf.zfs_busy_timeout)

    # -- command plumbing -----------------------------------------------------------------
    def _cmd(self, argv, process_input=None, timeout=None):
        res = self.executor.run(argv, process_input, timeout or self.timeout)
        if res.exit_code != 0:
            raise exception.from_command(argv, res.stderr, res.exit_code)
        return res.stdout

    def zfs(self, *args, **kw):
        return self._cmd(["zfs", *args], **kw)

    def zpool(self, *args, **kw):
        return self._cmd(["zpool", *args], **kw)

    def _retry_busy(self, func, *args):
        delay, deadline = 0.05, time.monotonic() + self.busy_timeout
        while True:
            try:
                return func(*args)
            except exception.DatasetBusy:
                if time.monotonic() + delay > deadline:
                    raise
                LOG.debug("dataset busy, retrying %s%r in %.2fs", func.__name__, args, delay)
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    # -- reading --------------------------------------------------------------------------
    def get(self, names, props):
        """Exact property values: ``{name: {prop: value}}`` (numbers as strings, "-" unset).

        ``names`` is one name or a list; ``props`` a list of property names.
        """
        names = [names] if isinstance(names, str) else list(names)
        for name in names:
            validation.dataset_or_snapshot(name)
        for prop in props:
            validation.property_name(prop)
        out = self.zfs("get", "-H", "-p", "-o", "name,property,value", ",".join(props),
                       *names)
        result = {name: {} for name in names}
        for line in out.splitlines():
            name, prop, value = line.split("\t", 2)
            result.setdefault(name, {})[prop] = value
        return result

    def get_tree(self, root, props):
        """Like ``get`` for ``root`` and every dataset and snapshot below it (one command)."""
        validation.dataset(root)
        for prop in props:
            validation.property_name(prop)
        out = self.zfs("get", "-H", "-p", "-r", "-o", "name,property,value", ",".join(props),
                       root)
        result = {}
        for line in out.splitlines():
            name, prop, value = line.split("\t", 2)
            result.setdefault(name, {})[prop] = value
        return result

    def get_one(self, name, prop):
        return self.get(name, [prop])[name][prop]

    def get_int(self, name, prop):
        """A numeric property as an int (0 for "none" / "-")."""
        value = self.get_one(name, prop)
        return int(value) if value.isdigit() else 0

    def exists(self, name):
        validation.dataset_or_snapshot(name)
        try:
            self.zfs("list", "-H", "-o", "name", "-t", "all", name)
        except exception.DatasetNotFound:
            return False
        return True

    def list(self, root, types=(FILESYSTEM,), depth=None):
        """Names of datasets of ``types`` below ``root`` (itself included), sorted."""
        validation.dataset(root)
        args = ["list", "-H", "-o", "name", "-t", ",".join(types)]
        args += ["-d", str(int(depth))] if depth is not None else ["-r"]
        return sorted(self.zfs(*args, root).split())

    def snapshots(self, dataset):
        """Snapshots of one dataset, oldest first."""
        validation.dataset(dataset)
        out = self.zfs("list", "-H", "-o", "name", "-t", SNAPSHOT, "-s", "createtxg",
                       "-d", "1", dataset)
        return out.split()

    def clones(self, snapshot):
        """Datasets cloned from ``snapshot``.

        Reads the snapshot's ``clones`` property where ZFS has it (OpenZFS); zfs-fuse
        lacks it, so there the pool's ``origin`` values are scanned instead.
        """
        validation.snapshot(snapshot)
        if self._has_clones_property is not False:
            try:
                value = self.get_one(snapshot, "clones")
                self._has_clones_property = True
                return sorted(v for v in value.split(",") if v and v != "-")
            except exception.ZFSError as e:
                if type(e) is not exception.ZFSError or "invalid property" not in e.stderr:
                    raise
                self._has_clones_property = False
        pool = snapshot.split("/")[0].split("@")[0]
        out = self.zfs("list", "-H", "-o", "name,origin", "-t", "filesystem,volume", "-r",
                       pool)
        return sorted(line.split("\t")[0] for line in out.splitlines()
                      if line.split("\t")[1] == snapshot)

    def space(self, dataset):
        """``(used, available)`` bytes of a dataset (the pool's root gives the pool's)."""
        values = self.get(dataset, ["used", "available"])[dataset]
        return int(values["used"]), int(values["available"])

    # -- creating -------------------------------------------------------------------------
    def create_filesystem(self, name, props=None, parents=False):
        validation.dataset(name)
        self.zfs("create", *(["-p"] if parents else []), *validation.properties(props), name)

    def create_volume(self, name, size, props=None, sparse=False):
        """A zvol of ``size`` bytes; sparse ones reserve no space."""
        validation.dataset(name)
        args = ["create", "-V", str(int(size))] + (["-s"] if sparse else [])
        self.zfs(*args, *validation.properties(props), name)

    def snapshot(self, name, props=None):
        validation.snapshot(name)
        self.zfs("snapshot", *validation.properties(props), name)

    def clone(self, snapshot, target, props=None):
        validation.snapshot(snapshot)
        validation.dataset(target)
        self.zfs("clone", *validation.properties(props), snapshot, target)

    # -- changing -------------------------------------------------------------------------
    def set(self, name, props):
        """Set properties, one ``zfs set`` each (zfs-fuse takes one per call)."""
        validation.dataset_or_snapshot(name)
        for prop, value in sorted(props.items()):
            validation.property_name(prop)
            self.zfs("set", "%s=%s" % (prop, validation.property_value(prop, value)), name)

    def inherit(self, name, prop):
        validation.dataset_or_snapshot(name)
        self.zfs("inherit", validation.property_name(prop), name)

    def promote(self, clone):
        self.zfs("promote", validation.dataset(clone))

    def rename(self, old, new):
        validation.dataset_or_snapshot(old)
        validation.dataset_or_snapshot(new)
        self._retry_busy(self.zfs, "rename", old, new)

    def rollback(self, snapshot, destroy_newer=False):
        """Roll back to ``snapshot``; ``destroy_newer`` removes later snapshots (-r)."""
        validation.snapshot(snapshot)
        self.zfs("rollback", *(["-r"] if destroy_newer else []), snapshot)

    def mount(self, name):
        self.zfs("mount", validation.dataset(name))

    def unmount(self, name, force=False):
        self.zfs("unmount", *(["-f"] if force else []), validation.dataset(name))

    # -- destroying -----------------------------------------------------------------------
    def destroy(self, name, recursive=False, dependents=False, defer=False,
                missing_ok=False):
        """Destroy a dataset or snapshot.

        :param recursive: also its children and snapshots (-r).
        :param dependents: also clones anywhere in the pool (-R): remote hosts only; the
            local privsep daemon refuses it.
        :param defer: for snapshots with clones: destroy once the last clone goes (-d).
        :param missing_ok: an already missing dataset is not an error.
        """
        validation.dataset_or_snapshot(name)
        args = ["destroy"] + (["-r"] if recursive else []) + (["-R"] if dependents else [])
        args += ["-d"] if defer else []
        try:
            self._retry_busy(self.zfs, *args, name)
        except exception.DatasetNotFound:
            if not missing_ok:
                raise

    def retire(self, dataset):
        """Destroy a dataset and its snapshots, keeping datasets cloned from it alive.

        For datasets whose owner (the share or volume service) tracks no snapshot of them
        any more. Every snapshot is destroyed with ``defer``: those without clones go at
        once, cloned ones are marked. If clones remain, the clone of the newest cloned
        snapshot is promoted: the (marked) snapshots up to it move to that clone and the
        dataset becomes its dependent, so it can be destroyed, and each marked snapshot
        vanishes with its last clone. Nothing hidden is left behind.

        Safe against retirements of related datasets at the same time (a parent and its
        clone, from this process or another service on the same ZFS host): these steps
        are not atomic, so when one meets the other's work (the clone it would promote is
        gone or was promoted, or a promote made this dataset an origin again) the whole
        retirement starts over from what ZFS says now, after a random backoff. No step
        ever destroys a dataset other than ``dataset`` (no ``-R``), so no data another
        dataset needs can go.
        """
        validation.dataset(dataset)
        delay = 0.02
        for attempt in range(1, RETIRE_ATTEMPTS + 1):
            try:
                return self._retire_once(dataset)
            except (exception.DatasetNotFound, exception.HasDependents,
                    exception.NotAClone) as e:
                if attempt == RETIRE_ATTEMPTS:
                    raise
                LOG.debug("retiring %s met a concurrent change (%s); starting over",
                          dataset, e)
                time.sleep(random.uniform(delay / 2, delay))  # noqa: S311 (jitter only)
                delay = min(delay * 2, 1.0)

    def _retire_once(self, dataset):
        try:
            snapshots = self.snapshots(dataset)
        except exception.DatasetNotFound:
            return      # retired already (by a concurrent call)
        for snap in snapshots:
            self.destroy(snap, defer=True, missing_ok=True)
        for snap in reversed(snapshots):
            clones = self.clones(snap) if self.exists(snap) else []
            if clones:
                LOG.debug("promoting %s to retire %s", clones[0], dataset)
                self.promote(clones[0])
                break
        self.destroy(dataset, recursive=True, missing_ok=True)

    # -- moving data ----------------------------------------------------------------------
    def send(self, snapshot, target_client, target, base=None, force=False, timeout=None,
             intermediates=False):
        """Replicate ``snapshot`` to ``target`` through ``target_client``'s host.

        With ``base`` (an earlier snapshot of the same dataset, present on the target too)
        the stream is incremental; ``intermediates`` also carries every snapshot between
        the two (-I). ``force`` rolls the target back to its latest snapshot first
        (receive -F).
        """
        validation.snapshot(snapshot)
        validation.dataset(target)
        send = ["zfs", "send"]
        if base:
            send += ["-I" if intermediates else "-i", validation.snapshot(base)]
        recv = ["zfs", "receive"] + (["-F"] if force else []) + [target]
        executor_mod.pipe(self.executor, send + [snapshot], target_client.executor, recv,
                          timeout=timeout or self.timeout * 10)

    def copy_snapshot(self, snapshot, target_client, target, props):
        """A new dataset ``target`` on ``target_client``'s host from ``snapshot`` (another
        zpool or host, where no clone reaches): received, the snapshot the stream carried
        dropped there, ``props`` set; on failure nothing of ``target`` stays."""
        try:
            self.send(snapshot, target_client, target)
            target_client.destroy("%s@%s" % (target, snapshot.split("@")[1]))
            target_client.set(target, props)
        except exception.ZFSError:
            target_client.destroy(target, recursive=True, missing_ok=True)
            raise

    def read_zvol(self, snapshot, fd, size, timeout=None):
        """Write a remote zvol snapshot's data into the local file ``fd`` as a sparse raw
        image of ``size`` bytes, moving only the allocated blocks (its send stream).
        Returns the data bytes written."""
        validation.snapshot(snapshot)
        return executor_mod.read_from(
            self.executor, ["zfs", "send", snapshot],
            lambda read: sendstream.write_raw(read, fd, size),
            timeout=timeout or self.timeout * 10)

    def close(self):
        """Release the executor's connection (an SSH master), if it has one."""
        close = getattr(self.executor, "close", None)
        if close is not None:
            close()

    # -- devices --------------------------------------------------------------------------
    @staticmethod
    def zvol_path(name):
        return "/dev/zvol/" + validation.dataset(name)

    def wait_for_zvol(self, name, timeout=10.0):
        """Wait (bounded) for udev to create a zvol's device link; returns the path.

        The link appears only after ``zfs create -V``, ``clone`` or ``rename`` return. One
        ``udevadm settle`` that returns as soon as the link exists does the waiting on the
        ZFS host (one round trip over SSH), then the link is checked.
        """
        path = self.zvol_path(name)
        if self.executor.path_exists(path):
            return path
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            self.executor.run(["udevadm", "settle", "--timeout=%d" % max(1, math.ceil(left)),
                               "--exit-if-exists=%s" % path], timeout=timeout + 10)
            if self.executor.path_exists(path):
                return path
            if time.monotonic() >= deadline:
                raise exception.ZFSError("device %s did not appear within %ss"
                                         % (path, timeout))
            time.sleep(0.1)
