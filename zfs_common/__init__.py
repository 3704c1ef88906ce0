"""Shared ZFS layer of the storage drivers.

A typed client for ZFS datasets, zvols, snapshots and clones, run through a local (privsep)
or remote (SSH) executor, used by both ``zfs_cinder`` and ``zfs_manila``.
"""
