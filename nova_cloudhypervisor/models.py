"""Typed request and response bodies of the Cloud Hypervisor REST API (the ones this driver
uses), named as the schemas of the official OpenAPI spec (``components/schemas``).

Each model is a dataclass whose fields are properties of the schema named by its
``SCHEMA``; ``to_json()`` leaves out unset (``None``) fields, so the server applies its own
defaults, and ``from_json()`` ignores keys it does not know (the server adds fields over
releases). ``tests/unit/nova_cloudhypervisor/test_spec.py`` fails if a field, type or enum
value here is not in the spec.
"""
import dataclasses
import types
import typing
from typing import Literal

ImageType = Literal["FixedVhd", "Qcow2", "Raw", "Vhdx"]
ConsoleMode = Literal["Off", "Pty", "Tty", "File", "Socket", "Null"]
VmState = Literal["Created", "Running", "Shutdown", "Paused", "BreakPoint"]
MemoryRestoreMode = Literal["Copy", "OnDemand"]


class Model:
    SCHEMA = None
    # fields the server accepts although the spec does not list them (BEHAVIOUR.md §2)
    NOT_IN_SPEC = ()

    def to_json(self):
        out = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is None:
                continue
            out[field.name] = _dump(value)
        return out

    @classmethod
    def from_json(cls, data):
        hints = typing.get_type_hints(cls)
        kwargs = {}
        for field in dataclasses.fields(cls):
            if field.name in data and data[field.name] is not None:
                kwargs[field.name] = _load(hints[field.name], data[field.name])
        return cls(**kwargs)


def _dump(value):
    if isinstance(value, Model):
        return value.to_json()
    if isinstance(value, list):
        return [_dump(v) for v in value]
    return value


def _unwrap(hint):
    """``X | None`` -> ``X``."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


def _load(hint, value):
    hint = _unwrap(hint)
    if typing.get_origin(hint) is list:
        (item,) = typing.get_args(hint)
        return [_load(item, v) for v in value]
    if isinstance(hint, type) and issubclass(hint, Model):
        return hint.from_json(value)
    return value


def model(schema, not_in_spec=()):
    def wrap(cls):
        cls = dataclasses.dataclass(cls)
        cls.SCHEMA = schema
        cls.NOT_IN_SPEC = tuple(not_in_spec)
        return cls
    return wrap


@model("PayloadConfig")
class PayloadConfig(Model):
    firmware: str | None = None
    kernel: str | None = None
    cmdline: str | None = None
    initramfs: str | None = None


@model("CpusConfig")
class CpusConfig(Model):
    boot_vcpus: int = 1
    max_vcpus: int = 1


@model("MemoryConfig")
class MemoryConfig(Model):
    size: int = 512 * 1024 ** 2          # bytes
    shared: bool | None = None
    hugepages: bool | None = None


@model("DiskConfig")
class DiskConfig(Model):
    path: str | None = None
    readonly: bool | None = None
    direct: bool | None = None
    id: str | None = None
    serial: str | None = None
    image_type: ImageType | None = None
    backing_files: bool | None = None
    num_queues: int | None = None


@model("NetConfig")
class NetConfig(Model):
    tap: str | None = None
    mac: str | None = None
    mtu: int | None = None
    id: str | None = None
    num_queues: int | None = None


@model("RngConfig")
class RngConfig(Model):
    src: str = "/dev/urandom"


@model("SerialConfig")
class SerialConfig(Model):
    mode: ConsoleMode = "Null"
    file: str | None = None
    socket: str | None = None


@model("ConsoleConfig")
class ConsoleConfig(Model):
    mode: ConsoleMode = "Off"
    file: str | None = None


@model("PlatformConfig")
class PlatformConfig(Model):
    system_uuid: str | None = None
    system_serial_number: str | None = None


@model("VmConfig")
class VmConfig(Model):
    payload: PayloadConfig = dataclasses.field(default_factory=PayloadConfig)
    cpus: CpusConfig | None = None
    memory: MemoryConfig | None = None
    disks: list[DiskConfig] | None = None
    net: list[NetConfig] | None = None
    rng: RngConfig | None = None
    serial: SerialConfig | None = None
    console: ConsoleConfig | None = None
    platform: PlatformConfig | None = None
    pvpanic: bool | None = None
    watchdog: bool | None = None


@model("VmInfo")
class VmInfo(Model):
    config: VmConfig
    state: VmState
    memory_actual_size: int | None = None
    device_tree: dict | None = None


@model("VmmPingResponse")
class VmmPingResponse(Model):
    version: str
    build_version: str | None = None
    pid: int | None = None
    features: list[str] | None = None


@model("PciDeviceInfo")
class PciDeviceInfo(Model):
    id: str
    bdf: str


@model("VmResize")
class VmResize(Model):
    desired_vcpus: int | None = None
    desired_ram: int | None = None
    desired_balloon: int | None = None


@model("VmResizeDisk")
class VmResizeDisk(Model):
    id: str
    desired_size: int


@model("VmRemoveDevice")
class VmRemoveDevice(Model):
    id: str


@model("VmSnapshotConfig")
class VmSnapshotConfig(Model):
    destination_url: str


@dataclasses.dataclass
class RestoredNetConfig(Model):
    """One entry of ``RestoreConfig.net_fds``: the NIC ``id`` and how many fds follow."""
    id: str
    num_fds: int


@model("RestoreConfig", not_in_spec=("net_fds",))
class RestoreConfig(Model):
    source_url: str
    prefault: bool | None = None
    memory_restore_mode: MemoryRestoreMode | None = None
    resume: bool | None = None
    # accepted by the server (vmm/src/api/mod.rs) but not described in the spec
    net_fds: list[RestoredNetConfig] | None = None
