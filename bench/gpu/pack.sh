#!/usr/bin/env bash
# Packs, on this machine, what bench/gpu/run.sh needs on the lent GPU machine
# (the `device` tool's nvidia-h200), which has Python, torch and CUDA but no
# Node. A device call carries the working tree plus named ignored paths, 64
# MiB in all, and the tree alone is ~25 MB, so the native parts travel
# xz-compressed in two loads, one per call:
#   .gpu/segscope.tar.xz  stripped node, the benchmarks bundled into two .mjs
#                         files (esbuild), Dawn's linux-x64 dawn.node, and
#                         onnxruntime-node's JavaScript (~28 MB);
#   .gpu-ort/ort.tar.xz   onnxruntime-node's native library and binding (~13 MB);
#   .gl/*.deb             the Vulkan/EGL loaders, unpacked there only when the
#                         machine has none (the device tool's README).
# Usage: bash bench/gpu/pack.sh   (then see bench/gpu/run.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

app="$stage/segscope/app"
mkdir -p "$app/node_modules/webgpu/dist/linux-x64" "$app/node_modules/onnxruntime-node" "$stage/ort/app/node_modules/onnxruntime-node"
cp "$(command -v node)" "$stage/segscope/node"
strip "$stage/segscope/node"
# ort-child.mjs lands next to e2e.mjs, where src/cli/ort.ts looks for it.
npx --no-install esbuild bench/e2e.ts src/cli/ort-child.ts --bundle --platform=node --format=esm --target=node20 \
  --outdir="$app" --entry-names='[name]' --out-extension:.js=.mjs \
  --external:webgpu --external:onnxruntime-node --external:sharp --log-level=warning
cp node_modules/webgpu/package.json node_modules/webgpu/index.js "$app/node_modules/webgpu/"
cp node_modules/webgpu/dist/linux-x64/dawn.node "$app/node_modules/webgpu/dist/linux-x64/"
cp -r node_modules/onnxruntime-common "$app/node_modules/"
cp -r node_modules/onnxruntime-node/package.json node_modules/onnxruntime-node/dist "$app/node_modules/onnxruntime-node/"
mkdir -p "$stage/ort/app/node_modules/onnxruntime-node/bin/napi-v6/linux"
cp -r node_modules/onnxruntime-node/bin/napi-v6/linux/x64 "$stage/ort/app/node_modules/onnxruntime-node/bin/napi-v6/linux/"

rm -rf .gpu .gpu-ort
mkdir -p .gpu .gpu-ort
tar -C "$stage/segscope" -cf - . | xz -9e -T0 >.gpu/segscope.tar.xz
tar -C "$stage/ort" -cf - . | xz -9e -T0 >.gpu-ort/ort.tar.xz

if [ ! -d .gl ] || [ -z "$(ls .gl/*.deb 2>/dev/null)" ]; then
  # As the device tool's README gives it: amd64 packages whatever this machine is.
  mkdir -p .gl /tmp/amd64/partial
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  # shellcheck disable=SC2086
  apt-get $o update >/dev/null
  # shellcheck disable=SC2086
  (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 >/dev/null)
fi
du -b .gpu/segscope.tar.xz .gpu-ort/ort.tar.xz .gl | awk '{ printf "%6.1f MB  %s\n", $1 / 1e6, $2 }'
echo "tracked files: $(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1 | awk '{ printf "%.1f MB", $1 / 1e6 }') (a call carries at most 67.1 MB)"
