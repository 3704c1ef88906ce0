import gzip
import io
import os
import tarfile
import tempfile

from nova import exception
from nova import objects
import testtools

from nova_lxc import images

objects.register_all()


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return path


class TestImages(testtools.TestCase):
    def setUp(self):
        super().setUp()
        self.dir = self.useFixture(__import__("fixtures").TempDir()).path

    def test_kind_by_content(self):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            tar.addfile(tarfile.TarInfo("etc"))
        plain = write(os.path.join(self.dir, "t.tar"), buf.getvalue())
        gz = write(os.path.join(self.dir, "t.tgz"), gzip.compress(buf.getvalue()))
        xz = write(os.path.join(self.dir, "t.txz"), b"\xfd7zXZ\x00" + b"\0" * 100)
        ext = write(os.path.join(self.dir, "fs"), b"\0" * 1080 + b"\x53\xef" + b"\0" * 900)
        qcow = write(os.path.join(self.dir, "q"), b"QFI\xfb" + b"\0" * 100)
        junk = write(os.path.join(self.dir, "j"), b"\x7fELF" + b"\0" * 3000)
        self.assertEqual([images.TAR, images.TAR, images.TAR, images.EXTFS, images.QCOW2,
                          None], [images.kind(p) for p in (plain, gz, xz, ext, qcow, junk)])

    def test_glance_metadata(self):
        ok = objects.ImageMeta.from_dict({"disk_format": "raw", "container_format": "bare"})
        images.check_meta("i", ok)
        for disk, container in (("vmdk", "bare"), ("raw", "ova"), ("iso", "bare")):
            meta = objects.ImageMeta.from_dict({"disk_format": disk,
                                                "container_format": container})
            self.assertRaises(exception.ImageUnacceptable, images.check_meta, "i", meta)
        self.assertRaises(exception.ImageUnacceptable, images.check_meta, "i",
                          objects.ImageMeta.from_dict({}))

    def test_cache_key_per_image_and_id_map(self):
        a = images.cache_key("img", (100000, 65536))
        self.assertNotEqual(a, images.cache_key("img", (200000, 65536)))
        self.assertNotEqual(a, images.cache_key("img", None))
        self.assertNotIn("/", a)

    def test_unpack_refuses_bad_paths_and_keys(self):
        image = write(os.path.join(self.dir, "j"), b"junk")
        for args in (("rel/path", "/c", "k"), (image, "/c/../x", "k"),
                     (image, "/c", "../k"), (image, "/c", ".k")):
            self.assertRaises(exception.InvalidInput, images.unpack, *args, None, "i")

    def test_unpack_refuses_junk_and_leaves_nothing(self):
        cache = tempfile.mkdtemp(dir=self.dir)
        image = write(os.path.join(self.dir, "j"), b"\0" * 4096)
        self.assertRaises(exception.ImageUnacceptable, images.unpack, image, cache, "k",
                          None, "i")
        self.assertEqual([], os.listdir(cache))
