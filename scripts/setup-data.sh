#!/usr/bin/env bash
# Lays out the demo concept set: the photographs of Debian's `tuxpaint-stamps-default` package, one
# folder per concept under data/stamps/<concept>/, ready for `--dataset folder:data/stamps`. Only PNG
# photos are kept (no SVGs, sounds, descriptions, cartoon drawings or the mirrored `_mirror` copies), and
# only concepts with at least MIN_PHOTOS photos. The package is fetched with `apt-get download` (no
# install, no root) unless TUXPAINT_DEB names a .deb already on disk. Safe to rerun: a finished layout
# built from the same package version is left alone; otherwise it is rebuilt in a temporary folder and
# swapped in whole.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${EX2_DATA:-$(pwd)/data}"
OUT="$DATA/stamps"
MIN_PHOTOS="${MIN_PHOTOS:-6}"

# concept name : folder under usr/share/tuxpaint/stamps (searched recursively)
CONCEPTS=(
    "birds:animals/birds"
    "mammals:animals/mammals"
    "fish:animals/fish"
    "insects:animals/insects"
    "flowers:plants/flowers"
    "trees:plants/trees"
    "fruit:food/fruit"
    "vegetables:food/vegetables"
    "vehicles:vehicles"
    "musical_instruments:hobbies/music"
    "planets:space/planets"
    "tools:household/tools"
)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ -n "${TUXPAINT_DEB:-}" ]; then
    deb="$TUXPAINT_DEB"
    [ -f "$deb" ] || { echo "setup-data: TUXPAINT_DEB=$deb does not exist" >&2; exit 1; }
else
    command -v apt-get >/dev/null || {
        echo "setup-data: apt-get is missing; download tuxpaint-stamps-default_*.deb by hand and set TUXPAINT_DEB" >&2
        exit 1
    }
    echo "setup-data: downloading tuxpaint-stamps-default (apt-get download)"
    (cd "$tmp" && apt-get download -q tuxpaint-stamps-default >/dev/null) || {
        echo "setup-data: apt-get download failed; run 'sudo apt-get update' first, or set TUXPAINT_DEB" >&2
        exit 1
    }
    deb=$(ls "$tmp"/tuxpaint-stamps-default_*.deb)
fi
version=$(dpkg-deb -f "$deb" Version)
stamp="tuxpaint-stamps-default $version, min $MIN_PHOTOS photos, concepts ${CONCEPTS[*]}"
if [ -f "$OUT/.complete" ] && [ "$(cat "$OUT/.complete")" = "$stamp" ]; then
    echo "setup-data: $OUT is up to date ($version)"
    exit 0
fi

echo "setup-data: extracting $(basename "$deb")"
dpkg-deb -x "$deb" "$tmp/pkg"
src="$tmp/pkg/usr/share/tuxpaint/stamps"
[ -d "$src" ] || { echo "setup-data: $(basename "$deb") has no usr/share/tuxpaint/stamps" >&2; exit 1; }

build="$tmp/stamps"
mkdir -p "$build"
for spec in "${CONCEPTS[@]}"; do
    name="${spec%%:*}"
    folder="$src/${spec#*:}"
    [ -d "$folder" ] || { echo "setup-data: skipping $name ($folder is not in this package version)"; continue; }
    mapfile -t photos < <(find "$folder" -type f -name '*.png' -not -path '*/cartoon/*' -not -name '*_mirror.png' | sort)
    if [ "${#photos[@]}" -lt "$MIN_PHOTOS" ]; then
        echo "setup-data: skipping $name (${#photos[@]} photos, fewer than $MIN_PHOTOS)"
        continue
    fi
    for p in "${photos[@]}"; do
        rel="${p#"$folder"/}"
        mkdir -p "$build/$name/$(dirname "$rel")"
        cp "$p" "$build/$name/$rel"
    done
    echo "setup-data: $name: ${#photos[@]} photos"
done
cat > "$build/SOURCE.txt" <<EOF
Photos from the Debian package tuxpaint-stamps-default $version (Tux Paint stamps; see
/usr/share/doc/tuxpaint-stamps-default/copyright in that package for authors and licences).
Laid out by scripts/setup-data.sh: one folder per concept, PNG photos only.
EOF
echo "$stamp" > "$build/.complete"

mkdir -p "$DATA"
rm -rf "$OUT.old"
[ -e "$OUT" ] && mv "$OUT" "$OUT.old"
mv "$build" "$OUT"
rm -rf "$OUT.old"
echo "setup-data: done: $(find "$OUT" -name '*.png' | wc -l) photos in $(find "$OUT" -mindepth 1 -maxdepth 1 -type d | wc -l) concepts under $OUT"
