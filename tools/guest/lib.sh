# Shared by the guest builders (source it). Needs CACHE and KFLAVOUR set.

log() { echo "$(basename "$0"): $*" >&2; }

# The ABI-versioned kernel package the meta package (linux-image-$KFLAVOUR) depends on now:
# derived at build time, since a hard-coded ABI disappears with the next security update.
kernel_pkg() {
    apt-cache depends "linux-image-$KFLAVOUR" 2>/dev/null \
        | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -n1
}

# newest_build NAME: the newest complete cached build of NAME (when apt cannot resolve)
newest_build() {
    local last
    last=$(ls -1dt "$CACHE/$1"/*/manifest.json 2>/dev/null | head -n1 || true)
    [ -n "$last" ] && dirname "$last"
}

# fetch_deb PKG: path of PKG's .deb in $CACHE/debs, downloaded once (never installed)
fetch_deb() {
    local deb
    mkdir -p "$CACHE/debs"
    deb=$(ls "$CACHE/debs/$1"_*.deb 2>/dev/null | tail -n1 || true)
    if [ -z "$deb" ]; then
        (cd "$CACHE/debs" && apt-get download -q "$1" >&2 2>/dev/null) \
            || (cd "$CACHE/debs" && apt-get download -q "$1" >&2)
        deb=$(ls "$CACHE/debs/$1"_*.deb | tail -n1)
    fi
    echo "$deb"
}

# extract_kernel PKG DIR: unpack the kernel package into DIR and index its modules
extract_kernel() {
    dpkg-deb -x "$(fetch_deb "$1")" "$2"
    depmod -b "$2" "${1#linux-image-}"
}

# module_closure ROOT KVER MODULE...: module files (relative to lib/modules/KVER) needed to
# load MODULE..., dependencies first
module_closure() {
    local root=$1 kver=$2 m
    shift 2
    for m in "$@"; do
        modprobe -d "$root" -S "$kver" --show-depends "$m" | awk '$1=="insmod"{print $2}'
    done | awk '!seen[$0]++' | sed "s|^$root/lib/modules/$kver/||"
}
