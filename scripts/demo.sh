#!/usr/bin/env bash
# Sets everything up, then serves the two example projects until Ctrl-C:
#   examples/chat  on http://127.0.0.1:8080  (the pub/sub chat of the tutorial)
#   examples/hello on http://127.0.0.1:8081  (hello and echo)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

# The realtime endpoint's tokens need a secret: a fresh one per demo unless you set yours.
export TERN_AUTH_SECRET="${TERN_AUTH_SECRET:-$(head -c 48 /dev/urandom | base64 | tr -d '\n')}"

target/release/tern serve examples/hello --listen 127.0.0.1:8081 &
hello=$!
trap 'kill -TERM "$hello" 2>/dev/null || true; wait "$hello" 2>/dev/null || true' EXIT

cat >&2 <<'EOT'

==> serving examples/chat on :8080 and examples/hello on :8081.
    Open http://127.0.0.1:8080/?room=tau in two browser windows: the chat page.
    In other terminals:
    URL=$(curl -s 'http://127.0.0.1:8080/api/ws?room=tau'); echo "$URL"
    tools/node_modules/.bin/wscat -c "$URL"      # in two terminals: type in one, see it in the other
    curl -X POST --data 'hello, room' 'http://127.0.0.1:8080/api/notify?room=tau'
    curl 'http://127.0.0.1:8081/hello?name=tern'
    node examples/realtime-node/chat.js tau       # the npm realtime-pubsub client, in the same room
EOT
target/release/tern serve examples/chat --listen 127.0.0.1:8080
