#!/usr/bin/env bash
# Sets everything up (system libraries, the real models, the demo photos) and runs the whole test suite
# in release mode, as CI does. Tests that need the real models skip loudly when they are absent.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# The report test renders the page in headless Chromium (Debian's).
if ! command -v chromium >/dev/null; then
    echo "test setup: installing Debian's chromium (for the report test)"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
swift build -c release -Xswiftc -enable-testing --build-tests
# AVX-512 code must stay inside the kernels that run only after a CPU check.
scripts/check-isa.sh .build/release/ex2 .build/release/ex2-bench .build/release/*.xctest
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
# All tests are XCTest; the Swift Testing runner would only add a "0 tests" summary.
swift test -c release -Xswiftc -enable-testing --skip-build --disable-swift-testing 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
summary=$(grep -E "Executed [0-9]+ tests?" "$log" | tail -1)
total=$(echo "$summary" | sed -n 's/.*Executed \([0-9]*\) test.*/\1/p')
failed=$(echo "$summary" | sed -n 's/.*with \([0-9]*\) failure.*/\1/p')
skipped=$(echo "$summary" | sed -n 's/.*with \([0-9]*\) tests\{0,1\} skipped.*/\1/p')
skipped=${skipped:-0}
echo "tests: $(( ${total:-0} - ${failed:-0} - skipped )) passed, ${failed:-0} failed, $skipped skipped"
exit "$status"
