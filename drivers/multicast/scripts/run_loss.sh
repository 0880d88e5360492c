#!/usr/bin/env bash
# run.sh with loss, as the old run_loss.sh: every datagram received in the
# namespace is dropped with probability P (default 0.2).
# Usage: run_loss.sh DIR N [P]
set -euo pipefail
if [[ $# -lt 2 || $# -gt 3 ]]; then
    echo "usage: $0 DIR N [P]   (P: loss probability, default 0.2)" >&2
    exit 2
fi
LOSS=${3:-0.2} exec "$(dirname "$0")/run.sh" "$1" "$2"
