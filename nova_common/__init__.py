"""Shared layer of the Nova compute drivers.

Instance directories, image cache and disk preparation, config drives, VIF plumbing,
volume connections through os-brick, resource reporting, power-state mapping, lifecycle
events and supervision of hypervisor processes: written once, used by ``nova_qmp``,
``nova_cloudhypervisor`` and ``nova_lxc``.
"""
