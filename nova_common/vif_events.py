"""Waiting for Neutron's ``network-vif-plugged`` events, as nova's libvirt driver does.

The ports are plugged inside the ``with`` block; nova-compute collects the events of the
ports Neutron has not yet reported active, and the block's exit waits for them (for at
most ``[DEFAULT]vif_plugging_timeout``). The tap and its OVS row exist as soon as
``vifs.plug`` returns, so OVN or the OVS agent can wire the port before the hypervisor
process exists: the caller starts the guest after the block, and its CPU never runs on an
unwired port (libvirt has to start its guest paused instead, as it makes the tap itself).

Which paths wait, as in nova 34's libvirt driver (``_create_guest_with_network``):

- spawn and finish_revert_migration: the ports not yet active (:func:`expected`);
- hard reboot and power-on: none, unless ``[workarounds]
  wait_for_vif_plugged_event_during_hard_reboot`` names VNIC types; then every port of
  those types, which the caller unplugs first so that Neutron sees it go down and up
  again (:func:`on_hard_reboot`);
- resume and finish_migration: none (libvirt passes ``vifs_already_plugged``: the ports
  stayed plugged, or Neutron may never have seen them unplugged, so no event would come).
"""
import contextlib

from nova import exception
import nova.conf
from nova.network import model as network_model
from oslo_log import log as logging

CONF = nova.conf.CONF
LOG = logging.getLogger(__name__)


def expected(network_info):
    """The events to wait for: one per port Neutron has not reported active yet (ports
    whose state is unknown are taken as active, as nova does, so nothing stale blocks)."""
    return [("network-vif-plugged", vif["id"]) for vif in network_info or []
            if vif.get("active", True) is False
            and vif.get("vnic_type") != network_model.VNIC_TYPE_REMOTE_MANAGED]


def on_hard_reboot(network_info):
    """The events a hard reboot (or power-on) waits for: none by default; with
    ``[workarounds]wait_for_vif_plugged_event_during_hard_reboot`` set, one per port of
    the VNIC types it lists (or, when no port has those types, the ports not yet active,
    as libvirt falls back to)."""
    types = CONF.workarounds.wait_for_vif_plugged_event_during_hard_reboot
    if not types:
        return []
    return [("network-vif-plugged", vif["id"]) for vif in network_info or []
            if vif.get("vnic_type", network_model.VNIC_TYPE_NORMAL) in types] \
        or expected(network_info)


def _failed(event_name, instance):
    LOG.error("Neutron reported a failure on event %s", event_name, instance=instance)
    if CONF.vif_plugging_is_fatal:
        raise exception.VirtualInterfaceCreateException()


@contextlib.contextmanager
def plugging(virtapi, instance, network_info, power_on=True, events=None):
    """Plug inside this block; its exit waits for the ports' ``network-vif-plugged``
    (``events``, by default those of :func:`expected`).

    :raises VirtualInterfaceCreateException: Neutron reported a failure, or the events
        did not come in time, and ``[DEFAULT]vif_plugging_is_fatal`` is set (the caller
        undoes what it made, as after any failed spawn). Otherwise a warning is logged
        and the guest starts anyway.
    """
    timeout = CONF.vif_plugging_timeout
    if events is None:
        events = expected(network_info)
    events = list(events) if power_on and timeout else []
    if not events:
        yield
        return
    try:
        with virtapi.wait_for_instance_event(instance, events, timeout=timeout,
                                             error_callback=_failed):
            yield
    except exception.InstanceEventTimeout:
        if CONF.vif_plugging_is_fatal:
            LOG.error("Neutron did not report ports %s plugged within %ss",
                      [e[1] for e in events], timeout, instance=instance)
            raise exception.VirtualInterfaceCreateException()
        LOG.warning("Neutron did not report ports %s plugged within %ss; starting the "
                    "guest anyway (vif_plugging_is_fatal is off)",
                    [e[1] for e in events], timeout, instance=instance)
    if events:
        LOG.info("Neutron reported ports %s plugged", [e[1] for e in events],
                 instance=instance)
