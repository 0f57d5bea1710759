#!/usr/bin/env bash
# Download text8 (Matt Mahoney's first 10^8 bytes of cleaned English Wikipedia) for configs/text8.yaml.
# Usage: bash scripts/download_text8.sh [OUTPUT_PATH]   (default data/text8)
set -euo pipefail
out=${1:-data/text8}
url=${TEXT8_URL:-http://mattmahoney.net/dc/text8.zip}
if [ -s "$out" ]; then echo "$out already exists"; exit 0; fi
mkdir -p "$(dirname "$out")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if command -v curl >/dev/null; then curl -fL --retry 3 -o "$tmp/text8.zip" "$url"
else wget -O "$tmp/text8.zip" "$url"; fi
python3 -c "import zipfile,sys; zipfile.ZipFile(sys.argv[1]).extract('text8', sys.argv[2])" "$tmp/text8.zip" "$tmp"
size=$(wc -c < "$tmp/text8")
[ "$size" -eq 100000000 ] || { echo "text8 has $size bytes, expected 100000000" >&2; exit 1; }
mv "$tmp/text8" "$out"
echo "wrote $out (100,000,000 bytes)"
