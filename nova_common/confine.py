"""Guest confinement: every hypervisor process runs under a uid of its own, taken from
``[hci_guests]uid_range``, with the group ``[hci_guests]gid`` (never nova's user), and
reaches only its own instance's files (POSIX ACLs nova sets on the files it owns) and
its own volumes (device ACLs set at attach and removed at detach, privileged side).

``[hci_guests]launcher`` says how a guest process is started: in a transient systemd
unit of its own in ``[hci_guests]slice`` (where systemd is PID 1: restarting or upgrading
nova-compute never touches a guest, and a guest's CPU and memory are accounted to it),
or under a small detached supervisor (``nova_common.supervisor``) elsewhere.
"""
import os

from nova import exception
import nova.conf
from nova.i18n import _
from oslo_concurrency import processutils
from oslo_log import log as logging

from nova_common import opts

CONF = nova.conf.CONF
LOG = logging.getLogger(__name__)
RECORD = "instance.json"        # nova's own; the guest never needs it

opts.register(CONF)


def _parse_range(text):
    """range of a 'first:count' text (ValueError if it is not one)."""
    first, count = (int(p) for p in text.strip().split(":"))
    return range(first, first + count)


def _format_range(uids):
    return "%d:%d" % (uids.start, len(uids))


def uid_range(conf=None):
    conf = conf or CONF      # looked up at the call (the module's CONF, not a default)
    try:
        uids = _parse_range(conf.hci_guests.uid_range)
    except ValueError:
        raise exception.InvalidInput(
            reason=_("[hci_guests]uid_range %r is not 'first:count'")
            % conf.hci_guests.uid_range)
    if uids.start < 1000 or len(uids) < 1:
        raise exception.InvalidInput(reason=_("[hci_guests]uid_range %r is not usable")
                                     % conf.hci_guests.uid_range)
    return uids


UID_CLAIMS = ".hci-uid-ranges"   # in a shared instances_path: a file per host


def _overlap(a, b):
    return a.start < b.stop and b.start < a.stop


def claim_uid_range(host):
    """Hosts sharing instances_path (``host_state_path`` set) keep disjoint uid ranges:
    a guest uid of one host that another host's guest also has could write that guest's
    disks. Each host records its range in ``<instances_path>/.hci-uid-ranges/<host>``
    and refuses to start (``InvalidInput``) when it overlaps a range another host
    recorded there. The check comes before the write: a refused host records nothing."""
    mine = uid_range()
    claims = os.path.join(CONF.instances_path, UID_CLAIMS)
    if not host or host.startswith(".") or "/" in host or "\0" in host:
        raise exception.InvalidInput(reason=_("host name %r cannot name a file") % host)
    os.makedirs(claims, exist_ok=True)
    for other in sorted(os.listdir(claims)):
        if other == host or other.startswith("."):
            continue
        path = os.path.join(claims, other)
        try:
            with open(path) as f:
                theirs = _parse_range(f.read())
        except (OSError, ValueError) as e:
            LOG.warning("unreadable uid range claim %s (%s): not checked", path, e)
            continue
        if _overlap(mine, theirs):
            raise exception.InvalidInput(reason=_(
                "[hci_guests]uid_range %(mine)s of host %(host)s overlaps %(theirs)s of "
                "host %(other)s, which shares instances_path %(path)s: give each host a "
                "range of its own (or remove %(claim)s if %(other)s no longer uses "
                "it)") % {"mine": CONF.hci_guests.uid_range, "host": host,
                          "theirs": _format_range(theirs), "other": other,
                          "path": CONF.instances_path, "claim": path})
    tmp = os.path.join(claims, ".%s.tmp" % host)
    with open(tmp, "w") as f:
        f.write(_format_range(mine) + "\n")
    os.replace(tmp, os.path.join(claims, host))


def allocate_uid(used):
    """The first uid of the range not in ``used`` (the uids of this host's guests)."""
    for uid in uid_range():
        if uid not in used:
            return uid
    raise exception.InternalError(_("no free uid in [hci_guests]uid_range %s")
                                  % CONF.hci_guests.uid_range)


def _setfacl(*args):
    processutils.execute("setfacl", *args)


def prepare_instances_path():
    """Guests may traverse instances_path (and host_state_path) and read the cached
    bases (group ACLs on directories nova owns)."""
    gid = CONF.hci_guests.gid
    base = os.path.join(CONF.instances_path, "_base")
    os.makedirs(base, exist_ok=True)
    _setfacl("-m", "g:%d:x" % gid, CONF.instances_path)
    if CONF.hci_guests.host_state_path:
        os.makedirs(CONF.hci_guests.host_state_path, mode=0o711, exist_ok=True)
        _setfacl("-m", "g:%d:x" % gid, CONF.hci_guests.host_state_path)
    _setfacl("-m", "g:%d:rx,d:g:%d:r,d:u::rw,d:g::-,d:o::-,d:m::rwx" % (gid, gid), base)
    for name in os.listdir(base):
        if not name.endswith(".part"):
            _setfacl("-m", "g:%d:r" % gid, os.path.join(base, name))


def grant_instance_dir(path, uid):
    """The guest uid may use its instance directory and the files in it; files it
    creates (sockets, pidfile) stay usable by nova's user (default ACLs)."""
    me = os.getuid()
    _setfacl("-m", "u:%d:rwx,d:u:%d:rwx,d:u:%d:rwx,d:u::rwx,d:g::-,d:o::-,d:m::rwx"
             % (uid, uid, me), path)
    for name in os.listdir(path):
        full = os.path.join(path, name)
        if name == RECORD or os.path.islink(full) or not os.path.isfile(full):
            continue
        # a file an earlier run of the guest made (its log, a pidfile) is the guest's
        # own: only its owner may change its ACL, and the guest needs no grant for it
        if os.lstat(full).st_uid == me:
            grant_file(full, uid)


def grant_instance(idir, uid):
    """``grant_instance_dir`` for both directories of an ``InstanceDir``."""
    grant_instance_dir(idir.path, uid)
    if idir.separate:
        grant_instance_dir(idir.host_path, uid)


def granted_uids(path):
    """The uids named in the ACL of ``path`` (another host's guest on shared disks)."""
    out, _ = processutils.execute("getfacl", "--numeric", "--absolute-names",
                                  "--omit-header", path)
    uids = set()
    for line in out.splitlines():
        parts = line.split(":")
        # named user entries, access or default ("user:N:rwx", "default:user:N:rwx")
        if parts[0] == "default":
            parts = parts[1:]
        if len(parts) >= 3 and parts[0] == "user" and parts[1].isdigit():
            uids.add(int(parts[1]))
    return uids - {os.getuid()}


def revoke_instance_dir(path, uid):
    """The guest uid no longer reaches the directory (the disks of an instance on a
    shared instances_path, which another host runs now) nor the files nova owns in it."""
    me = os.getuid()
    _setfacl("-x", "u:%d,d:u:%d" % (uid, uid), path)
    for name in os.listdir(path):
        full = os.path.join(path, name)
        if os.path.isfile(full) and not os.path.islink(full) and \
                os.lstat(full).st_uid == me:
            _setfacl("-x", "u:%d" % uid, full)


def grant_socket_dir(path, uid):
    """The guest uid may create (and replace its own) sockets in the vhost-user socket
    directory ``path`` (sticky: not remove another's), but not list it (the other
    guests' socket names stay unknown to it); nova's user keeps access."""
    _setfacl("-m", "u:%d:wx,u:%d:rwx,m::rwx" % (uid, os.getuid()), path)


def grant_file(path, uid):
    _setfacl("-m", "u:%d:rw,m::rw" % uid, path)
