"""One container's lifecycle on liblxc: define, start, stop, shut down, freeze, state.

These functions run on the privileged side (the driver's privsep daemon, see
``nova_lxc.privsep``); each takes the container's name (the instance UUID) and its lxcpath
(the absolute instances path, so the container directory is the instance directory).

The liblxc binding is used where it returns at once (configuration, state, cgroup items,
listing). Whatever can block or changes the caller's cgroups runs in a short-lived child
instead, liblxc's own tools: the binding's ``start()`` moves the calling process into the
container's monitor cgroups and forks the monitor from it, and ``stop``/``shutdown``/
``freeze`` hold the GIL for as long as they wait (``freeze`` was seen to hang for ever).
Each child has a timeout.
"""
import os
import shutil
import signal
import stat
import subprocess
import tarfile
import tempfile

import lxc
from nova import exception
from nova.i18n import _
from oslo_log import log as logging

from nova_lxc import config

LOG = logging.getLogger(__name__)
CONFIG = "config"
CONSOLE_LOG = "console.log"
LXC_LOG = "lxc.log"
UPPER = "rootfs.upper"
OVERLAY_WORK = "work"


class ContainerError(exception.NovaException):
    msg_fmt = _("container %(name)s: %(reason)s")


def _container(name, lxcpath):
    config.check_name(name)
    config.check_path(lxcpath)
    return lxc.Container(name, lxcpath)


def _tool(tool, name, lxcpath, *args, timeout):
    argv = [tool, "-n", config.check_name(name), "-P", config.check_path(lxcpath), *args]
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ContainerError(name=name, reason=_("%(tool)s did not finish in %(t)d s")
                             % {"tool": tool, "t": timeout})
    return proc.returncode, proc.stderr.decode(errors="replace").strip()


def container_dir(name, lxcpath):
    return os.path.join(config.check_path(lxcpath), config.check_name(name))


def define(name, lxcpath, items, upper_owner=None):
    """Write the container's config (and create its overlay upper directory, owned by
    the container's root: ``upper_owner`` host uid, None for privileged)."""
    cdir = container_dir(name, lxcpath)
    if not os.path.isdir(cdir):
        raise ContainerError(name=name, reason=_("no instance directory %s") % cdir)
    # the overlay's upper directory and the work directory liblxc puts beside it
    for sub in (UPPER, OVERLAY_WORK):
        os.makedirs(os.path.join(cdir, sub), mode=0o755, exist_ok=True)
        if upper_owner is not None:
            os.chown(os.path.join(cdir, sub), upper_owner, upper_owner)
    owner = os.stat(cdir)
    c = _container(name, lxcpath)
    c.clear_config()
    for key, value in items:
        # append, not set: set_config_item drops values liblxc normalises
        if not c.append_config_item(key, value):
            raise exception.InvalidInput(reason=_(
                "liblxc refused config item %(key)s = %(value)s")
                % {"key": key, "value": value})
    if not c.save_config(os.path.join(cdir, CONFIG)):
        raise ContainerError(name=name, reason=_("cannot save its config"))
    if upper_owner is not None:
        # liblxc gives the directory of an id-mapped container to the container's root;
        # it is the instance directory, which stays nova-compute's (its record, its
        # lock); the container's root only passes through it (to its overlay upper)
        os.chown(cdir, owner.st_uid, owner.st_gid)
        os.chmod(cdir, stat.S_IMODE(owner.st_mode))
        subprocess.run(["setfacl", "-m", "u:%d:x" % int(upper_owner), cdir], check=True,
                       capture_output=True, timeout=30)
    return os.path.join(cdir, CONFIG)


def state(name, lxcpath):
    """{'defined', 'state' (STOPPED, RUNNING, FROZEN, ...), 'init_pid'}."""
    c = _container(name, lxcpath)
    if not c.defined:
        return {"defined": False, "state": "STOPPED", "init_pid": -1}
    return {"defined": True, "state": c.state, "init_pid": c.init_pid}


def list_running(lxcpath):
    """Names of the containers running under ``lxcpath``."""
    return sorted(lxc.list_containers(active=True, defined=False,
                                      config_path=config.check_path(lxcpath)))


def start(name, lxcpath, timeout):
    """Start the container from a short-lived ``lxc-start`` (daemonising its monitor)
    and confirm it is RUNNING with a live init."""
    cdir = container_dir(name, lxcpath)
    rc, err = _tool("lxc-start", name, lxcpath, "-d", "-o", os.path.join(cdir, LXC_LOG),
                    "-l", "WARN", timeout=timeout)
    c = _container(name, lxcpath)
    if rc != 0 or not c.wait("RUNNING", 0) or c.init_pid <= 0:
        raise ContainerError(name=name, reason=_("did not start: %(err)s; %(log)s") % {
            "err": err.splitlines()[0] if err else rc,
            "log": _read_tail(os.path.join(cdir, LXC_LOG), 600)})
    return c.init_pid


def _read_tail(path, size=1000):
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - size))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def kill(name, lxcpath, timeout):
    """Hard stop: SIGKILL every process of the container (stopped already is fine)."""
    if state(name, lxcpath)["state"] == "STOPPED":
        return
    if state(name, lxcpath)["state"] == "FROZEN":
        thaw(name, lxcpath, timeout)
    rc, err = _tool("lxc-stop", name, lxcpath, "-k", timeout=timeout)
    if state(name, lxcpath)["state"] != "STOPPED":
        raise ContainerError(name=name, reason=_("did not stop: %s") % err)


def shutdown(name, lxcpath, timeout):
    """Send init the halt signal and wait up to ``timeout`` s; True once stopped."""
    if state(name, lxcpath)["state"] == "STOPPED":
        return True
    _tool("lxc-stop", name, lxcpath, "--nokill", "-t", str(int(timeout)),
          timeout=timeout + 10)
    return state(name, lxcpath)["state"] == "STOPPED"


def signal_init(name, lxcpath, signame):
    """Send the container's init ``signame`` (its halt signal); returns at once. False if
    the container does not run."""
    config.check_signal(signame)
    if signame.startswith("SIGRTMIN+"):
        signum = signal.SIGRTMIN + int(signame[len("SIGRTMIN+"):])
    else:
        signum = getattr(signal, signame, None)
    if signum is None or signum > signal.SIGRTMAX:
        raise exception.InvalidInput(reason=_("unknown signal %s") % signame)
    pid = state(name, lxcpath)["init_pid"]
    if pid <= 0:
        return False
    os.kill(pid, signum)
    return True


def _cgroup_file(pid, v1_controller, v2_file, v1_file, proc="/proc"):
    """The path of a cgroup control file of process ``pid``'s cgroup: ``v1_file`` of the
    ``v1_controller`` hierarchy, else ``v2_file`` of the unified one."""
    with open(os.path.join(proc, str(int(pid)), "cgroup")) as f:
        lines = [line.rstrip("\n").split(":", 2) for line in f]
    for _num, controllers, path in lines:
        if v1_controller in controllers.split(","):
            return os.path.join("/sys/fs/cgroup", v1_controller, path.lstrip("/"), v1_file)
    for _num, controllers, path in lines:
        if controllers == "":
            return os.path.join("/sys/fs/cgroup", path.lstrip("/"), v2_file)
    return None


def thaw(name, lxcpath, timeout):
    """Unfreeze; if liblxc's unfreeze does not finish, write the freezer state
    directly."""
    pid = state(name, lxcpath)["init_pid"]
    try:
        _tool("lxc-unfreeze", name, lxcpath, timeout=timeout)
    except ContainerError:
        LOG.warning("lxc-unfreeze of %s timed out: thawing its cgroup directly", name)
    if state(name, lxcpath)["state"] == "FROZEN" and pid > 0:
        _write_thawed(pid)
    if state(name, lxcpath)["state"] == "FROZEN":
        raise ContainerError(name=name, reason=_("cannot be thawed"))


def _write_thawed(pid):
    path = _cgroup_file(pid, "freezer", "cgroup.freeze", "freezer.state")
    if path:
        with open(path, "w") as f:
            f.write("0" if path.endswith("cgroup.freeze") else "THAWED")


def freeze(name, lxcpath, timeout):
    """Freeze every process of the container. liblxc's freeze can hang: after
    ``timeout`` s it is abandoned, the freezer is thawed again (the recovery measured on
    these hosts) and ContainerError tells the caller the container still runs."""
    pid = state(name, lxcpath)["init_pid"]
    try:
        rc, err = _tool("lxc-freeze", name, lxcpath, timeout=timeout)
    except ContainerError:
        rc, err = -1, _("timed out")
    if rc == 0 and state(name, lxcpath)["state"] == "FROZEN":
        return
    LOG.warning("freezing %s failed (%s): thawing it again", name, err)
    if pid > 0:
        _write_thawed(pid)
    thaw(name, lxcpath, timeout)
    raise ContainerError(name=name, reason=_("could not be frozen (%s); it was left "
                                             "running") % err)


def set_cgroup_items(name, lxcpath, items):
    """Change cgroup limits of a running container (resize); ``items`` as from
    ``config.cgroup_limits``."""
    c = _container(name, lxcpath)
    for key, value in items:
        short = key.split(".", 2)[2] if key.startswith("lxc.cgroup2.") else key[11:]
        if not c.set_cgroup_item(short, value):
            raise ContainerError(name=name, reason=_("cannot set %(k)s = %(v)s")
                                 % {"k": short, "v": value})


def console_log(name, lxcpath, size):
    """The last ``size`` bytes of the container's console log (written by its monitor
    as root)."""
    return _read_tail(os.path.join(container_dir(name, lxcpath), CONSOLE_LOG), int(size))


def export_rootfs(name, lxcpath, base, out_path, idmap, owner_uid):
    """Write the container's root filesystem (its image with its own changes) as a
    gzip tarball at ``out_path`` in its directory, owners shifted back to the
    container's view, owned by ``owner_uid``. The two layers are read through a read-only
    overlay mount of their own, so it works whether the container runs or not."""
    cdir = container_dir(name, lxcpath)
    config.check_path(base)
    config.check_path(out_path)
    if os.path.dirname(out_path) != cdir or "," in base + cdir:
        raise exception.InvalidInput(reason=_("bad snapshot paths"))
    start, size = idmap if idmap else (0, 2 ** 32)
    mnt = tempfile.mkdtemp(prefix=".export.", dir=cdir)
    try:
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                        "ro,lowerdir=%s:%s" % (os.path.join(cdir, UPPER), base), mnt],
                       check=True, capture_output=True, timeout=60)
        try:
            def back(info):
                if not (info.isfile() or info.isdir() or info.issym() or info.islnk()):
                    return None                  # devices, FIFOs: not in an image
                for attr in ("uid", "gid"):
                    value = getattr(info, attr) - start
                    setattr(info, attr, value if 0 <= value < size else 65534)
                info.uname = info.gname = ""
                return info

            fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f, tarfile.open(fileobj=f, mode="w:gz") as tar:
                for entry in sorted(os.listdir(mnt)):
                    tar.add(os.path.join(mnt, entry), arcname="./" + entry, filter=back)
        finally:
            subprocess.run(["umount", mnt], capture_output=True, timeout=60)
    except subprocess.CalledProcessError as e:
        raise ContainerError(name=name, reason=_("cannot read its root: %s")
                             % e.stderr.decode(errors="replace"))
    finally:
        os.rmdir(mnt)
    os.chown(out_path, int(owner_uid), -1)
    return out_path


SEED_DIR = "var/lib/cloud/seed/nocloud"
SEED_FILES = ("meta-data", "user-data")


def write_seed(name, lxcpath, files, owner):
    """Write cloud-init NoCloud seed files (``files``: name -> text, names from
    SEED_FILES) into the container's overlay upper layer, owned by its root (host uid
    ``owner``, None for privileged), before it starts."""
    cdir = container_dir(name, lxcpath)
    upper = os.path.join(cdir, UPPER)
    uid = 0 if owner is None else int(owner)
    if not os.path.isdir(cdir) or os.path.islink(upper):
        raise ContainerError(name=name, reason=_("no instance directory %s") % cdir)
    if not os.path.isdir(upper):
        os.mkdir(upper, 0o755)
        os.chown(upper, uid, uid)
    path = upper
    for part in SEED_DIR.split("/"):
        path = os.path.join(path, part)
        if os.path.islink(path):
            raise ContainerError(name=name, reason=_("%s is a symbolic link") % path)
        if not os.path.isdir(path):
            os.mkdir(path, 0o755)
            os.chown(path, uid, uid)
    for fname, text in files.items():
        if fname not in SEED_FILES:
            raise exception.InvalidInput(reason=_("not a seed file: %r") % fname)
        target = os.path.join(path, fname)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chown(target, uid, uid)


def remove(name, lxcpath):
    """Remove a stopped container's directory (config, overlay upper with the container's
    files, logs). Refused while it runs."""
    if state(name, lxcpath)["state"] != "STOPPED":
        raise ContainerError(name=name, reason=_("still running; not removed"))
    cdir = container_dir(name, lxcpath)
    if os.path.islink(cdir):
        raise ContainerError(name=name, reason=_("%s is a symbolic link") % cdir)
    shutil.rmtree(cdir, ignore_errors=True)
