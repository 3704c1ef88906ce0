"""Cinder volumes of an encrypted volume type (front-end LUKS, LUKS version 1), opened by
QEMU's own ``luks`` block driver over the volume's protocol node, as libvirt's native
LUKS decryption does.

The passphrase is the volume's key from nova's key manager (castellan), hex-encoded as
os-brick's and libvirt's LUKS encryptors make it, so volumes stay interchangeable with
theirs. It never appears in clear outside QEMU: it is stored in the instance record and
passed (QMP ``object-add``, the command line of a later start) encrypted with the
instance's master key (``nova_qmp.iscsi``), as a ``secret`` object QEMU decrypts itself.

A volume without a LUKS header yet (a blank volume of an encrypted type) is formatted
with that passphrase by QEMU's ``blockdev-create`` job before the guest sees it, as
os-brick's encryptor formats one on its first attach. Only ``luks`` (and its legacy
class-path aliases) is supported; ``luks2`` (QEMU's driver reads LUKS version 1 only)
and ``plain`` dm-crypt are refused, as is any combination this driver has not tested:
multiattach, swap (retype/migration) and live migration of an encrypted volume.
"""
import binascii
import re

from castellan import key_manager
from nova import exception
import nova.conf
from nova.i18n import _
from os_brick import encryptors

from nova_qmp import iscsi

CONF = nova.conf.CONF
FORMAT = "luks"
MiB = 1024 * 1024
HEADER_ROOM = 4 * MiB      # more than any LUKS1 header QEMU writes (8 key slots)
CIPHER = re.compile(r"^(?P<alg>aes|serpent|twofish)-(?P<mode>xts|cbc|ecb|ctr)-"
                    r"(?P<ivgen>plain64|plain|essiv)(?::(?P<hash>sha1|sha256|sha512))?$")
HASHES = ("sha1", "sha256", "sha512")
# the QMP error of QEMU's luks driver opening a volume that has no LUKS header
NOT_LUKS = "not in LUKS format"
# QEMU times its PBKDF2 iterations with the thread's CPU time (getrusage); on a kernel
# with tick-based CPU accounting its first, short, measurement can read zero and the
# creation fails with this error before writing anything: it is tried again
BENCHMARK_FAILED = "Unable to get accurate CPU usage"
FORMAT_ATTEMPTS = 10


def provider_of(encryption):
    """The encryption format (``luks``, ``luks2``, ``plain``) of cinder's metadata, legacy
    class paths (``nova.volume.encryptors.luks.LuksEncryptor``, ...) resolved."""
    provider = encryption.get("provider")
    return encryptors.LEGACY_PROVIDER_CLASS_TO_FORMAT_MAP.get(provider, provider)


def front_end(encryption):
    """Whether the compute host decrypts (cinder's ``control_location`` front-end, the
    default) rather than the storage back end."""
    return (encryption.get("control_location") or "front-end").lower() == "front-end"


def create_options(encryption):
    """QEMU's LUKS creation options for cinder's ``cipher`` and ``key_size`` (cryptsetup's
    meaning, as os-brick formats: an XTS key size counts both halves); QEMU's defaults
    (aes-256-xts-plain64, sha256) when cinder gives none."""
    volume_id = encryption.get("volume_id", "-")
    cipher, key_size = encryption.get("cipher"), encryption.get("key_size")
    options = {}
    if cipher:
        match = CIPHER.match(str(cipher))
        if not match:
            raise exception.VolumeEncryptionNotSupported(
                volume_type="cipher %r" % (cipher,), volume_id=volume_id)
        mode = match.group("mode")
        options.update({"cipher-mode": mode, "ivgen-alg": match.group("ivgen")})
        if match.group("hash"):
            options["ivgen-hash-alg"] = match.group("hash")
        elif match.group("ivgen") == "essiv":
            raise exception.VolumeEncryptionNotSupported(
                volume_type="cipher %r (essiv without a hash)" % cipher,
                volume_id=volume_id)
        bits = int(key_size or (512 if mode == "xts" else 256))
        if mode == "xts":
            bits //= 2
        if bits not in (128, 192, 256):
            raise exception.VolumeEncryptionNotSupported(
                volume_type="key size %r for %s" % (key_size, cipher), volume_id=volume_id)
        alg = match.group("alg")
        options["cipher-alg"] = "%s-%d" % (alg, bits)
    elif key_size:
        raise exception.VolumeEncryptionNotSupported(
            volume_type="key size %r without a cipher" % (key_size,), volume_id=volume_id)
    return options


def passphrase(context, key_id):
    """The LUKS passphrase of the volume's key: its bytes in hex (os-brick's and libvirt's
    convention for cinder's symmetric keys)."""
    key = key_manager.API(CONF).get(context, key_id)
    return binascii.hexlify(key.get_encoded()).decode()


def entry(context, volume_id, connection_info, encryption, master):
    """The ``encryption`` field of a volume's record (the passphrase encrypted with the
    instance's ``master`` key, the creation options), or None when the host has nothing
    to decrypt (back-end encryption, no provider). Unsupported formats and uses raise
    ``VolumeEncryptionNotSupported``."""
    if not encryption or not front_end(encryption):
        return None
    provider = provider_of(encryption)
    if not provider:
        return None
    if provider != encryptors.LUKS:
        raise exception.VolumeEncryptionNotSupported(volume_type=provider,
                                                     volume_id=volume_id)
    if connection_info.get("multiattach"):
        raise exception.VolumeEncryptionNotSupported(
            volume_type="multiattach luks", volume_id=volume_id)
    key_id = encryption.get("encryption_key_id")
    if not key_id:
        raise exception.VolumeAttachFailed(
            volume_id=volume_id, reason=_("the encrypted volume has no encryption_key_id"))
    options = create_options(dict(encryption, volume_id=volume_id))
    try:
        secret = passphrase(context, key_id)
    except Exception as e:
        raise exception.VolumeAttachFailed(
            volume_id=volume_id,
            reason=_("the key manager gave no key %(key)s: %(err)s")
            % {"key": key_id, "err": type(e).__name__}) from e
    return {"format": FORMAT, "key": iscsi.encrypt(master, secret), "create": options}


def secret_id(node):
    return node + "k"


def secret_object(node, vol):
    """The QEMU ``secret`` object of an encrypted volume's passphrase (decrypted by QEMU
    with the instance's master key), or None."""
    enc = vol.get("encryption")
    if not enc:
        return None
    return {"qom-type": "secret", "id": secret_id(node), "format": "base64",
            "keyid": iscsi.MASTER_ID, "data": enc["key"]["data"], "iv": enc["key"]["iv"]}


def blockdevs(node, plain):
    """An encrypted volume's two block nodes, from the ``raw`` node ``plain`` a plain
    volume would have: its protocol node (``<node>f``) and the ``luks`` node over it,
    the one the guest's device uses."""
    protocol = dict(plain["file"])
    protocol.setdefault("node-name", node + "f")
    luks = {"driver": "luks", "node-name": node, "key-secret": secret_id(node),
            "file": protocol["node-name"]}
    if "discard" in plain:
        luks["discard"] = plain["discard"]
    return [protocol, luks]


def not_formatted(error):
    """Whether QEMU's error opening the luks node says the volume has no LUKS header."""
    return NOT_LUKS in str(error)


def benchmark_failed(error):
    return BENCHMARK_FAILED in str(error)


def create_job(job, protocol_node, node, device_size, vol):
    """``blockdev-create`` arguments writing a LUKS header on the protocol node (the
    payload a little smaller than the device: it is grown to fill it once opened)."""
    size = device_size - HEADER_ROOM
    if size < MiB:
        raise exception.InvalidInput(
            reason=_("the volume (%d bytes) is too small for a LUKS header") % device_size)
    options = {"driver": "luks", "file": protocol_node, "size": size,
               "key-secret": secret_id(node)}
    options.update(vol["encryption"].get("create") or {})
    return {"job-id": job, "options": options}
