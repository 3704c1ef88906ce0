"""Every oslo.config.opts entry point loads, and every driver's generator config names it."""
import configparser
import glob
import os

from oslo_config import cfg
import testtools

from tests.common import paths


def entry_points():
    parser = configparser.ConfigParser()
    parser.read(os.path.join(paths.REPO, "setup.cfg"))
    value = parser["options.entry_points"]["oslo.config.opts"]
    return dict(line.split(" = ") for line in value.strip().splitlines())


class TestConfigOpts(testtools.TestCase):
    def test_entry_points_list_documented_options(self):
        for name, target in entry_points().items():
            module, func = target.split(":")
            groups = getattr(__import__(module, fromlist=[func]), func)()
            self.assertTrue(groups, name)
            for _group, opts in groups:
                for opt in opts:
                    self.assertIsInstance(opt, cfg.Opt)
                    self.assertTrue(opt.help and len(opt.help) > 20, (name, opt.name))

    def test_each_generator_config_names_registered_namespaces(self):
        registered = set(entry_points())
        configs = glob.glob(os.path.join(paths.REPO, "etc", "oslo-config-generator", "*.conf"))
        self.assertTrue(configs)
        for path in configs:
            parser = configparser.ConfigParser(strict=False)
            parser.read(path)
            namespaces = {v for k, v in parser.items("DEFAULT") if k == "namespace"}
            self.assertTrue(namespaces <= registered, (path, namespaces - registered))
