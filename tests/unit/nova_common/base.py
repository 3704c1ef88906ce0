"""nova's configuration with a private instances_path for each test."""
import nova.conf
from oslo_config import fixture as config_fixture
import testtools

CONF = nova.conf.CONF


class TestCase(testtools.TestCase):
    def setUp(self):
        super().setUp()
        self.conf = self.useFixture(config_fixture.Config(CONF))
        self.instances = self.useFixture(__import__("fixtures").TempDir()).path
        self.conf.config(instances_path=self.instances)

    def flags(self, group=None, **kw):
        self.conf.config(group=group, **kw)
