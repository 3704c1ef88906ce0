"""Zvols and snapshots under a backend's root that cinder could manage.

One ``zfs get -r`` reads everything needed; entries follow cinder's format for
``get_manageable_volumes`` / ``get_manageable_snapshots``.
"""
import math

from cinder.volume import volume_utils

GiB = 1024 ** 3
CLONE_SNAPSHOT_PREFIX = "clone-"   # snapshots the driver takes to clone a volume
UPLOAD_SNAPSHOT_PREFIX = "upload-"   # ... and to upload one to an image (remote host)
PROPS = ["type", "volsize", "defer_destroy", "org.openstack:cinder_volume"]


def _entry(name, size, cinder_id, in_use_reason=None):
    if cinder_id:
        safe, reason = False, "already managed"
    elif in_use_reason:
        safe, reason = False, in_use_reason
    else:
        safe, reason = True, None
    return {"reference": {"source-name": name}, "size": int(math.ceil(size / GiB)),
            "cinder_id": cinder_id, "extra_info": None, "safe_to_manage": safe,
            "reason_not_safe": reason}


def volumes(zfs, root, cinder_volumes):
    tree = zfs.get_tree(root, PROPS)
    known = {v["id"] for v in cinder_volumes}
    entries = []
    for name, props in sorted(tree.items()):
        if props.get("type") != "volume":
            continue
        leaf = name.rsplit("/", 1)[-1]
        vid = volume_utils.extract_id_from_volume_name(leaf)
        marked = props.get("org.openstack:cinder_volume", "-")
        cinder_id = next((i for i in (vid, marked) if i in known), None)
        entries.append(_entry(name, int(props["volsize"]), cinder_id))
    return entries


def snapshots(zfs, root, cinder_snapshots):
    tree = zfs.get_tree(root, PROPS)
    known = {s["id"] for s in cinder_snapshots}
    entries = []
    for name, props in sorted(tree.items()):
        if props.get("type") != "snapshot" or "@" not in name:
            continue
        zvol, snap = name.split("@", 1)
        if tree.get(zvol, {}).get("type") != "volume" or props.get("defer_destroy") == "on":
            continue   # snapshots of filesystems, or already destroyed (kept for clones)
        if snap.startswith((CLONE_SNAPSHOT_PREFIX, UPLOAD_SNAPSHOT_PREFIX)):
            continue   # the driver's own clone origins and image uploads
        sid = volume_utils.extract_id_from_snapshot_name(snap)
        entry = _entry(snap, int(props["volsize"]), sid if sid in known else None)
        entry["source_reference"] = {"source-name": zvol}
        entries.append(entry)
    return entries
