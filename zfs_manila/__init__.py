"""Manila share driver on ZFS datasets.

Enabled with ``share_driver = zfs_manila.driver.ZFSShareDriver``: shares are ZFS datasets
exported over NFS (driver_handles_share_servers = False).
"""
