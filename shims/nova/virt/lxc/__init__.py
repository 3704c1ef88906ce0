"""``compute_driver = lxc.LXCDriver``: nova loads drivers from nova.virt only.

Inside this package ``import lxc`` still means the liblxc binding (imports are absolute);
``liblxc.LXCDriver`` names the same driver.
"""
from nova_lxc.driver import LXCDriver  # noqa: F401
