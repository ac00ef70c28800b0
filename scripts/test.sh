#!/usr/bin/env bash
# Builds everything once (plugin, engine, tests) and runs the whole test suite.
#   scripts/test.sh [swift test options]     scripts/test.sh --build-only
set -euo pipefail
cd "$(dirname "$0")/.."
# A clean build once failed to see CGStreamer's enum constants in one test file
# (HardeningTests.swift, "cannot find 'GST_MESSAGE_ERROR' in scope") while the same build run
# again, unchanged, succeeded: an order-dependent module import in a fresh build folder. Until
# that is understood, a failed build is retried once; a real compile error fails both times.
swift build --build-tests || { echo "test.sh: build failed; retrying once (see the comment above)" >&2; swift build --build-tests; }
[[ "${1:-}" == --build-only ]] && exit 0  # .ci/run: the build alone, then other work beside the tests
swift test --skip-build "$@"
