"""``compute_driver = liblxc.LXCDriver``: nova loads drivers from nova.virt only."""
from nova_lxc.driver import LXCDriver  # noqa: F401
