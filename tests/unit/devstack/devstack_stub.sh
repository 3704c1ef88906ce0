# shellcheck shell=bash
# A stand-in for the part of devstack's function library that devstack/plugin.sh and
# devstack/lib/hci use (devstack itself cannot be fetched on these machines). Every call
# that would change the machine is recorded in $STUB_LOG instead.
function define_plugin { echo "define_plugin $*" >>"$STUB_LOG"; }
function echo_summary { echo "summary $*" >>"$STUB_LOG"; }
function setup_develop { echo "setup_develop $*" >>"$STUB_LOG"; }
function get_python_exec_prefix { echo "$STUB_BIN"; }
function is_service_enabled {
    local s
    for s in "$@"; do
        [[ ,$ENABLED_SERVICES, == *,$s,* ]] && return 0
    done
    return 1
}
function sudo { echo "sudo $*" >>"$STUB_LOG"; }
# devstack's iniset: set OPTION in SECTION of FILE (made if missing); lib/hci has the
# same for callers outside devstack (bash finds it when iniset is called: lib/hci is
# sourced by then)
function iniset { hci_iniset "$@"; }
