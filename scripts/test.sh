#!/usr/bin/env bash
# Builds Herald and its tests, then runs every test with node's test runner. Installs what the
# tests need beyond npm when it is missing: Debian's Chromium for the browser tests,
# redis-server for the engine and cluster tests (each test starts its own on a free port) and
# nginx for the deploy recipes' test (docs/deploy/nginx.conf, run in a temporary prefix).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v "${CHROMIUM_PATH:-chromium}" >/dev/null 2>&1 || missing+=(chromium)
command -v "${REDIS_SERVER:-redis-server}" >/dev/null 2>&1 || missing+=(redis-server)
command -v "${NGINX:-nginx}" >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
if [ ${#missing[@]} -gt 0 ]; then
  echo "test: installing Debian's ${missing[*]} for the browser, cluster and deploy tests" >&2
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
npm run build --silent
chmod +x dist/cli/main.js
rm -rf build
npx tsc -p tsconfig.test.json
# Explicit files: in a directory, node would also run helpers as tests.
mapfile -t files < <(find build/test -name '*.test.js' | sort)
node --test --test-timeout=120000 "${files[@]}"
