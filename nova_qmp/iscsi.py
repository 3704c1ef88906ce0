"""Cinder ``iscsi`` connections attached by QEMU's own iSCSI initiator (libiscsi, Debian's
``qemu-block-extra``) where ``[qmp] iscsi_initiator = qemu``: no session on the host, one
connection per guest.

The CHAP password never appears in clear outside QEMU: each instance has a random AES
key (``master-key`` in its instance directory, readable by nova and the guest's uid only)
given to QEMU as a ``secret`` object read from that file; the password is stored (instance
record) and passed (command line, QMP) encrypted with it (AES-256-CBC), as QEMU's
``secret`` object with ``keyid`` expects.

Multipath connection data (``target_portals``): the first portal that accepts a TCP
connection when the volume is connected is used (QEMU's initiator has no multipath).
"""
import base64
import os
import re
import socket

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.ciphers import modes
from nova import exception
from nova.i18n import _

from nova_common import confine

MASTER_KEY = "master-key"           # file in the instance directory
MASTER_ID = "hci-master-key"        # its QEMU secret object
KIND = "iscsi"
IQN = re.compile(r"^(iqn\.\d{4}-\d{2}\.[a-z0-9.-]+(:[\x21-\x7e]+)?|eui\.[0-9A-Fa-f]{16}|"
                 r"naa\.[0-9A-Fa-f]{16,32})$")
HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)$")
USER = re.compile(r"^[\x21-\x7e]{1,255}$")
PROBE_TIMEOUT = 5


def enabled(conf):
    return conf.qmp.iscsi_initiator == "qemu"


def initiator_name(conf):
    """This host's initiator name: ``[qmp] iscsi_initiator_name``, else open-iscsi's
    (/etc/iscsi/initiatorname.iscsi), else one made from ``[DEFAULT] host``."""
    if conf.qmp.iscsi_initiator_name:
        return conf.qmp.iscsi_initiator_name
    try:
        with open("/etc/iscsi/initiatorname.iscsi") as f:
            for line in f:
                if line.startswith("InitiatorName="):
                    return line.split("=", 1)[1].strip()
    except OSError:
        pass
    host = re.sub(r"[^a-z0-9.-]", "-", conf.host.lower()) or "compute"
    return "iqn.2026-12.org.openstack.hci:" + host


def connector_properties(conf, props):
    """Cinder refuses an iSCSI export without an ``initiator``: give ours when the host's
    open-iscsi has none."""
    if enabled(conf) and not props.get("initiator"):
        props = dict(props, initiator=initiator_name(conf))
    return props


def _invalid(volume_id, why):
    return exception.VolumeAttachFailed(volume_id=volume_id, reason=why)


def _portal(volume_id, text):
    host, sep, port = (text or "").rpartition(":")
    if not sep or not HOST.match(host) or not port.isdigit() or \
            not 0 < int(port) < 65536:
        raise _invalid(volume_id, _("invalid iSCSI portal %r") % text)
    return host, int(port)


def _reachable(host, port):
    try:
        socket.create_connection((host.strip("[]"), port), PROBE_TIMEOUT).close()
        return True
    except OSError:
        return False


def _paths(volume_id, data):
    portals = data.get("target_portals")
    if not portals:
        return [(data.get("target_portal"), data.get("target_iqn"),
                 data.get("target_lun"))]
    iqns = data.get("target_iqns") or [data.get("target_iqn")] * len(portals)
    luns = data.get("target_luns") or [data.get("target_lun")] * len(portals)
    if not len(portals) == len(iqns) == len(luns):
        raise _invalid(volume_id, _("target_portals, target_iqns and target_luns differ "
                                    "in length"))
    return list(zip(portals, iqns, luns, strict=True))


def target(volume_id, connection_info, key):
    """The record entry of a volume QEMU connects to: portal, target, LUN, CHAP user and
    the password encrypted with ``key`` (the instance's master key)."""
    data = connection_info.get("data") or {}
    checked = []
    for portal, iqn, lun in _paths(volume_id, data):
        host, port = _portal(volume_id, portal)
        if not isinstance(iqn, str) or not IQN.match(iqn):
            raise _invalid(volume_id, _("invalid iSCSI target name %r") % iqn)
        try:
            lun = int(lun or 0)
        except (TypeError, ValueError):
            lun = -1
        if not 0 <= lun < 16384:
            raise _invalid(volume_id, _("invalid iSCSI LUN %r") % (lun,))
        checked.append(("%s:%d" % (host, port), iqn, lun))
    chosen = next((p for p in checked if _reachable(*_portal(volume_id, p[0]))), None)
    if chosen is None:
        raise _invalid(volume_id, _("no iSCSI portal answers: %s")
                       % ", ".join(p[0] for p in checked))
    entry = {"kind": KIND, "portal": chosen[0], "target": chosen[1], "lun": chosen[2]}
    method = (data.get("auth_method") or "").upper()
    if method == "CHAP":
        user, password = data.get("auth_username"), data.get("auth_password")
        if not isinstance(user, str) or not USER.match(user) or \
                not isinstance(password, str) or not password:
            raise _invalid(volume_id, _("CHAP needs a user name and a password"))
        entry["user"] = user
        entry["password"] = encrypt(key, password)
    elif method not in ("", "NONE"):
        raise _invalid(volume_id, _("iSCSI authentication %s is not supported") % method)
    return entry


# -- the instance's master key and secrets ---------------------------------------------
def master_key(idir, uid):
    """The instance's AES key (made on first use, mode 0600, readable by the guest)."""
    path = idir.file(MASTER_KEY)
    try:
        with open(path, "rb") as f:
            key = f.read()
        if len(key) == 32:
            return key
    except FileNotFoundError:
        pass
    key = os.urandom(32)
    fd = os.open(path + ".new", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    os.replace(path + ".new", path)
    if uid:
        confine.grant_file(path, uid)
    return key


def encrypt(key, plaintext):
    """{"data", "iv"}: ``plaintext`` in AES-256-CBC (PKCS#7 padding), base64, as QEMU's
    ``secret`` object decrypts with ``keyid``."""
    iv = os.urandom(16)
    padder = padding.PKCS7(128).padder()
    raw = padder.update(plaintext.encode()) + padder.finalize()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    data = enc.update(raw) + enc.finalize()
    return {"data": base64.b64encode(data).decode(), "iv": base64.b64encode(iv).decode()}


def decrypt(key, secret):
    """The plaintext of what ``encrypt`` made (used by tests)."""
    dec = Cipher(algorithms.AES(key), modes.CBC(base64.b64decode(secret["iv"]))).decryptor()
    raw = dec.update(base64.b64decode(secret["data"])) + dec.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return (unpadder.update(raw) + unpadder.finalize()).decode()


def secret_id(node):
    return node + "s"


def master_key_object(idir):
    return {"qom-type": "secret", "id": MASTER_ID, "format": "raw",
            "file": idir.file(MASTER_KEY)}


def secret_object(node, vol):
    """The QEMU ``secret`` object of a volume's CHAP password, or None (no CHAP)."""
    if "password" not in vol:
        return None
    return {"qom-type": "secret", "id": secret_id(node), "format": "base64",
            "keyid": MASTER_ID, "data": vol["password"]["data"],
            "iv": vol["password"]["iv"]}


def blockdev(node, vol, initiator):
    """The ``-blockdev``/``blockdev-add`` arguments: a raw node over QEMU's iscsi
    driver."""
    iscsi = {"driver": "iscsi", "node-name": node + "f", "transport": "tcp",
             "portal": vol["portal"], "target": vol["target"], "lun": vol["lun"],
             "initiator-name": initiator}
    if "password" in vol:
        iscsi["user"] = vol["user"]
        iscsi["password-secret"] = secret_id(node)
    return {"driver": "raw", "node-name": node, "discard": "unmap", "file": iscsi}
