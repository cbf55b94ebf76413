#!/usr/bin/env bash
# Builds Herald and its tests, then runs every test with node's test runner.
# Installs nothing beyond npm packages for now: later suites (Redis, Chromium) add their
# `apt-get install -y` steps here, guarded by a check that the tool is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsc -p tsconfig.json
chmod +x dist/cli/main.js
rm -rf build
npx tsc -p tsconfig.test.json
# Explicit files: in a directory, node would also run helpers as tests.
mapfile -t files < <(find build/test -name '*.test.js' | sort)
node --test --test-timeout=120000 "${files[@]}"
