#!/usr/bin/env bash
# Builds the vigie image FROM scratch: the release binary, the shared libraries it links
# (glibc, libgcc_s, libm) and the CA bundle. No registry or base image needed.
#   scripts/build-image.sh [TAG]        (default vigie:local)
set -euo pipefail
cd "$(dirname "$0")/.."
tag="${1:-vigie:local}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/vigie/target}"
target="$CARGO_TARGET_DIR"
cargo build --release
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
strip -o "$ctx/vigie" "$target/release/vigie"
for lib in $(ldd "$target/release/vigie" | awk '/=>/ {print $3} /ld-linux/ {print $1}' | grep '^/'); do
  mkdir -p "$ctx$(dirname "$lib")"
  cp "$lib" "$ctx$lib"
done
mkdir -p "$ctx/etc/ssl/certs" "$ctx/data"
cp /etc/ssl/certs/ca-certificates.crt "$ctx/etc/ssl/certs/"
printf 'FROM scratch\nCOPY . /\nEXPOSE 9090\nENTRYPOINT ["/vigie"]\nCMD ["run", "--data-dir", "/data"]\n' > "$ctx/Dockerfile"
docker build -q -t "$tag" "$ctx"
echo "built $tag"
