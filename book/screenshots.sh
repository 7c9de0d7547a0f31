#!/usr/bin/env bash
# Screenshots of three pages of the built book with headless Chromium (Debian: apt-get install
# chromium chromium-driver). Usage: book/screenshots.sh [HTML_DIR] [OUT_DIR]
# Defaults: book/_build/html (build it first with `make book`) and book/_build/screenshots.
# Also fails if a page references a CDN: MathJax must load from _static/mathjax.
set -euo pipefail
cd "$(dirname "$0")/.."
html="$(cd "${1:-book/_build/html}" && pwd)"
out="${2:-book/_build/screenshots}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
chromium_bin="$(command -v chromium || command -v chromium-browser)"

if grep -ril "cdn" --include='*.html' "$html"; then
    echo "error: the pages above reference a CDN" >&2
    exit 1
fi

for page in intro derivations/objective derivations/gradient; do
    profile="$(mktemp -d)"
    # --virtual-time-budget lets MathJax typeset before the screenshot is taken
    "$chromium_bin" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$profile" --hide-scrollbars --virtual-time-budget=15000 \
        --window-size=1280,1600 --screenshot="$out/$(basename "$page").png" "file://$html/$page.html" \
        2> /dev/null
    rm -rf "$profile"
    echo "$out/$(basename "$page").png"
done
