#!/usr/bin/env bash
# Builds Herald and its tests, then runs every test with node's test runner. Installs what the
# tests need beyond npm when it is missing: Debian's Chromium for the browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v "${CHROMIUM_PATH:-chromium}" >/dev/null 2>&1; then
  echo "test: installing Debian's chromium for the browser tests" >&2
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
npm run build --silent
chmod +x dist/cli/main.js
rm -rf build
npx tsc -p tsconfig.test.json
# Explicit files: in a directory, node would also run helpers as tests.
mapfile -t files < <(find build/test -name '*.test.js' | sort)
node --test --test-timeout=120000 "${files[@]}"
