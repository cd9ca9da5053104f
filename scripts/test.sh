#!/usr/bin/env bash
# Sets everything up (system libraries, the real models) and runs the whole test suite in release mode,
# as CI does. Tests that need the real models skip loudly when scripts/setup.sh could not fetch them.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build -c release -Xswiftc -enable-testing --build-tests
swift test -c release -Xswiftc -enable-testing --skip-build
