"""``compute_driver = qmp.QMPDriver``: nova loads drivers from nova.virt only."""
from nova_qmp.driver import QMPDriver  # noqa: F401
