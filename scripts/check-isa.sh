#!/usr/bin/env bash
# AVX-512 instructions may appear only in the TensorsAVX512 module, which runs after a CPU check. A
# generic specialisation emitted there, or compiler flags leaking into another target, would put them
# into code every CPU runs and crash AVX2-only machines with SIGILL. This lists every function of the
# given binaries (default: the release ex2 and ex2-bench) that holds an EVEX-encoded instruction and
# fails when one lies outside TensorsAVX512.
set -euo pipefail
cd "$(dirname "$0")/.."
bins=("$@")
[ ${#bins[@]} -gt 0 ] || bins=(.build/release/ex2 .build/release/ex2-bench)
status=0
for bin in "${bins[@]}"; do
    [ -f "$bin" ] || { echo "check-isa: $bin is missing: build it first (swift build -c release)"; exit 2; }
    # objdump prints "addr:<TAB>raw bytes<TAB>mnemonic"; in 64-bit code a first byte 0x62 (after an
    # optional 0x67 address-size prefix) is always an EVEX prefix, i.e. AVX-512.
    found=$(objdump -d --no-addresses "$bin" 2>/dev/null | awk '
        /^<.*>:$/ { fn = substr($0, 2, length($0) - 3); next }
        /^\t/ { n = split($0, f, "\t"); if (n < 3) next; b = f[2]; sub(/^ +/, "", b)
                if (b ~ /^62 / || b ~ /^67 62 /) evex[fn] = 1 }
        END { for (n in evex) print n }')
    inside=$(echo "$found" | grep -c 'TensorsAVX512' || true)
    # BoringSSL's AVX-512 AES-GCM assembly (two copies: swift-nio-ssl's under AsyncHTTPClient, and
    # swift-crypto's, which the hub client hashes downloads with) is chosen at run time from its own CPU
    # feature probe, so it never runs on AVX2-only machines.
    outside=$(echo "$found" | grep -v '^$' | grep -v 'TensorsAVX512' | grep -v -E '^C(NIO|Crypto)BoringSSL_' || true)
    if [ -n "$outside" ]; then
        echo "check-isa: $bin: AVX-512 instructions outside TensorsAVX512 in:"
        echo "$outside" | head -20 | sed 's/^/  /'
        status=1
    else
        echo "check-isa: $bin: AVX-512 code only in TensorsAVX512 ($inside functions)"
    fi
done
exit $status
