"""NFS exports of share datasets: manila access rules to exports, two ways.

``ExportfsHelper`` keeps one file per share in /etc/exports.d (so exports survive an NFS
server restart) and changes the kernel export table client by client with ``exportfs``,
so clients whose rule did not change never lose access. ``SharenfsHelper`` writes the
dataset's ``sharenfs`` property, one atomic update per share; ZFS's sharenfs parser splits
IPv6 addresses at their colons (measured on OpenZFS 2.3: a bare IPv6 entry even became an
export to the world), so that helper refuses IPv6 rules.
"""
import dataclasses
import ipaddress
import json

from oslo_log import log as logging

from zfs_common import exception as zfs_exc

LOG = logging.getLogger(__name__)

STATE_PROPERTY = "org.openstack:nfs_clients"
EXPORTS_DIR = "/etc/exports.d"


class RuleError(Exception):
    """An access rule this backend cannot apply."""


@dataclasses.dataclass(frozen=True, order=True)
class Client:
    """One export: an address or network and its access level."""

    network: str         # normalised: "10.0.0.1", "10.0.0.0/24", "fd00::1", "fd00::/64"
    level: str           # "rw" or "ro"

    @property
    def version(self):
        return ipaddress.ip_network(self.network).version

    def exportfs_spec(self, path):
        """``client:path`` for the exportfs command line (IPv6 in brackets)."""
        if self.version == 6:
            addr, _, prefix = self.network.partition("/")
            return "[%s]%s:%s" % (addr, "/" + prefix if prefix else "", path)
        return "%s:%s" % (self.network, path)


def client_from_rule(rule):
    """The Client for a manila access rule, or RuleError."""
    if rule["access_type"] != "ip":
        raise RuleError("only 'ip' access rules are supported, not %r" % rule["access_type"])
    if rule["access_level"] not in ("rw", "ro"):
        raise RuleError("access level must be rw or ro, not %r" % rule["access_level"])
    try:
        net = ipaddress.ip_network(str(rule["access_to"]).strip(), strict=True)
    except ValueError as e:
        raise RuleError("invalid address %r: %s" % (rule["access_to"], e))
    single = net.num_addresses == 1
    return Client(str(net.network_address) if single else str(net), rule["access_level"])


def clients_from_rules(rules):
    """({network: Client}, {access_id: reason}) for a list of manila access rules.

    For one network given twice the read-write rule wins.
    """
    clients, errors = {}, {}
    for rule in rules:
        try:
            client = client_from_rule(rule)
        except RuleError as e:
            errors[rule["access_id"]] = str(e)
            continue
        known = clients.get(client.network)
        if known is None or client.level == "rw":
            clients[client.network] = client
    return clients, errors


class ExportfsHelper:
    """Exports through ``exportfs`` and a file per share in /etc/exports.d."""

    supports_ipv6 = True

    def __init__(self, client, options):
        self.zfs = client
        self.options = list(options)

    def _opts(self, client):
        return ",".join([client.level, "root_squash"] + self.options)

    def _exports_file(self, dataset):
        return "%s/zfs-manila-%s.exports" % (EXPORTS_DIR, dataset.replace("/", "_"))

    def _exportfs(self, *args):
        res = self.zfs.executor.run(["exportfs", *args], timeout=self.zfs.timeout)
        if res.exit_code != 0 and "Could not find" not in res.stderr:
            raise zfs_exc.ZFSError("exportfs %s failed: %s" % (" ".join(args), res.stderr),
                                   cmd=["exportfs", *args], stderr=res.stderr,
                                   exit_code=res.exit_code)

    def _current(self, dataset, state=None):
        value = self.zfs.get_one(dataset, STATE_PROPERTY) if state is None else state
        if value in ("-", ""):
            return {}
        return {net: Client(net, level) for net, level in json.loads(value).items()}

    def apply(self, dataset, path, clients, state=None):
        """Make ``clients`` ({network: Client}) the exact export list of ``path``.

        ``state`` is the dataset's STATE_PROPERTY value when the caller has read it.
        """
        current = self._current(dataset, state)
        if not current and not clients:
            # nothing exported, nothing to export: only make sure no file is left over
            self.zfs.executor.remove_file(self._exports_file(dataset))
            return
        for net, client in sorted(clients.items()):
            if current.get(net) != client:
                self._exportfs("-i", "-o", self._opts(client), client.exportfs_spec(path))
        for net, client in sorted(current.items()):
            if net not in clients:
                self._exportfs("-u", client.exportfs_spec(path))
        lines = ["%s %s(%s)" % (path, c.network, self._opts(c))
                 for c in sorted(clients.values())]
        if lines:
            self.zfs.executor.write_file(self._exports_file(dataset),
                                         "# managed by zfs_manila\n" + "\n".join(lines) + "\n")
        else:
            self.zfs.executor.remove_file(self._exports_file(dataset))
        self.zfs.set(dataset, {STATE_PROPERTY: json.dumps(
            {net: c.level for net, c in sorted(clients.items())}, separators=(",", ":"))})

    def remove(self, dataset, path, state=None):
        self.apply(dataset, path, {}, state)

    def release(self):
        """Flush the kernel's export caches: nfsd can hold an unexported dataset busy."""
        self._exportfs("-f")

    def exported(self, dataset):
        return self._current(dataset)


class SharenfsHelper:
    """Exports through the dataset's ``sharenfs`` property (IPv4 only)."""

    supports_ipv6 = False

    def __init__(self, client, options):
        self.zfs = client
        self.options = list(options)

    def sharenfs_value(self, clients):
        if not clients:
            return "off"
        groups = {"rw": [], "ro": []}
        for client in sorted(clients.values()):
            if client.version != 4:
                raise RuleError("IPv6 clients cannot be exported through sharenfs")
            groups[client.level].append("@" + client.network if "/" in client.network
                                        else client.network)
        parts = ["%s=%s" % (level, ":".join(hosts)) for level, hosts in groups.items()
                 if hosts]
        return ",".join(parts + ["root_squash"] + self.options)

    def apply(self, dataset, path, clients):
        self.zfs.set(dataset, {"sharenfs": self.sharenfs_value(clients)})

    def remove(self, dataset, path, state=None):
        self.zfs.set(dataset, {"sharenfs": "off"})

    def release(self):
        """Flush the kernel's export caches: nfsd can hold an unexported dataset busy."""
        ExportfsHelper(self.zfs, self.options).release()

    def exported(self, dataset):
        value = self.zfs.get_one(dataset, "sharenfs")
        clients = {}
        for part in value.split(","):
            level, _, hosts = part.partition("=")
            if level in ("rw", "ro"):
                for host in hosts.split(":"):
                    net = host.lstrip("@")
                    clients[net] = Client(net, level)
        return clients


HELPERS = {"exportfs": ExportfsHelper, "sharenfs": SharenfsHelper}
