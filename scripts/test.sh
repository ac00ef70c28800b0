#!/usr/bin/env bash
# Builds everything once (plugin, engine, tests) and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --build-tests
swift test --skip-build "$@"
