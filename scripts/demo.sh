#!/usr/bin/env bash
# Sets everything up, then serves the example project on 127.0.0.1:8080 until Ctrl-C.
#   scripts/demo.sh [PROJECT_DIR] [tern serve options...]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
project="${1:-examples/hello}"
shift || true
cat >&2 <<EOT

==> serving $project; try, in another terminal:
    curl 'http://127.0.0.1:8080/hello?name=tern'
    curl -X POST -H 'content-type: text/plain' --data 'echo me' http://127.0.0.1:8080/echo
EOT
exec target/release/tern serve "$project" "$@"
