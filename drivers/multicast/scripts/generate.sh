#!/usr/bin/env bash
# Prints N random integers, one per line: input for an abcast client.
# Usage: generate.sh N
set -euo pipefail
if [[ $# -ne 1 || ! $1 =~ ^[0-9]+$ ]]; then
    echo "usage: $0 N   (prints N random integers, one per line)" >&2
    exit 2
fi
for ((i = 0; i < $1; i++)); do
    echo $((RANDOM * 32768 + RANDOM))
done
