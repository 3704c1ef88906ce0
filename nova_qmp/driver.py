"""Nova compute driver running QEMU directly, managed over QMP.

Loaded with ``compute_driver = qmp.QMPDriver`` (the ``nova.virt.qmp`` shim). The nova
flow is ``nova_common.driver.BaseDriver``'s; QEMU is bound to it in
``nova_qmp.hypervisor``. Operations neither implements raise ``NotImplementedError``.
"""
import nova.conf

from nova_common import driver
from nova_qmp import hypervisor
from nova_qmp import opts

opts.register(nova.conf.CONF)


class QMPDriver(driver.BaseDriver):
    hypervisor_class = hypervisor.QemuHypervisor
