#!/usr/bin/env bash
# Runs latchkey from source (release build), from the repository root.
#
#   bash scripts/serve.sh [ARGS...]     ARGS go to `latchkey serve`, e.g. --config my.toml
#
# With no configuration this is the embedded setup: SQLite and a development master key in
# ./latchkey-data, listening on http://localhost:8080, default issuer
# http://localhost:8080/t/default. config/latchkey.toml and LATCHKEY__* variables apply as usual.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

lk_apt_ensure "${LK_BUILD_PACKAGES[@]}"
exec cargo run --release -- serve "$@"
