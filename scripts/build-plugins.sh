#!/usr/bin/env bash
# Builds every plugin crate (plugins/* and tests/plugins/*) as a wasm32-wasip2
# component and lays each out as an installable package:
#   target/plugins/<id>/plugin.toml   (with the component's sha256 pinned)
#   target/plugins/<id>/<component>.wasm
# Test-only plugins go to target/test-plugins/<id>/.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-wasip2 >/dev/null 2>&1 || rustup target add wasm32-wasip2

crates=()
for dir in plugins/*/ tests/plugins/*/; do
  [ -f "$dir/Cargo.toml" ] && [ -f "$dir/plugin.toml" ] || continue
  crates+=("$dir")
done
args=()
for dir in "${crates[@]}"; do
  args+=(-p "$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$dir/Cargo.toml" | head -n1)")
done
cargo build --quiet --profile plugin --target wasm32-wasip2 "${args[@]}"
# Components come from cargo's target dir (CARGO_TARGET_DIR if set); packages go to ./target.
built="${CARGO_TARGET_DIR:-target}/wasm32-wasip2/plugin"

for dir in "${crates[@]}"; do
  dir=${dir%/}
  id=$(sed -n 's/^id *= *"\(.*\)"/\1/p' "$dir/plugin.toml" | head -n1)
  component=$(sed -n 's/^component *= *"\(.*\)"/\1/p' "$dir/plugin.toml" | head -n1)
  case "$dir" in tests/*) out="target/test-plugins/$id" ;; *) out="target/plugins/$id" ;; esac
  mkdir -p "$out"
  cp "$built/$component" "$out/$component"
  digest=$(sha256sum "$out/$component" | cut -d' ' -f1)
  { grep -v '^sha256 *=' "$dir/plugin.toml" | awk -v d="$digest" '/^component *=/ {print; print "sha256 = \"" d "\""; next} {print}'; } > "$out/plugin.toml"
  echo "packaged $id -> $out ($(wc -c < "$out/$component") bytes, sha256 ${digest:0:12})"
done
