#!/bin/bash
# tox -e releasenotes: the release notes (reno) of this tree. reno reads notes from git
# history, and one early merge commit of this repository both adds and changes a note,
# which reno's scanner refuses ("Unrecognized changes"). No version has been tagged yet,
# so every note belongs to the next release: reno reads them from a one-commit
# repository holding this tree's releasenotes/ instead.
set -euo pipefail
RENO=${1:?usage: releasenotes.sh RENO [OUTPUT]}
out=${2:-}
here=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r "$here/releasenotes" "$tmp/"
git -C "$tmp" init -q
git -C "$tmp" add releasenotes
git -C "$tmp" -c user.name=reno -c user.email=reno@localhost commit -q -m notes
if [ -n "$out" ]; then
    "$RENO" report "$tmp" --output "$out"
    echo "release notes: $out"
else
    "$RENO" report "$tmp"
fi
