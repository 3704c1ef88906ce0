"""Nova compute driver running QEMU directly and managing it over QMP.

Enabled with ``compute_driver = qmp.QMPDriver`` (through the ``nova.virt.qmp`` shim):
one QEMU process per instance, no libvirt daemon.
"""
