"""zfs_common.sendstream on streams built record by record (the real ones come from
OpenZFS in the functional tests)."""
import io
import os
import struct

import fixtures
import testtools

from zfs_common import sendstream as ss

KiB = 1024


def record(kind, body=b"", order="<", payloadlen=0):
    head = struct.pack(order + "II", kind, payloadlen) + body
    return head + bytes(ss.RECORD - len(head))


def begin(order="<", versioninfo=1, nvlist=b""):
    body = struct.pack(order + "QQ", ss.MAGIC, versioninfo)
    return record(ss.BEGIN, body, order, len(nvlist)) + nvlist


def write(obj, offset, data, order="<", compression=0):
    body = struct.pack(order + ss._WRITE, obj, 0, 0, offset, len(data), 7, 0, 0,
                       compression, 0)
    return record(ss.WRITE, body, order) + data


def obj(number, bonuslen, order="<"):
    body = struct.pack(order + ss._OBJECT, number, 0, 0, 8192, bonuslen, 0)
    return record(ss.OBJECT, body, order) + bytes(ss._round8(bonuslen))


def end(order="<"):
    return record(ss.END, b"", order)


class TestWriteRaw(testtools.TestCase):
    def setUp(self):
        super().setUp()
        path = os.path.join(self.useFixture(fixtures.TempDir()).path, "image")
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self.addCleanup(os.close, self.fd)

    def image(self):
        return os.pread(self.fd, 1 << 20, 0)

    def convert(self, stream, size=64 * KiB):
        return ss.write_raw(io.BytesIO(stream).read, self.fd, size)

    def test_data_of_the_zvol_object_at_its_offsets(self):
        for order in "<>":
            stream = (begin(order, nvlist=b"x" * 16) + obj(1, 0, order) + obj(2, 5, order)
                      + write(2, 0, b"zap!" * 8, order)          # the zvol's ZAP: not data
                      + write(1, 8 * KiB, b"A" * (4 * KiB), order)
                      + record(ss.FREE, b"", order)
                      + write(1, 40 * KiB, bytes(8 * KiB), order)  # zeros: stays a hole
                      + write(1, 60 * KiB, b"B" * (4 * KiB), order) + end(order))
            self.assertEqual(8 * KiB, self.convert(stream))
            expected = bytearray(64 * KiB)
            expected[8 * KiB:12 * KiB] = b"A" * (4 * KiB)
            expected[60 * KiB:] = b"B" * (4 * KiB)
            self.assertEqual(bytes(expected), self.image())

    def test_an_earlier_image_is_replaced(self):
        os.pwrite(self.fd, b"old" * 40000, 0)
        self.convert(begin() + write(1, 0, b"n" * KiB) + end(), size=4 * KiB)
        self.assertEqual(b"n" * KiB + bytes(3 * KiB), self.image())

    def test_a_truncated_stream_fails(self):
        stream = begin() + write(1, 0, b"A" * (4 * KiB))
        for cut in (len(stream), len(stream) - 1, 100):
            self.assertRaises(ss.StreamError, self.convert, stream[:cut])

    def test_streams_it_cannot_write_raw(self):
        for stream in (b"\0" * ss.RECORD + end(),                   # no stream magic
                       begin(versioninfo=2) + end(),                # compound (-R)
                       begin() + write(1, 0, b"c" * 512, compression=15) + end(),
                       begin() + record(ss.WRITE_BYREF) + end(),    # deduplicated
                       begin() + begin() + end(),                   # nested
                       begin() + write(1, 64 * KiB, b"A" * 512) + end()):  # past volsize
            self.assertRaises(ss.StreamError, self.convert, stream)
