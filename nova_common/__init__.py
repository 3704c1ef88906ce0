"""The compute layer shared by the nova drivers (QMP, Cloud Hypervisor, LXC).

``instance_dir`` (per-instance files, private modes), ``disks`` (image cache and root disk
preparation, config drives), ``host`` (host resources and provider inventory),
``lifecycle`` (power states and lifecycle events delivered in either concurrency mode).
"""
