#!/usr/bin/env bash
# CI: every fuzz target for a bounded time (20 s each by default, about 3 minutes with the builds),
# after its regression corpus. Needs the plugin built (scripts/test.sh runs first in .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
nice bash fuzz/run.sh "${BACKDROP_FUZZ_SECONDS:-20}"
