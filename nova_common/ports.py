"""Port ranges of console options (``[serial_console]port_range``)."""
from nova import exception
from nova.i18n import _


def parse_range(text):
    """``"10000:20000"`` -> ``range(10000, 20001)``."""
    try:
        low, high = (int(p) for p in text.split(":"))
    except ValueError:
        raise exception.InvalidInput(reason=_("bad port range %r (want 'low:high')") % text)
    if not 0 < low <= high < 65536:
        raise exception.InvalidInput(reason=_("bad port range %r") % text)
    return range(low, high + 1)
