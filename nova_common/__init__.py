"""The compute layer shared by the nova drivers (QMP, Cloud Hypervisor, LXC).

``instance_dir`` (per-instance files, private modes), ``disks`` (cached base images, root,
ephemeral and swap disks, config drives), ``imagecache`` (pruning of unused bases),
``consolelog`` (bounded console logs through a logger process), ``host`` (host resources
and provider inventory), ``lifecycle`` (power states and lifecycle events delivered in
either concurrency mode).
"""
