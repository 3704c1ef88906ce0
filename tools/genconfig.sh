#!/bin/bash
# Write a sample configuration file for every generator config in etc/oslo-config-generator.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p etc/samples
shopt -s nullglob
configs=(etc/oslo-config-generator/*.conf)
if [ ${#configs[@]} -eq 0 ]; then
    echo "genconfig: no option namespaces registered yet (etc/oslo-config-generator is empty)"
fi
for f in "${configs[@]}"; do
    oslo-config-generator --config-file "$f"
    echo "genconfig: $(sed -n 's/^output_file *= *//p' "$f")"
done
