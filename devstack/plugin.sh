#!/bin/bash
# devstack plugin of openstack-hci-drivers: installs the distribution into devstack's
# Python environment and, for the storage services that run (c-vol, m-shr), this
# project's rootwrap filters and sudoers rule for the zfs_common privsep daemon.
# Enable with:  enable_plugin openstack-hci-drivers <git url> [ref]
# Configuring the drivers themselves (volume_driver / share_driver lines) stays with
# local.conf's [[post-config|...]] sections (README, "Deploying").

HCI_DIR=${HCI_DIR:-$DEST/openstack-hci-drivers}

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
        sudo "$HCI_DIR/tools/install-privsep-config.sh" "$service" \
            "$(hci_rootwrap_path "$service")"
    done
}

function cleanup_hci_privsep {
    local service
    for service in nova cinder manila; do
        sudo "$HCI_DIR/tools/install-privsep-config.sh" --remove "$service"
    done
}

if [[ "$1" == "stack" && "$2" == "install" ]]; then
    echo_summary "Installing openstack-hci-drivers"
    install_hci_drivers
elif [[ "$1" == "stack" && "$2" == "post-config" ]]; then
    echo_summary "Installing the openstack-hci-drivers rootwrap filters and sudoers rules"
    configure_hci_privsep
fi

if [[ "$1" == "clean" ]]; then
    cleanup_hci_privsep
fi
