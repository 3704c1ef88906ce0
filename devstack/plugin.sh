#!/bin/bash
# shellcheck source-path=SCRIPTDIR
# shellcheck shell=bash
# devstack plugin of openstack-hci-drivers. Enable with:
#   enable_plugin openstack-hci-drivers <git url> [ref]
#   CINDER_ENABLED_BACKENDS=zfs:zfs          # a cinder backend of type zfs (lib/hci)
#   HCI_ZFS_SSH_HOST=...                      # the ZFS host, if not this one
# Phases:
#   stack install      installs the distribution into devstack's Python environment
#   stack post-config  compute_driver = qmp.QMPDriver for n-cpu, the manila backend for
#                      m-shr, this project's rootwrap filters and sudoers rules
#   stack test-config  tempest's feature flags from what the drivers support
#   clean              removes the filters and sudoers rules
# The configuration steps are the functions of devstack/lib/hci, which the all-in-one
# cloud (tools/aio/aio.sh, tools/demo.sh) calls too.

HCI_DIR=${HCI_DIR:-$DEST/openstack-hci-drivers}
# shellcheck source=lib/hci
source "$HCI_DIR/devstack/lib/hci"

function install_hci_drivers {
    setup_develop "$HCI_DIR"
}

function hci_rootwrap_path {
    # where devstack put <service>-rootwrap (its global venv, or /usr/local/bin)
    local service=$1
    local bindir
    bindir=$(get_python_exec_prefix)
    if [[ -x "$bindir/$service-rootwrap" ]]; then
        echo "$bindir/$service-rootwrap"
    else
        command -v "$service-rootwrap"
    fi
}

function configure_hci_privsep {
    local service
    for service in nova cinder manila; do
        if [[ $service == nova ]] && ! is_service_enabled n-cpu; then
            continue
        fi
        if [[ $service == cinder ]] && ! is_service_enabled c-vol; then
            continue
        fi
        if [[ $service == manila ]] && ! is_service_enabled m-shr; then
            continue
        fi
        hci_install_privsep "$service" "$(hci_rootwrap_path "$service")"
    done
}

function configure_hci_drivers {
    if is_service_enabled n-cpu; then
        hci_configure_nova_compute "$NOVA_CONF"
        if [[ -n ${NOVA_CPU_CONF:-} && $NOVA_CPU_CONF != "$NOVA_CONF" ]]; then
            hci_configure_nova_compute "$NOVA_CPU_CONF"
        fi
    fi
    if is_service_enabled m-shr; then
        iniset "$MANILA_CONF" DEFAULT enabled_share_backends "$HCI_MANILA_BACKEND"
        hci_configure_manila_backend "$MANILA_CONF" "$HCI_MANILA_BACKEND"
    fi
}

function cleanup_hci_privsep {
    local service
    for service in nova cinder manila; do
        hci_remove_privsep "$service"
    done
}

if [[ "$1" == "stack" && "$2" == "install" ]]; then
    echo_summary "Installing openstack-hci-drivers"
    install_hci_drivers
elif [[ "$1" == "stack" && "$2" == "post-config" ]]; then
    echo_summary "Configuring the openstack-hci-drivers drivers, rootwrap filters, sudoers"
    configure_hci_drivers
    configure_hci_privsep
elif [[ "$1" == "stack" && "$2" == "test-config" ]]; then
    if is_service_enabled tempest; then
        echo_summary "Setting tempest's feature flags for the openstack-hci-drivers drivers"
        hci_configure_tempest "$TEMPEST_CONFIG"
    fi
fi

if [[ "$1" == "clean" ]]; then
    cleanup_hci_privsep
fi
