"""A zvol snapshot's ``zfs send`` stream written out as a sparse raw image.

``zfs send`` carries only the blocks a zvol has allocated (holes are not sent, or sent as
FREE records), so reading a remote zvol through its send stream moves only its data,
where reading ``/dev/zvol/...`` moves every byte of its size. This reader understands
the plain full stream of one zvol snapshot (no ``-c``, ``-e``, ``-w``, ``-R`` or ``-D``,
which the callers never ask for): the records' layout is OpenZFS's
``dmu_replay_record_t`` (312 bytes each, in the sender's byte order), the zvol's data is
object 1; everything else (object and free records, the zvol's ZAP) only needs its
payload skipped. Zero-filled data blocks are skipped too, so the image stays sparse.
"""
import os
import struct

from zfs_common import exception

RECORD = 312
MAGIC = 0x2F5BACBAC
(BEGIN, OBJECT, FREEOBJECTS, WRITE, FREE, END, WRITE_BYREF, SPILL, WRITE_EMBEDDED,
 OBJECT_RANGE, REDACT) = range(11)
ZVOL_DATA_OBJECT = 1
# drr_type, drr_payloadlen, then the union
_HEAD = "II"
# drr_write: object, type, pad, offset, logical size, toguid, checksumtype, flags,
# compressiontype, pad2[5], ddt key (40 bytes), compressed size
_WRITE = "QIIQQQBBB5x40xQ"
# drr_object: object, type, bonustype, blksz, bonuslen, 4 bytes, raw_bonuslen
_OBJECT = "QIIII4xI"
# drr_spill: object, length, toguid, flags, compressiontype, pad[6], compressed size
_SPILL = "QQQBB6xQ"
# drr_write_embedded: object, offset, length, toguid, 8 bytes, lsize, psize
_EMBEDDED = "QQQQ8xII"


class StreamError(exception.ZFSError):
    """The send stream is truncated, or not a plain full stream of one zvol."""


def _round8(n):
    return (n + 7) & ~7


class _Reader:
    def __init__(self, read):
        self._read = read
        self.count = 0

    def exactly(self, n):
        parts, left = [], n
        while left:
            chunk = self._read(min(left, 1 << 20))
            if not chunk:
                raise StreamError("zfs send stream truncated after %d bytes" % self.count)
            parts.append(chunk)
            left -= len(chunk)
        self.count += n
        return b"".join(parts) if len(parts) != 1 else parts[0]

    def skip(self, n):
        while n:
            n -= len(self.exactly(min(n, 1 << 20)))


def write_raw(read, fd, size):
    """Write the zvol image carried by a send stream into ``fd`` (a regular file).

    :param read: ``read(n)`` of the stream (a pipe's ``read``): at most n bytes, b"" at
        its end.
    :param fd: a file descriptor open for writing; it is cut to ``size`` bytes and only
        non-zero data is written into it, at its offsets.
    :param size: the zvol's ``volsize``.
    :returns: the number of data bytes written.
    """
    stream = _Reader(read)
    head = stream.exactly(RECORD)
    order = None
    for candidate in "<>":
        kind, _ = struct.unpack_from(candidate + _HEAD, head)
        (magic,) = struct.unpack_from(candidate + "Q", head, 8)
        if kind == BEGIN and magic == MAGIC:
            order = candidate
    if order is None:
        raise StreamError("not a zfs send stream (no BEGIN record with the stream magic)")
    (versioninfo,) = struct.unpack_from(order + "Q", head, 16)
    if versioninfo & 3 != 1:
        raise StreamError("a compound (-R) stream: only a single snapshot's is read")
    stream.skip(struct.unpack_from(order + _HEAD, head)[1])   # BEGIN's nvlist
    os.ftruncate(fd, 0)
    os.ftruncate(fd, int(size))
    written = 0
    while True:
        record = stream.exactly(RECORD)
        kind, _payloadlen = struct.unpack_from(order + _HEAD, record)
        if kind == END:
            return written
        if kind == WRITE:
            (obj, _t, _p, offset, logical, _g, _c, _f, compression,
             compressed) = struct.unpack_from(order + _WRITE, record, 8)
            if compression:
                raise StreamError("a compressed (-c) stream cannot be written raw")
            data = stream.exactly(logical)
            if obj != ZVOL_DATA_OBJECT or not data.strip(b"\0"):
                continue
            if offset + len(data) > size:
                raise StreamError("data at %d beyond the volume's %d bytes" % (offset, size))
            view, pos = memoryview(data), 0
            while pos < len(view):
                pos += os.pwrite(fd, view[pos:], offset + pos)
            written += len(data)
        elif kind == OBJECT:
            _o, _t, _b, _blk, bonuslen, raw_bonuslen = struct.unpack_from(
                order + _OBJECT, record, 8)
            stream.skip(raw_bonuslen or _round8(bonuslen))
        elif kind == SPILL:
            _o, length, _g, _f, _c, compressed = struct.unpack_from(order + _SPILL, record, 8)
            stream.skip(compressed or length)
        elif kind in (FREEOBJECTS, FREE, OBJECT_RANGE, REDACT):
            # frees: the image starts as a hole everywhere
            continue
        elif kind == BEGIN:
            raise StreamError("a nested BEGIN record: not a single snapshot's stream")
        else:
            raise StreamError("send record type %d is not read here (deduplicated or "
                              "embedded-data streams are never asked for)" % kind)
