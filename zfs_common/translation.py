"""One place where ZFS layer errors become a service's exceptions.

A driver class decorated with ``translate_errors(translate)`` lets no
``zfs_common.exception.ZFSError`` escape any of its public methods: ``translate(error)``
gives the service exception (cinder's, manila's) raised instead, with the ZFS message.
Methods that map some errors to more specific exceptions themselves keep doing so; this is
the net under them.
"""
import functools
import inspect

from zfs_common import exception


def _wrapped(method, translate):
    @functools.wraps(method)
    def call(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except exception.ZFSError as e:
            raise translate(e) from e
    return call


def translate_errors(translate, also=()):
    """Class decorator: ZFSError from any public method raises ``translate(error)``.

    ``also`` names private methods the service calls through its base class (a stats
    update) that get the same treatment.
    """
    def decorate(cls):
        for name, attr in list(vars(cls).items()):
            if (not name.startswith("_") or name in also) and inspect.isfunction(attr):
                setattr(cls, name, _wrapped(attr, translate))
        return cls
    return decorate
