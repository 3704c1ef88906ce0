#!/bin/bash
# An all-in-one OpenStack 2026.2 cloud on this machine with this project's drivers, without
# devstack or systemd: keystone, glance, placement, nova (compute on qmp.QMPDriver),
# neutron ML2/OVN (Debian OVN, userspace Open vSwitch), cinder-volume on zfs_cinder and
# manila-share on zfs_manila (both on the OpenZFS test guest over SSH), MariaDB, RabbitMQ.
#
#   tools/aio/aio.sh up       install what is missing, initialise once, start (default)
#   tools/aio/aio.sh start    start everything (state kept)
#   tools/aio/aio.sh stop     stop everything (state kept; servers stay defined)
#   tools/aio/aio.sh status   what runs
#   tools/aio/aio.sh restart nova-compute
#                             restart nova-compute as a service manager would (SIGTERM to
#                             its process group, started again as start does); the guests
#                             run on (they are not its children)
#   tools/aio/aio.sh destroy  stop and delete all state (users, /etc files, state dir)
#
# State in $HCI_AIO (default /var/lib/openstack-hci-aio), logs in $HCI_AIO/logs, the
# services' configuration in /etc/<service> (where the shipped sudoers rules expect it).
# OpenStack services run as the users keystone, glance, placement, nova, neutron, cinder
# and manila; privileged work goes through sudo + rootwrap + this project's filters.
set -Eeuo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
HCI_DIR=$(cd "$HERE/../.." && pwd)
export HCI_CACHE=${HCI_CACHE:-/var/cache/openstack-hci-drivers}
S=${HCI_AIO:-/var/lib/openstack-hci-aio}
V=$S/venv
TV=$S/tempest-venv
LOGS=$S/logs
RUN=$S/run
P=${HCI_AIO_PORT_BASE:-42000}
PORT_KEYSTONE=$P PORT_PLACEMENT=$((P + 1)) PORT_GLANCE=$((P + 2)) PORT_NOVA=$((P + 3))
PORT_CINDER=$((P + 4)) PORT_NEUTRON=$((P + 5)) PORT_MANILA=$((P + 6))
PORT_MYSQL=$((P + 7)) PORT_RABBIT=$((P + 8)) PORT_OVNNB=$((P + 9)) PORT_OVNSB=$((P + 10))
PORT_OVSDB=$((P + 11)) PORT_ZFS_SSH=$((P + 12)) PORT_EPMD=$((P + 13)) PORT_ZFS_ISCSI=3260
ADMIN_PASS=${HCI_AIO_ADMIN_PASS:-hci-admin}
SVC_PASS=${HCI_AIO_SERVICE_PASS:-hci-service}
DB_PASS=hci-db RABBIT_PASS=hci-rabbit
HOSTNAME_AIO=aio
USERS="keystone glance placement nova neutron cinder manila"
AUTH=http://127.0.0.1:$PORT_KEYSTONE/v3
T0=$(date +%s)

step() { printf '[%4ds] %s\n' $(($(date +%s) - T0)) "$*"; }
die() { echo "ERROR: $*" >&2; exit 1; }
# no silent exit: any failing command names itself, where it failed and where the logs are
trap 'echo "ERROR: \"$BASH_COMMAND\" failed (exit $?) at ${BASH_SOURCE[0]}:$LINENO in ${FUNCNAME[0]:-main}; logs: $LOGS" >&2' ERR
export PATH=$V/bin:$PATH
logged() {   # logged LOGNAME CMD...: output to $LOGS/setup-LOGNAME.log, tail on failure
    local log=$LOGS/setup-$1.log; shift
    if ! "$@" >>"$log" 2>&1; then
        tail -n 20 "$log" >&2
        die "failed: $* (log: $log)"
    fi
}

export HCI_ZFS_SSH_HOST=127.0.0.1 HCI_ZFS_SSH_PORT=$PORT_ZFS_SSH
export HCI_ZFS_VOLUME_ROOT=aio/cinder HCI_ZFS_SHARE_ROOT=aio/manila
export HCI_ZFS_SSH_KNOWN_HOSTS=/dev/null
# shellcheck source=devstack/lib/hci
. "$HCI_DIR/devstack/lib/hci"
# devstack's iniset for the shared library: its own (lib/hci), with the services' Python
iniset() { HCI_PYTHON=$V/bin/python hci_iniset "$@"; }

# ---------------------------------------------------------------------------- install
install_all() {
    mkdir -p "$S" "$LOGS" "$RUN"
    chmod 0755 "$S"
    # Debian's Python: the services' users must reach the interpreter of their venv
    if ! command -v mariadbd >/dev/null || ! [ -x /usr/bin/python3.11 ] || ! [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] \
            || ! [ -e /usr/lib/x86_64-linux-gnu/qemu/block-iscsi.so ]; then
        step "installing Debian packages (log: $LOGS/setup-apt.log)"
        logged apt env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
            --no-install-recommends mariadb-server rabbitmq-server ovn-central ovn-host \
            openvswitch-switch qemu-block-extra qemu-utils sudo python3.11-venv python3.11-dev
    fi
    if [ ! -x "$V/bin/nova-compute" ] || [ "$(readlink -f "$V/bin/python3")" != /usr/bin/python3.11 ]; then
        rm -rf "$V"
        step "installing the 2026.2 services into $V (log: $LOGS/setup-pip.log)"
        logged pip /usr/bin/python3.11 -m venv "$V"
        logged pip "$V/bin/pip" install -U pip setuptools wheel
        logged pip "$V/bin/pip" install -c "$HERE/constraints-2026.2.txt" \
            keystone glance openstack-placement nova cinder manila neutron \
            python-openstackclient python-manilaclient uWSGI PyMySQL
    fi
    step "installing openstack-hci-drivers into $V"
    logged pip "$V/bin/pip" install -c "$HERE/constraints-2026.2.txt" "${HCI_DIR}[nova,cinder,manila]"
    chmod -R a+rX "$V"
}

install_tempest() {
    if [ ! -x "$TV/bin/tempest" ] || [ "$(readlink -f "$TV/bin/python3")" != /usr/bin/python3.11 ]; then
        rm -rf "$TV"
        step "installing tempest and its plugins into $TV (log: $LOGS/setup-pip.log)"
        logged pip /usr/bin/python3.11 -m venv "$TV"
        logged pip "$TV/bin/pip" install -U pip
        logged pip "$TV/bin/pip" install -c "$HERE/constraints-tempest.txt" \
            tempest cinder-tempest-plugin manila-tempest-plugin
    fi
}

# ---------------------------------------------------------------------------- users, /etc
make_users() {
    local u
    for u in $USERS; do
        id "$u" >/dev/null 2>&1 || useradd --system --user-group --no-create-home \
            --home-dir "$S/home/$u" --shell /usr/sbin/nologin \
            --comment "openstack-hci-drivers all-in-one" "$u"
        install -d -o "$u" -g "$u" -m 0750 "$S/home/$u" "$S/data/$u" "$S/data/$u/lock"
        install -d -o root -g "$u" -m 0750 "/etc/$u"
    done
    # the guests' QEMU and supervisor run under uids of their own: they reach their
    # instance directory (0700 + ACL for that uid) through nova's state directory
    chmod 0711 "$S/data/nova"
    install -d -m 0755 "$LOGS"
    for u in $USERS; do
        install -d -o "$u" -g "$u" -m 0755 "$LOGS/$u"
    done
    # rootwrap.conf of the three services whose drivers use privsep, with the venv's bin
    local svc
    for svc in nova cinder manila; do
        install -d -m 0755 "/etc/$svc/rootwrap.d"
        sed -e "s|^filters_path.*|filters_path = /etc/$svc/rootwrap.d|" \
            -e "s|^exec_dirs *= *|exec_dirs = $V/bin,|" \
            "$V/etc/$svc/rootwrap.conf" >"/etc/$svc/rootwrap.conf"
        ln -sf "$V/bin/$svc-rootwrap" "/usr/local/bin/$svc-rootwrap"
        hci_install_privsep "$svc" "/usr/local/bin/$svc-rootwrap"
    done
    # nova_common asks os-brick for the host's connector properties (get_volume_connector),
    # which starts os-brick's privsep daemon; the shipped nova sudoers rule does not
    # admit it (a packaged nova's "nova-rootwrap /etc/nova/rootwrap.conf *" does): this
    # cloud admits that one context more, in a file of its own. cinder-volume's own image
    # handling (volumes from images, boot from volume: cinder's privsep context and
    # "qemu-img info/convert" through cinder-rootwrap) needs what a packaged cinder ships
    # and the project's rule does not: cinder's volume.filters and its general rule
    # "cinder-rootwrap /etc/cinder/rootwrap.conf *".
    install -m 0644 "$V/etc/cinder/rootwrap.d/volume.filters" /etc/cinder/rootwrap.d/volume.filters
    local brick=/etc/sudoers.d/openstack-hci-aio-os-brick
    printf '%s\n' "# tools/aio/aio.sh: os-brick's privsep daemon for nova-compute; cinder-rootwrap as a packaged cinder has it (removed by destroy)" \
        "nova ALL = (root) NOPASSWD: /usr/local/bin/nova-rootwrap ^/etc/nova/rootwrap\\.conf privsep-helper( --config-file /etc/nova(/[A-Za-z0-9_-][A-Za-z0-9_.-]*)+){0,2} --privsep_context os_brick\\.privileged\\.default --privsep_sock_path /tmp/[A-Za-z0-9_-]+/privsep\\.sock\$" \
        "cinder ALL = (root) NOPASSWD: /usr/local/bin/cinder-rootwrap /etc/cinder/rootwrap.conf *" \
        >"$brick.new"
    chmod 0440 "$brick.new"
    visudo -cqf "$brick.new" >/dev/null || die "sudoers rule $brick.new refused by visudo"
    mv "$brick.new" "$brick"
    # nova-compute (as nova) opens /dev/net/tun for the guests' taps
    [ ! -c /dev/net/tun ] || chmod 0666 /dev/net/tun
}

# the secrets go to files readable by the service's group only
write_conf() {   # write_conf SERVICE FILE < content
    local svc=$1 file=$2
    cat >"$file"
    chown "root:$svc" "$file"
    chmod 0640 "$file"
}

authtoken() {   # authtoken USER: [keystone_authtoken] for a service user
    cat <<EOF
[keystone_authtoken]
www_authenticate_uri = $AUTH
auth_url = $AUTH
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = $1
password = $SVC_PASS
memcached_servers =
service_token_roles_required = true
EOF
}

ksauth() {   # ksauth SECTION USER: a keystoneauth password section
    cat <<EOF
[$1]
auth_url = $AUTH
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = $2
password = $SVC_PASS
region_name = RegionOne
EOF
}

db() { echo "mysql+pymysql://os:$DB_PASS@127.0.0.1:$PORT_MYSQL/$1?charset=utf8"; }
RABBIT_URL="rabbit://openstack:$RABBIT_PASS@127.0.0.1:$PORT_RABBIT/"

write_configs() {
    local d=$S/data
    write_conf keystone /etc/keystone/keystone.conf <<EOF
[DEFAULT]
log_file = $LOGS/keystone/keystone.log
[database]
connection = $(db keystone)
[token]
provider = fernet
[fernet_tokens]
key_repository = $d/keystone/fernet-keys
[fernet_receipts]
key_repository = $d/keystone/fernet-keys
[credential]
key_repository = $d/keystone/credential-keys
EOF
    write_conf placement /etc/placement/placement.conf <<EOF
[DEFAULT]
log_file = $LOGS/placement/placement-api.log
[placement_database]
connection = $(db placement)
[api]
auth_strategy = keystone
$(authtoken placement)
EOF
    cp "$V/etc/glance/glance-api-paste.ini" /etc/glance/glance-api-paste.ini
    write_conf glance /etc/glance/glance-api.conf <<EOF
[DEFAULT]
log_file = $LOGS/glance/glance-api.log
enabled_backends = fs:file
workers = 1
image_cache_dir = $d/glance/cache
public_endpoint = http://127.0.0.1:$PORT_GLANCE
worker_self_reference_url = http://127.0.0.1:$PORT_GLANCE
[database]
connection = $(db glance)
[glance_store]
default_backend = fs
[fs]
filesystem_store_datadir = $d/glance/images
[os_glance_staging_store]
filesystem_store_datadir = $d/glance/staging
[os_glance_tasks_store]
filesystem_store_datadir = $d/glance/tasks
[paste_deploy]
flavor = keystone
[oslo_concurrency]
lock_path = $d/glance/lock
$(authtoken glance)
EOF
    cp "$V/etc/neutron/api-paste.ini" /etc/neutron/api-paste.ini
    install -d -o root -g neutron -m 0750 /etc/neutron/plugins/ml2
    write_conf neutron /etc/neutron/neutron.conf <<EOF
[DEFAULT]
core_plugin = ml2
service_plugins = ovn-router
auth_strategy = keystone
transport_url = $RABBIT_URL
state_path = $d/neutron
api_paste_config = /etc/neutron/api-paste.ini
log_dir = $LOGS/neutron
rpc_workers = 0
rpc_state_report_workers = 0
api_workers = 1
[database]
connection = $(db neutron)
[oslo_concurrency]
lock_path = $d/neutron/lock
$(authtoken neutron)
$(ksauth nova nova)
EOF
    write_conf neutron /etc/neutron/plugins/ml2/ml2_conf.ini <<EOF
[ml2]
type_drivers = local,flat,geneve
tenant_network_types = geneve
mechanism_drivers = ovn
extension_drivers = port_security
overlay_ip_version = 4
[ml2_type_geneve]
vni_ranges = 1:65536
max_header_size = 38
[ml2_type_flat]
flat_networks = public
[securitygroup]
enable_security_group = true
[ovn]
ovn_nb_connection = tcp:127.0.0.1:$PORT_OVNNB
ovn_sb_connection = tcp:127.0.0.1:$PORT_OVNSB
ovn_l3_scheduler = leastloaded
ovn_metadata_enabled = false
enable_distributed_floating_ip = false
EOF
    cp "$V/etc/nova/api-paste.ini" /etc/nova/api-paste.ini
    write_conf nova /etc/nova/nova.conf <<EOF
[DEFAULT]
transport_url = $RABBIT_URL
my_ip = 127.0.0.1
host = $HOSTNAME_AIO
state_path = $d/nova
instances_path = $d/nova/instances
# stop waits this long for a guest's clean shutdown (the test guest ignores ACPI)
shutdown_timeout = 10
log_dir = $LOGS/nova
periodic_fuzzy_delay = 0
rootwrap_config = /etc/nova/rootwrap.conf
allow_resize_to_same_host = true
[api]
auth_strategy = keystone
[wsgi]
api_paste_config = /etc/nova/api-paste.ini
[api_database]
connection = $(db nova_api)
[database]
connection = $(db nova_cell1)
[conductor]
workers = 1
[scheduler]
workers = 1
discover_hosts_in_cells_interval = 2
[oslo_concurrency]
lock_path = $d/nova/lock
[vnc]
enabled = false
[os_vif_ovs]
ovsdb_connection = tcp:127.0.0.1:$PORT_OVSDB
[oslo_messaging_notifications]
driver = noop
$(authtoken nova)
$(ksauth service_user nova)
send_service_user_token = true
$(ksauth placement placement)
$(ksauth neutron neutron)
$(ksauth cinder cinder)
[glance]
region_name = RegionOne
EOF
    hci_configure_nova_compute /etc/nova/nova.conf
    write_conf nova /etc/nova/nova-api.conf <<EOF
[DEFAULT]
log_file = $LOGS/nova/nova-api.log
EOF
    cp "$V/etc/cinder/api-paste.ini" /etc/cinder/api-paste.ini
    cp "$V/etc/cinder/resource_filters.json" /etc/cinder/resource_filters.json
    write_conf cinder /etc/cinder/cinder.conf <<EOF
[DEFAULT]
transport_url = $RABBIT_URL
host = $HOSTNAME_AIO
state_path = $d/cinder
log_dir = $LOGS/cinder
auth_strategy = keystone
api_paste_config = /etc/cinder/api-paste.ini
resource_query_filters_file = /etc/cinder/resource_filters.json
rootwrap_config = /etc/cinder/rootwrap.conf
enabled_backends = zfs
default_volume_type = zfs
osapi_volume_workers = 1
glance_api_servers = http://127.0.0.1:$PORT_GLANCE
[database]
connection = $(db cinder)
[oslo_concurrency]
lock_path = $d/cinder/lock
[oslo_messaging_notifications]
driver = noop
$(authtoken cinder)
$(ksauth nova nova)
EOF
    CINDER_CONF=/etc/cinder/cinder.conf configure_cinder_backend_zfs zfs
    # the initiators reach the LIO target at 127.0.0.1:3260, which QEMU's user network
    # forwards to the ZFS guest's own address: a second portal there
    iniset /etc/cinder/cinder.conf zfs iscsi_secondary_ip_addresses 10.0.2.15
    iniset /etc/cinder/cinder.conf zfs zfs_ssh_private_key /etc/cinder/zfs-host-key
    iniset /etc/cinder/cinder.conf zfs zfs_ssh_strict_host_key_checking no
    write_conf cinder /etc/cinder/cinder-api.conf <<EOF
[DEFAULT]
log_file = $LOGS/cinder/cinder-api.log
EOF
    cp "$V/etc/manila/api-paste.ini" /etc/manila/api-paste.ini
    write_conf manila /etc/manila/manila.conf <<EOF
[DEFAULT]
transport_url = $RABBIT_URL
host = $HOSTNAME_AIO
state_path = $d/manila
log_dir = $LOGS/manila
auth_strategy = keystone
api_paste_config = /etc/manila/api-paste.ini
rootwrap_config = /etc/manila/rootwrap.conf
enabled_share_backends = $HCI_MANILA_BACKEND
enabled_share_protocols = NFS
default_share_type = default
osapi_share_workers = 1
[database]
connection = $(db manila)
[oslo_concurrency]
lock_path = $d/manila/lock
[oslo_messaging_notifications]
driver = noop
$(authtoken manila)
EOF
    hci_configure_manila_backend /etc/manila/manila.conf "$HCI_MANILA_BACKEND"
    iniset /etc/manila/manila.conf "$HCI_MANILA_BACKEND" zfs_ssh_private_key /etc/manila/zfs-host-key
    iniset /etc/manila/manila.conf "$HCI_MANILA_BACKEND" zfs_ssh_strict_host_key_checking no
    write_conf manila /etc/manila/manila-api.conf <<EOF
[DEFAULT]
log_file = $LOGS/manila/manila-api.log
EOF
    local svc
    for svc in cinder manila; do
        install -o "$svc" -g "$svc" -m 0600 "$ZFS_ART/$(manifest ssh_key)" "/etc/$svc/zfs-host-key"
    done
    cat >"$S/openrc" <<EOF
export OS_AUTH_URL=$AUTH
export OS_USERNAME=admin
export OS_PASSWORD=$ADMIN_PASS
export OS_PROJECT_NAME=admin
export OS_USER_DOMAIN_NAME=Default
export OS_PROJECT_DOMAIN_NAME=Default
export OS_IDENTITY_API_VERSION=3
export OS_REGION_NAME=RegionOne
export PATH=$V/bin:\$PATH
EOF
    chmod 0600 "$S/openrc"
}

# ---------------------------------------------------------------------------- ZFS guest
ZFS_ART=
manifest() { "$V/bin/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$ZFS_ART/manifest.json" "$1"; }
find_zfs_guest() {
    ZFS_ART=$("$HCI_DIR/tools/guest/build-zfs-guest.sh" "$HCI_CACHE" 2>>"$LOGS/setup-guest.log" | tail -n1)
    [ -f "$ZFS_ART/manifest.json" ] || die "no ZFS guest image (tools/guest/build-zfs-guest.sh)"
}

zfs_ssh() {
    ssh -p "$PORT_ZFS_SSH" -i "$ZFS_ART/$(manifest ssh_key)" -o StrictHostKeyChecking=no \
        -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes \
        -o ConnectTimeout=5 root@127.0.0.1 "$@"
}

start_zfs_guest() {
    local g=$S/zfs-guest
    mkdir -p "$g"
    if [ -f "$RUN/zfs-guest.pid" ] && kill -0 "$(cat "$RUN/zfs-guest.pid")" 2>/dev/null; then
        return 0
    fi
    # the pool's disk persists in the state dir; the guest's root is a throw-away overlay
    [ -f "$g/pool.img" ] || truncate -s 20G "$g/pool.img"
    : >"$LOGS/zfs-guest.console.log"
    qemu-system-x86_64 -machine q35 -accel tcg,thread=multi -cpu max -m 1536 -smp 2 \
        -nodefaults -display none -no-reboot -daemonize -pidfile "$RUN/zfs-guest.pid" \
        -serial "file:$LOGS/zfs-guest.console.log" \
        -kernel "$ZFS_ART/$(manifest kernel)" -initrd "$ZFS_ART/$(manifest initrd)" \
        -append "$("$V/bin/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["cmdline"])' "$ZFS_ART/manifest.json")" \
        -drive "file=$ZFS_ART/$(manifest root),if=virtio,format=raw,snapshot=on" \
        -drive "file=$g/pool.img,if=virtio,format=raw,cache=writeback,discard=unmap" \
        -device virtio-rng-pci \
        -netdev "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:$PORT_ZFS_SSH-:22,hostfwd=tcp:127.0.0.1:$PORT_ZFS_ISCSI-:3260" \
        -device virtio-net-pci,netdev=n0
    local i
    for i in $(seq 300); do
        grep -q "ZGUEST READY" "$LOGS/zfs-guest.console.log" && break
        grep -q "ZGUEST ZFS-FAILED" "$LOGS/zfs-guest.console.log" && die "ZFS guest: zfs did not load"
        sleep 1
    done
    zfs_ssh true || die "ZFS guest: no SSH (console: $LOGS/zfs-guest.console.log)"
    # the pool on the persistent disk; cinder-rtstool for LIO (from cinder installed here)
    zfs_ssh 'zpool import -f aio 2>/dev/null || zpool list aio >/dev/null 2>&1 ||
             zpool create -f -o ashift=12 -O snapdev=hidden -O mountpoint=/aio aio /dev/vdb'
    # LIO's saved configuration (cinder-rtstool save, restored by cinder-volume's
    # ensure_export when the host has no target) on the persistent pool: the guest's root
    # is thrown away at each stop, and without it the volumes' targets (and their ACLs)
    # were gone after a restart, so attached servers could not start again
    # (rtslib's default save file: /etc/rtslib-fb-target/saveconfig.json on Debian)
    # shellcheck disable=SC2016  # expanded on the ZFS host
    zfs_ssh 'd=$(python3 -c "import os, rtslib_fb.root as r; print(os.path.dirname(r.default_save_file))") &&
             mkdir -p /aio/.lio "$d" && { mountpoint -q "$d" || mount --bind /aio/.lio "$d"; }'
    install_rtstool
}

install_rtstool() {
    local src lib=/usr/local/lib/cinder-rtstool
    # (cinder's import warns about eventlet on stderr: not for the terminal)
    src=$("$V/bin/python" -W ignore -c 'import cinder, os; print(os.path.dirname(cinder.__file__))' 2>>"$LOGS/setup-guest.log")
    (cd "$src/.." && tar cf - cinder/i18n.py cinder/cmd/rtstool.py) | zfs_ssh "
        mkdir -p $lib /etc/target && tar xf - -C $lib &&
        touch $lib/cinder/__init__.py $lib/cinder/cmd/__init__.py &&
        printf '%s\n' '#!/bin/sh' 'PYTHONPATH=$lib exec python3 -c \"import sys; from cinder.cmd import rtstool; sys.exit(rtstool.main())\" \"\$@\"' >/usr/local/bin/cinder-rtstool &&
        chmod 755 /usr/local/bin/cinder-rtstool && /usr/local/bin/cinder-rtstool verify"
}

stop_zfs_guest() {
    local f=$RUN/zfs-guest.pid pid i
    [ -f "$f" ] || return 0
    pid=$(cat "$f")
    if kill -0 "$pid" 2>/dev/null; then
        zfs_ssh 'umount /etc/rtslib-fb-target /etc/target; zpool export aio; sync; echo o > /proc/sysrq-trigger' >/dev/null 2>&1 || true
        for i in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        kill "$pid" 2>/dev/null || true
    fi
    rm -f "$f"
}

# ---------------------------------------------------------------------------- daemons
# start_as USER NAME CMD...: a service in a session of its own, as USER, pid in $RUN
start_as() {
    local user=$1 name=$2; shift 2
    if [ -f "$RUN/$name.pid" ] && kill -0 "$(cat "$RUN/$name.pid")" 2>/dev/null; then
        return 0
    fi
    setsid setpriv --reuid="$user" --regid="$user" --init-groups \
        env -i PATH="$V/bin:/usr/sbin:/usr/bin:/sbin:/bin" HOME="$S/home/$user" LANG=C.UTF-8 \
        "$@" >>"$LOGS/$user/$name.out" 2>&1 </dev/null &
    echo $! >"$RUN/$name.pid"
}

# start_wsgi USER NAME PORT MODULE [uwsgi args]: one of the APIs under uwsgi
start_wsgi() {
    local user=$1 name=$2 port=$3 module=$4; shift 4
    start_as "$user" "$name" "$V/bin/uwsgi" --http-socket "127.0.0.1:$port" \
        --module "$module" --virtualenv "$V" --master --processes 1 --threads 4 \
        --enable-threads --lazy-apps --die-on-term --need-app --buffer-size 65535 \
        --thunder-lock --add-header "Connection: close" --worker-reload-mercy 5 \
        --reload-mercy 5 --hook-master-start "unix_signal:15 gracefully_kill_them_all" \
        --procname-prefix-spaced "aio-$name" "$@"
}

wait_http() {
    local url=$1 i
    for i in $(seq 600); do
        curl -s -o /dev/null -m 2 "$url" && return 0
        sleep 0.2
    done
    die "no answer from $url (logs: $LOGS)"
}

stop_pidfile() {   # stop_pidfile FILE [SECONDS]: TERM its process group, KILL after 20 s
    local f=$1 pid i
    [ -f "$f" ] || return 0
    pid=$(cat "$f")
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq $((${2:-20} * 5))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    rm -f "$f"
}

# ---------------------------------------------------------------------------- MariaDB
MYCNF=$S/data/mysql.cnf
start_mysql() {
    cat >"$MYCNF" <<EOF
[mysqld]
datadir = $S/data/mysql
socket = $S/data/mysql/mysqld.sock
pid-file = $S/data/mysql/mysqld.pid
log-error = $LOGS/mariadb.log
bind-address = 127.0.0.1
port = $PORT_MYSQL
user = mysql
max_connections = 1000
innodb_buffer_pool_size = 128M
innodb_flush_log_at_trx_commit = 2
skip-log-bin
character-set-server = utf8mb4
collation-server = utf8mb4_general_ci
skip-name-resolve
[client]
socket = $S/data/mysql/mysqld.sock
user = root
EOF
    chmod 0755 "$RUN"
    touch "$LOGS/mariadb.log" && chown mysql "$LOGS/mariadb.log"
    if [ ! -d "$S/data/mysql/mysql" ]; then
        install -d -o mysql -g mysql -m 0750 "$S/data/mysql"
        logged mariadb mariadb-install-db --defaults-file="$MYCNF" --user=mysql --skip-test-db
    fi
    if ! mariadb-admin --defaults-file="$MYCNF" ping >/dev/null 2>&1; then
        setsid mariadbd --defaults-file="$MYCNF" >/dev/null 2>&1 </dev/null &
        local i
        for i in $(seq 150); do
            mariadb-admin --defaults-file="$MYCNF" ping >/dev/null 2>&1 && break
            sleep 0.2
        done
    fi
    mariadb --defaults-file="$MYCNF" -e "CREATE USER IF NOT EXISTS 'os'@'127.0.0.1' IDENTIFIED BY '$DB_PASS'; GRANT ALL ON *.* TO 'os'@'127.0.0.1'; FLUSH PRIVILEGES;"
}
stop_mysql() {
    [ -f "$S/data/mysql/mysqld.pid" ] || return 0
    mariadb-admin --defaults-file="$MYCNF" shutdown 2>/dev/null || true
}

# ---------------------------------------------------------------------------- RabbitMQ
rabbit_env() {
    export RABBITMQ_NODENAME=aio@localhost RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    export RABBITMQ_NODE_PORT=$PORT_RABBIT RABBITMQ_MNESIA_BASE=$S/data/rabbit/mnesia
    export RABBITMQ_LOG_BASE=$LOGS/rabbitmq RABBITMQ_PID_FILE=$RUN/rabbit.pid
    export RABBITMQ_ENABLED_PLUGINS_FILE=$S/data/rabbit/enabled_plugins
    export RABBITMQ_DIST_PORT=$((PORT_RABBIT + 20000)) ERL_EPMD_PORT=$PORT_EPMD
    export ERL_EPMD_ADDRESS=127.0.0.1
}
# rabbitmqctl is an Erlang VM too: its cookie in that HOME, any erl_crash.dump there
rmqctl() {
    (rabbit_env; mkdir -p "$S/data/rabbit" && cd "$S/data/rabbit" &&
     HOME=$S/data/rabbit /usr/lib/rabbitmq/bin/rabbitmqctl "$@")
}
start_rabbit() {
    if rmqctl -q status >/dev/null 2>&1; then return 0; fi
    mkdir -p "$S/data/rabbit/mnesia" "$LOGS/rabbitmq"
    [ -f "$S/data/rabbit/enabled_plugins" ] || echo '[].' >"$S/data/rabbit/enabled_plugins"
    # from its own directory: the Erlang VM writes erl_crash.dump into its working directory
    (rabbit_env; export HOME=$S/data/rabbit PATH=/usr/lib/rabbitmq/bin:$PATH
     cd "$S/data/rabbit"
     setsid rabbitmq-server >"$LOGS/rabbitmq/stdout.log" 2>&1 </dev/null & echo $! >"$RUN/rabbit-launcher.pid")
    local i
    for i in $(seq 120); do rmqctl -q await_startup --timeout 5 >/dev/null 2>&1 && break; sleep 1; done
    rmqctl -q list_users | grep -q '^openstack' || {
        rmqctl -q add_user openstack "$RABBIT_PASS" >/dev/null
        rmqctl -q set_permissions openstack ".*" ".*" ".*" >/dev/null
    }
}
stop_rabbit() {
    [ -f "$RUN/rabbit.pid" ] || [ -f "$RUN/rabbit-launcher.pid" ] || return 0
    rmqctl -q stop "$RUN/rabbit.pid" >/dev/null 2>&1 || true
    stop_pidfile "$RUN/rabbit-launcher.pid"
    (rabbit_env; epmd -kill >/dev/null 2>&1 || true)
    rm -f "$RUN/rabbit.pid"
}

# ---------------------------------------------------------------------------- OVN + OVS
ovn_env() {
    local d=$S/data/ovn r=$RUN/ovn l=$LOGS/ovn
    mkdir -p "$d" "$r" "$l"
    export OVS_RUNDIR=$r OVS_LOGDIR=$l OVS_DBDIR=$d OVN_RUNDIR=$r OVN_LOGDIR=$l OVN_DBDIR=$d
}
start_ovn() {
    ovn_env
    local d=$OVS_DBDIR r=$OVS_RUNDIR l=$OVS_LOGDIR
    [ -f "$r/ovs-vswitchd.pid" ] && kill -0 "$(cat "$r/ovs-vswitchd.pid")" 2>/dev/null && return 0
    [ -f "$d/conf.db" ] || ovsdb-tool create "$d/conf.db" /usr/share/openvswitch/vswitch.ovsschema
    [ -f "$d/ovnnb.db" ] || ovsdb-tool create "$d/ovnnb.db" /usr/share/ovn/ovn-nb.ovsschema
    [ -f "$d/ovnsb.db" ] || ovsdb-tool create "$d/ovnsb.db" /usr/share/ovn/ovn-sb.ovsschema
    # shellcheck disable=SC2129
    ovsdb-server "$d/conf.db" --remote="punix:$r/db.sock" --remote="ptcp:$PORT_OVSDB:127.0.0.1" \
        --pidfile="$r/ovsdb-server.pid" --log-file="$l/ovsdb-server.log" --detach --no-chdir 2>>"$l/daemons.err"
    ovsdb-server "$d/ovnnb.db" --remote="punix:$r/ovnnb_db.sock" --remote="ptcp:$PORT_OVNNB:127.0.0.1" \
        --pidfile="$r/ovnnb.pid" --log-file="$l/ovnnb.log" --unixctl="$r/ovnnb.ctl" --detach --no-chdir 2>>"$l/daemons.err"
    ovsdb-server "$d/ovnsb.db" --remote="punix:$r/ovnsb_db.sock" --remote="ptcp:$PORT_OVNSB:127.0.0.1" \
        --pidfile="$r/ovnsb.pid" --log-file="$l/ovnsb.log" --unixctl="$r/ovnsb.ctl" --detach --no-chdir 2>>"$l/daemons.err"
    ovn-northd --ovnnb-db="unix:$r/ovnnb_db.sock" --ovnsb-db="unix:$r/ovnsb_db.sock" \
        --pidfile="$r/ovn-northd.pid" --log-file="$l/ovn-northd.log" --detach --no-chdir 2>>"$l/daemons.err"
    local vsctl=(ovs-vsctl "--db=unix:$r/db.sock" --no-wait)
    "${vsctl[@]}" init
    "${vsctl[@]}" set open . external-ids:system-id=$HOSTNAME_AIO \
        external-ids:hostname=$HOSTNAME_AIO external-ids:ovn-remote=tcp:127.0.0.1:$PORT_OVNSB \
        external-ids:ovn-encap-type=geneve external-ids:ovn-encap-ip=127.0.0.1 \
        external-ids:ovn-bridge-mappings=public:br-ex external-ids:ovn-cms-options=enable-chassis-as-gw
    # userspace datapath: no Open vSwitch kernel module on these hosts
    "${vsctl[@]}" -- --may-exist add-br br-int -- set bridge br-int datapath_type=netdev fail-mode=secure
    "${vsctl[@]}" -- --may-exist add-br br-ex -- set bridge br-ex datapath_type=netdev
    ovs-vswitchd "unix:$r/db.sock" --pidfile="$r/ovs-vswitchd.pid" --log-file="$l/ovs-vswitchd.log" --detach --no-chdir 2>>"$l/daemons.err"
    ovn-controller "unix:$r/db.sock" --pidfile="$r/ovn-controller.pid" --log-file="$l/ovn-controller.log" --detach --no-chdir 2>>"$l/daemons.err"
}
stop_ovn() {
    ovn_env
    local n f
    for n in ovn-controller ovs-vswitchd ovn-northd ovnsb ovnnb ovsdb-server; do
        f=$OVS_RUNDIR/$n.pid
        [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
        rm -f "$f"
    done
    return 0
}

# ---------------------------------------------------------------------------- OpenStack
start_openstack() {
    start_wsgi keystone keystone "$PORT_KEYSTONE" keystone.wsgi.api:application \
        --env OS_KEYSTONE_CONFIG_DIR=/etc/keystone
    # placement answering before nova's conductor and scheduler start: they exit at once
    # when it does not (seen on a loaded machine: "placement ... does not have any
    # supported versions"); then conductor and schedulers before the rest, since
    # nova-compute waits for the conductor's queue
    start_wsgi placement placement "$PORT_PLACEMENT" placement.wsgi.api:application \
        --env OS_PLACEMENT_CONFIG_DIR=/etc/placement
    wait_http "http://127.0.0.1:$PORT_PLACEMENT/"
    start_as nova nova-conductor nova-conductor --config-file /etc/nova/nova.conf
    start_as nova nova-scheduler nova-scheduler --config-file /etc/nova/nova.conf
    start_as cinder cinder-scheduler cinder-scheduler --config-file /etc/cinder/cinder.conf
    start_as manila manila-scheduler manila-scheduler --config-file /etc/manila/manila.conf
    start_wsgi glance glance-api "$PORT_GLANCE" glance.wsgi.api:application \
        --env OS_GLANCE_CONFIG_DIR=/etc/glance --http-raw-body --http-auto-chunked \
        --chunked-input-limit 4096000
    start_wsgi neutron neutron-api "$PORT_NEUTRON" neutron.wsgi.api:application \
        --env OS_NEUTRON_CONFIG_DIR=/etc/neutron \
        --env "OS_NEUTRON_CONFIG_FILES=neutron.conf;plugins/ml2/ml2_conf.ini"
    start_wsgi nova nova-api "$PORT_NOVA" nova.wsgi.osapi_compute:application \
        --env OS_NOVA_CONFIG_DIR=/etc/nova --env "OS_NOVA_CONFIG_FILES=api-paste.ini;nova.conf;nova-api.conf"
    start_wsgi cinder cinder-api "$PORT_CINDER" cinder.wsgi.api:application \
        --pyargv "--config-file /etc/cinder/cinder.conf --config-file /etc/cinder/cinder-api.conf"
    start_wsgi manila manila-api "$PORT_MANILA" manila.wsgi.api:application \
        --pyargv "--config-file /etc/manila/manila.conf --config-file /etc/manila/manila-api.conf"
    local i
    for i in $(seq 300); do
        rmqctl -q list_queues name 2>/dev/null | grep -qx conductor && break
        sleep 0.2
    done
    start_compute
    start_as cinder cinder-volume cinder-volume --config-file /etc/cinder/cinder.conf
    start_as manila manila-share manila-share --config-file /etc/manila/manila.conf
    start_as neutron neutron-ovn-maintenance neutron-ovn-maintenance-worker \
        --config-file /etc/neutron/neutron.conf --config-file /etc/neutron/plugins/ml2/ml2_conf.ini
    for i in $PORT_KEYSTONE $PORT_PLACEMENT $PORT_GLANCE $PORT_NEUTRON $PORT_NOVA $PORT_CINDER $PORT_MANILA; do
        wait_http "http://127.0.0.1:$i/"
    done
}
start_compute() { start_as nova nova-compute nova-compute --config-file /etc/nova/nova.conf; }
SERVICES="manila-share cinder-volume nova-compute neutron-ovn-maintenance manila-api cinder-api
nova-api neutron-api glance-api placement manila-scheduler cinder-scheduler nova-scheduler
nova-conductor keystone"

wait_services() {
    # shellcheck source=/dev/null
    . "$S/openrc"
    local i n c h m
    for i in $(seq 180); do
        n=$(openstack compute service list -f value -c State 2>/dev/null | grep -c up || true)
        h=$(openstack hypervisor list -f value -c State 2>/dev/null | grep -c up || true)
        c=$(openstack volume service list -f value -c State 2>/dev/null | grep -c up || true)
        m=$(openstack share service list -f value -c State 2>/dev/null | grep -c up || true)
        [ "$n" -ge 3 ] && [ "$h" -ge 1 ] && [ "$c" -ge 2 ] && [ "$m" -ge 2 ] && return 0
        sleep 1
    done
    die "services not up: nova $n/3, hypervisors $h/1, cinder $c/2, manila $m/2 (logs: $LOGS)"
}

as() { local u=$1; shift; setpriv --reuid="$u" --regid="$u" --init-groups "$@"; }

init_openstack() {
    local d
    for d in keystone placement glance nova_api nova_cell0 nova_cell1 cinder neutron manila; do
        mariadb --defaults-file="$MYCNF" -e "CREATE DATABASE IF NOT EXISTS $d CHARACTER SET utf8;"
    done
    local K=(--config-file /etc/keystone/keystone.conf)
    install -d -o keystone -g keystone -m 0700 "$S/data/keystone/fernet-keys" "$S/data/keystone/credential-keys"
    logged keystone as keystone "$V/bin/keystone-manage" "${K[@]}" db_sync
    logged keystone as keystone "$V/bin/keystone-manage" "${K[@]}" fernet_setup --keystone-user keystone --keystone-group keystone
    logged keystone as keystone "$V/bin/keystone-manage" "${K[@]}" credential_setup --keystone-user keystone --keystone-group keystone
    logged keystone as keystone "$V/bin/keystone-manage" "${K[@]}" bootstrap --bootstrap-password "$ADMIN_PASS" \
        --bootstrap-admin-url "$AUTH" --bootstrap-internal-url "$AUTH" \
        --bootstrap-public-url "$AUTH" --bootstrap-region-id RegionOne
    step "keystone database and admin ready"
    start_wsgi keystone keystone "$PORT_KEYSTONE" keystone.wsgi.api:application \
        --env OS_KEYSTONE_CONFIG_DIR=/etc/keystone
    wait_http "$AUTH"
    # shellcheck source=/dev/null
    (. "$S/openrc"; HCI_AIO_PORT_BASE=$P HCI_AIO_SERVICE_PASS=$SVC_PASS \
        "$V/bin/python" "$HERE/register-catalog.py") >>"$LOGS/setup-catalog.log" 2>&1 &
    local catalog=$!
    logged placement as placement "$V/bin/placement-manage" --config-file /etc/placement/placement.conf db sync
    logged glance as glance "$V/bin/glance-manage" --config-file /etc/glance/glance-api.conf db sync
    local N=(--config-file /etc/nova/nova.conf)
    logged nova as nova "$V/bin/nova-manage" "${N[@]}" api_db sync
    logged nova as nova "$V/bin/nova-manage" "${N[@]}" cell_v2 map_cell0 --database_connection "$(db nova_cell0)"
    logged nova as nova "$V/bin/nova-manage" "${N[@]}" db sync
    as nova "$V/bin/nova-manage" "${N[@]}" cell_v2 list_cells 2>/dev/null | grep -q ' cell1 ' ||
        logged nova as nova "$V/bin/nova-manage" "${N[@]}" cell_v2 create_cell --name cell1
    logged cinder as cinder "$V/bin/cinder-manage" --config-file /etc/cinder/cinder.conf db sync
    logged manila as manila "$V/bin/manila-manage" --config-file /etc/manila/manila.conf db sync
    logged neutron as neutron "$V/bin/neutron-db-manage" --config-file /etc/neutron/neutron.conf \
        --config-file /etc/neutron/plugins/ml2/ml2_conf.ini upgrade heads
    wait "$catalog" || { tail "$LOGS/setup-catalog.log" >&2; die "catalog registration failed"; }
    step "databases created, service catalog registered"
}

first_resources() {
    # shellcheck source=/dev/null
    . "$S/openrc"
    openstack flavor show m1.tiny >/dev/null 2>&1 ||
        openstack flavor create --ram 256 --disk 1 --vcpus 1 --id 42 m1.tiny >/dev/null
    openstack flavor show m1.small >/dev/null 2>&1 ||
        openstack flavor create --ram 384 --disk 2 --vcpus 1 --id 84 m1.small >/dev/null
    openstack volume type show zfs >/dev/null 2>&1 ||
        openstack volume type create --property volume_backend_name=zfs zfs >/dev/null
    # the openstack CLI's share commands (python-manilaclient 6 has no 'manila' command)
    openstack share type show default >/dev/null 2>&1 ||
        openstack share type create default false --snapshot-support true \
            --create-share-from-snapshot-support true --revert-to-snapshot-support true >/dev/null
}

# ---------------------------------------------------------------------------- commands
# The deployment tests (tests/functional/deploy) and this cloud both own the service users
# and /etc/<service>: one at a time on a machine, under the deployment tests' lock, held
# by a small process while the cloud runs.
LOCK=/run/lock/openstack-hci-drivers-deploy.lock
take_machine_lock() {
    local f=$RUN/machine-lock.pid i
    if [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; then return 0; fi
    rm -f "$f"
    # shellcheck disable=SC2016  # expanded by that sh
    setsid flock "$LOCK" sh -c 'echo $$ > "$1"; exec sleep infinity' sh "$f" </dev/null >/dev/null 2>&1 &
    for i in $(seq 1800); do
        [ -s "$f" ] && return 0
        [ "$i" = 5 ] && step "waiting for the machine's deployment lock ($LOCK: a deployment test runs)"
        sleep 1
    done
    die "the deployment lock $LOCK stayed taken"
}

# The cloud's ports lie in the kernel's ephemeral range (32768-60999): a client's outgoing
# connection once held 127.0.0.1:42001 and placement could not bind. Reserve them (as
# devstack does for keystone's); harmless to other programs, kept until reboot.
reserve_ports() {
    local f=/proc/sys/net/ipv4/ip_local_reserved_ports cur want="$P-$((P + 13))"
    cur=$(cat "$f" 2>/dev/null) || return 0
    case ",$cur," in *",$want,"*) return 0 ;; esac
    echo "${cur:+$cur,}$want" >"$f" 2>/dev/null ||
        step "warning: could not reserve ports $want ($f)"
}

prepare_host() {
    take_machine_lock
    reserve_ports
    make_users
    mkdir -p "$S/data/glance/"{images,staging,tasks,cache,lock} "$S/data/nova/instances"
    chown -R glance:glance "$S/data/glance"
    chown nova:nova "$S/data/nova" "$S/data/nova/instances"
    write_configs
}

do_start() {
    [ -f "$S/initialised" ] || die "not initialised: run '$0 up' first"
    find_zfs_guest
    mkdir -p "$RUN"
    prepare_host
    step "service users and /etc/{keystone,glance,placement,nova,neutron,cinder,manila} in place"
    start_mysql
    start_rabbit
    start_ovn
    step "MariaDB, RabbitMQ, OVN and Open vSwitch up"
    start_zfs_guest
    step "ZFS host (OpenZFS test guest) up, SSH on 127.0.0.1:$PORT_ZFS_SSH"
    start_openstack
    step "APIs answering"
    wait_services
    step "nova, cinder and manila services up"
    start_servers
}

do_up() {
    install_all
    find_zfs_guest
    if [ ! -f "$S/initialised" ]; then
        prepare_host
        step "service users and /etc/{keystone,glance,placement,nova,neutron,cinder,manila} written"
        start_mysql
        start_rabbit
        start_ovn
        step "MariaDB, RabbitMQ, OVN and Open vSwitch up"
        start_zfs_guest
        step "ZFS host (OpenZFS test guest) up"
        init_openstack
        touch "$S/initialised"
    fi
    do_start
    first_resources
    step "cloud ready; credentials in $S/openrc"
}

# The servers running at stop are stopped through nova (state kept) and started again
# by start, so no guest outlives its cloud.
RUNNING=$S/data/servers-running
stop_servers() {
    [ -f "$S/openrc" ] && curl -s -o /dev/null -m 5 "$AUTH" || return 0
    # shellcheck source=/dev/null
    . "$S/openrc"
    local ids i
    ids=$(openstack server list --all-projects --status ACTIVE -f value -c ID 2>/dev/null || true)
    [ -n "$ids" ] || return 0
    echo "$ids" >"$RUNNING"
    step "stopping servers: $(echo "$ids" | tr '\n' ' ')"
    # shellcheck disable=SC2086
    openstack server stop $ids
    for i in $(seq 120); do
        [ -z "$(openstack server list --all-projects --status ACTIVE -f value -c ID 2>/dev/null)" ] && return 0
        sleep 1
    done
    die "servers still ACTIVE after 120 s: $(openstack server list --all-projects --status ACTIVE -f value -c ID) (log: $LOGS/nova/nova-compute.log)"
}
start_servers() {
    [ -s "$RUNNING" ] || return 0
    local ids id i
    ids=$(cat "$RUNNING")
    step "starting the servers stopped by stop: $(echo "$ids" | tr '\n' ' ')"
    # shellcheck disable=SC2086
    openstack server start $ids
    for id in $ids; do
        i=$((SECONDS + 180))
        until [ "$(openstack server show "$id" -f value -c status)" = ACTIVE ]; do
            [ "$SECONDS" -lt "$i" ] ||
                die "server $id not ACTIVE 180 s after its start (log: $LOGS/nova/nova-compute.log)"
            sleep 2
        done
    done
    rm -f "$RUNNING"
}

# guests left behind by a cloud that could not stop them (destroy only): by their PID,
# found by the instance directory under this state directory on their command line
kill_leftover_guests() {
    local f pid
    for f in /proc/[0-9]*/cmdline; do
        pid=${f#/proc/}; pid=${pid%/cmdline}
        tr '\0' ' ' <"$f" 2>/dev/null | grep -q -- "--dir $S/data/nova/instances/" || continue
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    done
}

do_stop() {
    local s
    ovn_env
    stop_servers
    for s in $SERVICES; do stop_pidfile "$RUN/$s.pid" & done
    wait
    step "OpenStack services stopped"
    stop_zfs_guest
    stop_ovn
    stop_rabbit
    stop_mysql
    stop_pidfile "$RUN/machine-lock.pid"
    step "ZFS guest, OVN/OVS, RabbitMQ, MariaDB stopped"
}

# restart nova-compute (the one service a restart is asked of, e.g. at an upgrade) as a
# service manager restarts a unit: SIGTERM to its process group (with its privsep
# daemons), the grace time of systemd's default (90 s; nova's own graceful shutdown
# takes up to 60), SIGKILL after; then started as start does, and waited for until it
# reports to nova again
do_restart() {
    [ "${1:-}" = nova-compute ] || die "usage: $0 restart nova-compute"
    local f=$RUN/nova-compute.pid t0 i st
    { [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; } || die "nova-compute does not run (log: $LOGS/nova/nova-compute.log)"
    t0=$(date -u +%s)
    step "stopping nova-compute (PID $(cat "$f"), SIGTERM)"
    stop_pidfile "$f" 90
    step "nova-compute stopped; starting it again"
    start_compute
    # shellcheck source=/dev/null
    . "$S/openrc"
    for i in $(seq 300); do
        # up, with a report newer than the stop (a stopped one stays "up" a minute)
        st=$(openstack compute service list --service nova-compute -f json 2>/dev/null |
            "$V/bin/python" -c 'import datetime, json, sys
s = json.load(sys.stdin)[0]
t = datetime.datetime.fromisoformat(s["Updated At"]).replace(tzinfo=datetime.timezone.utc)
print(s["State"] if t.timestamp() > float(sys.argv[1]) else "old")' "$t0" 2>/dev/null || true)
        [ "$st" = up ] && break
        sleep 1
    done
    [ "$st" = up ] || die "nova-compute (PID $(cat "$f")) did not report up within 300 s (log: $LOGS/nova/nova-compute.log)"
    step "nova-compute up again (PID $(cat "$f"))"
}

do_status() {
    local f n
    for f in "$RUN"/*.pid "$RUN"/ovn/*.pid; do
        [ -f "$f" ] || continue
        n=$(basename "$f" .pid)
        if kill -0 "$(cat "$f")" 2>/dev/null; then echo "$n: running ($(cat "$f"))"
        else echo "$n: dead"; fi
    done
}

do_destroy() {
    do_stop
    kill_leftover_guests
    local u svc
    for svc in nova cinder manila; do
        hci_remove_privsep "$svc"
        rm -f "/usr/local/bin/$svc-rootwrap"
    done
    rm -f /etc/sudoers.d/openstack-hci-aio-os-brick
    for u in $USERS; do
        rm -rf "/etc/${u:?}"
        id "$u" >/dev/null 2>&1 && userdel "$u"
    done
    rm -rf "$S"
}

[ "$(id -u)" = 0 ] || die "run as root (it installs packages and starts the services as their users)"
case "${1:-up}" in
    up) do_up ;;
    start) do_start ;;
    stop) do_stop ;;
    status) do_status ;;
    restart) do_restart "${2:-}" ;;
    destroy) do_destroy ;;
    install-tempest) install_tempest ;;
    *) echo "usage: $0 up|start|stop|status|destroy|restart nova-compute" >&2; exit 2 ;;
esac
