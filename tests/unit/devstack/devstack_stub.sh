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
# devstack's iniset: set OPTION in SECTION of FILE (made if missing)
function iniset {
    python3 - "$@" <<'PY'
import configparser, sys
path, section, option, value = sys.argv[1:5]
c = configparser.RawConfigParser(strict=False)
c.optionxform = str
c.read(path)
if section != "DEFAULT" and not c.has_section(section):
    c.add_section(section)
c.set(section, option, value)
with open(path, "w") as f:
    c.write(f)
PY
}
