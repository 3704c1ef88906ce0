"""The command lines the zfs_common privsep daemon agrees to run, checked there.

The privileged side trusts nothing the service sends: every argument vector is parsed
against an allow-list of commands, subcommands and flags (each flag with a checker for
its value), and every name, property and value goes through ``zfs_common.validation``
again. Anything else (an unknown flag, ``destroy -R``, a pool's root as a target, a name
that reads as an option, ``ssh`` or any other program) is refused with ``Refused``.
"""
import ipaddress
import re

from zfs_common import exception
from zfs_common import validation


class Refused(ValueError):
    """A command line the privileged side does not run."""


def _refuse(argv, why):
    raise Refused("refused by zfs_common privsep (%s): %r" % (why, argv))


def _choices(*allowed):
    allowed = frozenset(allowed)

    def check(value):
        items = value.split(",")
        if not value or not all(item in allowed for item in items):
            raise Refused("%r: expected a comma-separated subset of %s"
                          % (value, ",".join(sorted(allowed))))
    return check


def _digits(value):
    if not re.match(r"^[0-9]{1,20}$", value):
        raise Refused("%r is not a number" % (value,))


def _assignment(value):
    name, sep, val = value.partition("=")
    if not sep:
        raise Refused("%r is not property=value" % (value,))
    validation.property_name(name)
    if validation.property_value(name, val) != val:
        raise Refused("%r is not a canonical value" % (value,))


def _below_pool(name):
    """A dataset or snapshot that is not a pool's root dataset."""
    validation.dataset_or_snapshot(name)
    if "/" not in name.split("@")[0]:
        raise Refused("%r is a pool's root dataset" % (name,))


def _child_dataset(name):
    """A filesystem or volume below a pool's root dataset (no snapshot)."""
    validation.dataset(name)
    _below_pool(name)


def _positionals(*checkers, more=None):
    """Exactly ``checkers`` (one per argument), then any number of ``more``."""
    def check(args):
        if len(args) < len(checkers) or (more is None and len(args) > len(checkers)):
            raise Refused("expected %d argument(s), got %d" % (len(checkers), len(args)))
        for arg, checker in zip(args, list(checkers) + [more] * len(args), strict=False):
            checker(arg)
    return check


def _property_list(value):
    for name in value.split(","):
        validation.property_name(name)


def _rename_pair(args):
    _positionals(_below_pool, _below_pool)(args)
    if ("@" in args[0]) != ("@" in args[1]):
        raise Refused("rename between a snapshot and a dataset")


def _send_args(args):
    _positionals(validation.snapshot)(args)


def _udev_timeout(value):
    if not re.match(r"^--timeout=[0-9]{1,4}$", value):
        raise Refused("%r" % (value,))


def _zvol_link(value):
    prefix = "--exit-if-exists=/dev/zvol/"
    if not value.startswith(prefix):
        raise Refused("%r" % (value,))
    validation.dataset(value[len(prefix):])


_EXPORT_OPTION = re.compile(r"^(rw|ro|sync|async|root_squash|all_squash|no_subtree_check|"
                            r"subtree_check|secure|insecure|wdelay|no_wdelay|"
                            r"sec=[a-z0-9:]+|fsid=[0-9a-f-]{1,36})$")
_EXPORT_PATH = re.compile(r"^(/[A-Za-z0-9_.:-]+)+$")


def _export_options(value):
    if not all(_EXPORT_OPTION.match(opt) for opt in value.split(",")):
        raise Refused("export options %r" % (value,))


def _export_spec(value):
    """``client:path``: an IPv4 address or network, or a bracketed IPv6 one."""
    m = (re.match(r"^\[([0-9a-fA-F:]+)\](/[0-9]{1,3})?:(/.*)$", value)
         or re.match(r"^([0-9.]+)(/[0-9]{1,2})?:(/.*)$", value))
    if not m:
        raise Refused("export %r" % (value,))
    try:
        ipaddress.ip_network(m.group(1) + (m.group(2) or ""), strict=True)
    except ValueError:
        raise Refused("export client %r" % (value,))
    path = m.group(3)
    if not _EXPORT_PATH.match(path) or ".." in path.split("/"):
        raise Refused("export path %r" % (value,))


_PROPS = {"-o": _assignment}

# (command, subcommand) -> ({flag: None or checker of its value}, checker of the rest);
# a flag is given once (but -o may repeat), flags come before the other arguments
RULES = {
    ("zfs", "get"): ({"-H": None, "-p": None, "-r": None,
                      "-o": _choices("name", "property", "value", "source")},
                     _positionals(_property_list, validation.dataset_or_snapshot,
                                  more=validation.dataset_or_snapshot)),
    ("zfs", "list"): ({"-H": None, "-r": None, "-o": _choices("name", "origin"),
                       "-t": _choices("filesystem", "volume", "snapshot", "all"),
                       "-s": _choices("createtxg", "name"), "-d": _digits},
                      _positionals(validation.dataset_or_snapshot)),
    ("zfs", "create"): ({"-p": None, "-s": None, "-V": _digits, **_PROPS},
                        _positionals(_child_dataset)),
    ("zfs", "snapshot"): (_PROPS, _positionals(validation.snapshot)),
    ("zfs", "clone"): (_PROPS, _positionals(validation.snapshot, _child_dataset)),
    ("zfs", "set"): ({}, _positionals(_assignment, validation.dataset_or_snapshot)),
    ("zfs", "inherit"): ({}, _positionals(validation.property_name,
                                          validation.dataset_or_snapshot)),
    ("zfs", "promote"): ({}, _positionals(_child_dataset)),
    ("zfs", "rename"): ({}, _rename_pair),
    ("zfs", "rollback"): ({"-r": None}, _positionals(validation.snapshot)),
    ("zfs", "mount"): ({}, _positionals(validation.dataset)),
    ("zfs", "unmount"): ({"-f": None}, _positionals(validation.dataset)),
    ("zfs", "destroy"): ({"-r": None, "-d": None}, _positionals(_below_pool)),
    ("zfs", "send"): ({"-i": validation.snapshot, "-I": validation.snapshot}, _send_args),
    ("zfs", "receive"): ({"-F": None}, _positionals(_child_dataset)),
    ("exportfs", "-f"): ({}, _positionals()),
    ("exportfs", "-u"): ({}, _positionals(_export_spec)),
    ("exportfs", "-i"): ({"-o": _export_options}, _positionals(_export_spec)),
    # None: no flag parsing, the checkers see every argument
    ("udevadm", "settle"): (None, _positionals(_udev_timeout, _zvol_link)),
}


def check(argv):
    """Raise Refused unless ``argv`` is a command line the allow-list accepts."""
    if (not isinstance(argv, (list, tuple)) or len(argv) < 2
            or not all(isinstance(a, str) for a in argv)):
        _refuse(argv, "not a list of strings")
    rule = RULES.get((argv[0], argv[1]))
    if rule is None:
        _refuse(argv, "command or subcommand not allowed")
    flags, rest = rule
    args = list(argv[2:])
    seen = set()
    try:
        while flags is not None and args and args[0].startswith("-"):
            flag = args.pop(0)
            if flag not in flags or (flag in seen and flag != "-o"):
                _refuse(argv, "flag %r not allowed" % flag)
            seen.add(flag)
            if flags[flag] is not None:
                if not args:
                    _refuse(argv, "flag %r needs a value" % flag)
                flags[flag](args.pop(0))
        rest(args)
    except (Refused, exception.InvalidName, exception.InvalidValue) as e:
        if isinstance(e, Refused) and str(e).startswith("refused by"):
            raise
        _refuse(argv, str(e))


def check_pipe(producer, consumer):
    """A local pipeline may only be ``zfs send ... | zfs receive ...``."""
    check(producer)
    check(consumer)
    if list(producer[:2]) != ["zfs", "send"] or list(consumer[:2]) != ["zfs", "receive"]:
        _refuse([producer, consumer], "a pipe is zfs send into zfs receive")
