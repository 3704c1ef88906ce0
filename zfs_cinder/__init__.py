"""Cinder volume driver on ZFS zvols.

Enabled with ``volume_driver = zfs_cinder.driver.ZFSVolumeDriver``: volumes are zvols on a
local or remote ZFS host, attached locally on the same host or exported through cinder's
own target helpers (iSCSI, NVMe-oF) otherwise.
"""
