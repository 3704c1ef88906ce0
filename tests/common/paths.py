"""Where the project's test artifacts live."""
import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOLS = os.path.join(REPO, "tools")
# Built guest images and downloaded .debs; outside the clone so CI and developers keep them.
CACHE = os.environ.get("HCI_CACHE", "/var/cache/openstack-hci-drivers")
