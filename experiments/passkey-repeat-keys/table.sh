#!/usr/bin/env bash
# The 32K..1M x depth table (20 keys per cell, the keys of the earlier shipped model's table: seed 1)
# of the repeat-keys model; each length's JSON in this folder (scripts/passkey-table.sh).
#
#   bash experiments/passkey-repeat-keys/table.sh [MODEL]   (MODEL defaults to runs/repeat-keys/repeat)
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/passkey-table.sh "${1:-runs/repeat-keys/repeat}" experiments/passkey-repeat-keys
