"""The per-hypervisor contract of the compute drivers (QEMU/QMP, Cloud Hypervisor, LXC).

``nova_common.driver.BaseDriver`` holds everything nova-generic (instance directories and
records, resources, the spawn skeleton and its undo, volume connections and VIF plugging,
resize, rescue, snapshot upload, console plumbing, lifecycle events, power-off retries).
A hypervisor binds that flow to one virtualisation technology by implementing
``Hypervisor``: the driver talks to guests only through it.

Layering (as nova's z/VM driver): driver (nova's API) -> ``Hypervisor`` (one per
nova-compute) -> ``Guest`` (one instance on this host, a plain handle). Every method
takes the ``Guest``; none of them touches nova's database objects except
``launch_spec``, which reads the instance, flavor and image once at spawn.

Mandatory operations are abstract. Optional ones (``Description.optional`` names those a
hypervisor has) raise ``NotImplementedError`` here, which nova reports as unsupported.
Failures raise nova exceptions (``InstanceNotRunning``, ``InternalError`` with the
hypervisor's own message, ``DeviceDetachFailed``, ...).
"""
import abc
import dataclasses
import typing

from nova import exception

# optional operations a hypervisor may declare in Description.optional
PAUSE = "pause"                  # pause/unpause
NMI = "nmi"                      # inject_nmi
SAVE_RESTORE = "save_restore"    # save + start(restore_from=...): suspend/resume
DISK_HOTPLUG = "disk_hotplug"    # attach_disk/detach_disk on a running guest
DISK_RESIZE = "disk_resize"      # resize_disk on a running guest
NIC_HOTPLUG = "nic_hotplug"      # attach_nic/detach_nic on a running guest
EXPORT_ROOT = "export_root"      # export_root_disk of a running guest (live snapshot)
RESCUE = "rescue"                # start honours Record.rescued (rescue disk first)
LOCAL_DISKS = "local_disks"      # start attaches spec["local_disks"] (ephemeral, swap)
IMAGE_CACHE = "image_cache"      # root disks backed by the shared _base (nova's manager)
MULTIQUEUE = "multiqueue"        # start/attach_nic honour a vif entry's "queues" (> 1)
MULTIATTACH = "multiattach"      # volumes with "shared" set used by several guests at once
DISK_SWAP = "disk_swap"          # swap_disk: a running guest's volume copied to another
LIVE_MIGRATION = "live_migration"  # prepare_incoming ... migrate (nova_common.migration)
# evacuate verified: nova rebuilds (spawns) on another host, and the old host destroys
# its copy when its nova-compute starts again (no hypervisor method of its own)
EVACUATE = "evacuate"
# cold migration and resize to another host: disk_transfer (nova_common.disk_transfer)
COLD_MIGRATION = "cold_migration"
OPTIONAL = frozenset({PAUSE, NMI, SAVE_RESTORE, DISK_HOTPLUG, DISK_RESIZE, NIC_HOTPLUG,
                      EXPORT_ROOT, RESCUE, LOCAL_DISKS, IMAGE_CACHE, MULTIQUEUE,
                      MULTIATTACH, DISK_SWAP, LIVE_MIGRATION, EVACUATE, COLD_MIGRATION})


@dataclasses.dataclass(frozen=True)
class Description:
    """What a hypervisor supports; the driver's ``capabilities`` derive from it."""
    hypervisor_type: str                  # nova's hypervisor_type (e.g. "qemu")
    image_formats: tuple                  # Glance disk_formats it boots ("qcow2", ...)
    vif_types: tuple                      # nova.network.model VIF types it plugs
    optional: frozenset = frozenset()     # subset of OPTIONAL
    vm_mode: str = "hvm"
    # its processes run under a guest uid of their own (nova_common.confine), started
    # through the privileged launcher; the base then allocates the uid, sets the ACLs and
    # makes taps and volume devices the guest uid's
    confined: bool = False
    # the guest's process opens its taps itself (QEMU), so a confined guest's taps are
    # its uid's; False: nova-compute opens them and hands the descriptors over (Cloud
    # Hypervisor's vm.add-net), so they stay nova's user's
    guest_opens_taps: bool = True

    def __post_init__(self):
        unknown = set(self.optional) - OPTIONAL
        if unknown:
            raise ValueError("unknown optional operations: %s" % sorted(unknown))

    def has(self, operation):
        return operation in self.optional


@dataclasses.dataclass
class Guest:
    """One instance on this host, as the hypervisor sees it."""
    uuid: str
    idir: typing.Any              # nova_common.instance_dir.InstanceDir
    record: typing.Any            # nova_common.record.Record

    @property
    def name(self):
        return self.record.name


# on_event(uuid, transition): a nova.virt.event EVENT_LIFECYCLE_* for the instance;
# called from the hypervisor's own thread: it must not block
EventCallback = typing.Callable[[str, int], None]


class Hypervisor(abc.ABC):
    description: Description

    # -- host -----------------------------------------------------------------------------
    @abc.abstractmethod
    def check_host(self):
        """Raise ``InternalError`` if this host cannot run guests (nova-compute stops)."""

    @abc.abstractmethod
    def version(self):
        """The hypervisor's version as nova's int (``versionutils``), 0 if unknown."""

    @abc.abstractmethod
    def arch(self):
        """The guest architecture (``x86_64``)."""

    @abc.abstractmethod
    def open_events(self, on_event):
        """Start delivering lifecycle events to ``on_event`` (an ``EventCallback``)."""

    @abc.abstractmethod
    def close_events(self):
        """Stop the event thread and drop connections; guests keep running."""

    @abc.abstractmethod
    def reattach(self, guest):
        """After a nova-compute restart: reconnect to a running guest. True if it runs."""

    def upgrade_record(self, data):
        """A version 1 record (a dict) as version 2 fields; hypervisors that never wrote
        version 1 have none to migrate."""
        raise ValueError("no version 1 records for this hypervisor")

    # -- life cycle -----------------------------------------------------------------------
    @abc.abstractmethod
    def launch_spec(self, instance, image_meta, root_disk, config_drive, previous=None):
        """The JSON-able launch spec kept in the record (built once, at spawn, and again
        when a resize gives a new flavor, from the ``previous`` spec): what ``start``
        cannot rebuild from nova.conf and the record. ``root_disk``: the instance boots
        from the image disk in its directory (else from its boot volume). Raise
        ``ImageUnacceptable`` for images asking for what the hypervisor cannot give."""

    @abc.abstractmethod
    def start(self, guest, restore_from=None):
        """Start the guest from its record and the current configuration (its volumes
        and interfaces in ``guest.record``); from the saved state at ``restore_from`` if
        given. Returns once it runs. Raises ``InstanceDeployFailure`` if it does not start
        (nothing left running)."""

    @abc.abstractmethod
    def stop(self, guest):
        """Stop the guest's process now (idempotent); no lifecycle event results."""

    @abc.abstractmethod
    def running(self, guest):
        """Whether the guest's process exists."""

    @abc.abstractmethod
    def state(self, guest):
        """A nova ``power_state`` of a guest whose process exists."""

    @abc.abstractmethod
    def request_shutdown(self, guest):
        """Ask the guest OS to power off (ACPI power button); returns at once."""

    @abc.abstractmethod
    def reset(self, guest):
        """Hard reset of a running guest (its process stays)."""

    @abc.abstractmethod
    def console_endpoints(self, guest):
        """TCP ports the running guest's consoles listen on, for nova's console proxies:
        ``{"vnc": port or None, "serial": port or None}``."""

    # -- optional operations --------------------------------------------------------------
    def pause(self, guest):
        raise NotImplementedError()

    def unpause(self, guest):
        raise NotImplementedError()

    def inject_nmi(self, guest):
        raise NotImplementedError()

    def save(self, guest, path):
        """Save the running guest's state to ``path`` (the guest is paused meanwhile and
        resumed if saving fails); the driver stops the guest after it."""
        raise NotImplementedError()

    def attach_disk(self, guest, volume_id, volume):
        """Hot-plug ``guest.record.volumes[volume_id]`` (already connected on the host)."""
        raise NotImplementedError()

    def detach_disk(self, guest, volume_id, volume):
        """Hot-unplug a volume; the guest releases it (``DeviceDetachFailed`` if not)."""
        raise NotImplementedError()

    def resize_disk(self, guest, volume_id, volume, size):
        raise NotImplementedError()

    def swap_disk(self, guest, old_id, old, new_id, new):
        """Copy the running guest's volume ``old`` to ``new`` (connected on the host, not
        yet in use) while the guest runs, then switch the guest's disk to it; ``old`` is
        no longer used by the hypervisor afterwards. May record in ``new`` what it needs
        later (e.g. the device's id)."""
        raise NotImplementedError()

    def attach_nic(self, guest, vif_id, vif):
        """Hot-plug ``guest.record.vifs[vif_id]`` (its host side already plugged)."""
        raise NotImplementedError()

    def detach_nic(self, guest, vif_id, vif):
        raise NotImplementedError()

    def export_root_disk(self, guest, path):
        """Write a point-in-time copy of the running guest's root disk to ``path`` as a
        standalone qcow2 image."""
        raise NotImplementedError()

    def free_slot(self, guest):
        """A hot-plug slot for a new device (None: the hypervisor picks)."""
        return None

    def diagnostics(self, guest):
        """Counters of a running guest, as ``nova_common.diagnostics`` takes them."""
        raise NotImplementedError()

    # -- volumes the hypervisor connects itself (no host connection) ----------------------
    def volume_connector(self, props):
        """The connector properties nova sends cinder (os-brick's ``props``), adjusted."""
        return props

    def connects_volume(self, connection_info):
        """True if the hypervisor connects this volume itself (e.g. QEMU's own iSCSI
        initiator) instead of os-brick on the host."""
        return False

    def connect_volume(self, guest, volume_id, connection_info):
        """The ``guest.record.volumes`` entry (JSON-able, no secrets in clear) of a volume
        ``connects_volume`` accepted; ``attach_disk``/``start`` then use it."""
        raise NotImplementedError()

    def volume_encryption(self, guest, context, volume_id, connection_info, encryption):
        """The ``encryption`` field (JSON-able, no key in clear) of the record entry of a
        volume with cinder's encryption metadata ``encryption``, or None when the host has
        nothing to decrypt; ``attach_disk``/``start`` then open it decrypted."""
        raise exception.VolumeEncryptionNotSupported(
            volume_type=connection_info.get("driver_volume_type"), volume_id=volume_id)
    # -- cold migration to another host (COLD_MIGRATION) ---------------------------------
    def disk_transfer(self, endpoint):
        """(address, X.509 directory or None for plain TCP) of this host serving
        (``"server"``) or fetching (``"client"``) an instance's disks;
        ``MigrationPreCheckError`` if it cannot."""
        raise NotImplementedError()

    # -- live migration (LIVE_MIGRATION; the flow: nova_common.migration) ----------------
    def migration_address(self):
        """The address other hosts reach this one's incoming migrations on
        (``MigrationPreCheckError`` if this host cannot receive one)."""
        raise NotImplementedError()

    def check_outgoing_migration(self, guest):
        """``MigrationPreCheckError`` if this host cannot send the guest (e.g. no
        credentials for the transport)."""
        raise NotImplementedError()

    def migration_drives(self, guest):
        """Ids of the guest's local disks a block migration copies."""
        raise NotImplementedError()

    def prepare_incoming(self, guest, address, drives):
        """Destination: start the guest's process waiting for a migration on
        ``address``, ``drives`` (new, empty) exported for the source to write; returns
        (migration port, disk export port or 0). Nothing left running on failure."""
        raise NotImplementedError()

    def wait_incoming(self, guest, must_start=False):
        """Destination: block until the incoming migration ends; when it completed,
        the guest runs here. Returns the final status; with ``must_start``,
        "not-started" when the source has not begun to send in the time it needs to
        get there (nova's wait for the ports, its own checks)."""
        raise NotImplementedError()

    def finish_incoming(self, guest):
        """Destination: the guest runs, nothing of the migration left (idempotent)."""
        raise NotImplementedError()

    def migrate(self, guest, address, port, export_port, drives, on_progress):
        """Source: copy ``drives`` and the RAM to the destination; returns when the
        guest runs there (this process stopped). ``on_progress(dict)`` gets nova's
        ``memory_*``/``disk_*`` counters. Raises ``MigrationError`` with the guest
        still running here."""
        raise NotImplementedError()

    def migration_aborted(self, guest):
        """Whether the guest's last outgoing migration ended by ``abort_migration``."""
        raise NotImplementedError()

    def abort_migration(self, guest):
        """Cancel the running outgoing migration (``NoActiveMigrationForInstance``)."""
        raise NotImplementedError()

    def force_complete_migration(self, guest):
        """Make the running outgoing migration converge (post-copy or a pause)."""
        raise NotImplementedError()
