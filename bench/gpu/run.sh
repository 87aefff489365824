#!/usr/bin/env bash
# The benchmarks on a real GPU (the `device` tool's nvidia-h200), made ready
# by bench/gpu/pack.sh. Runs, in the repository root there:
#   - PyTorch's forward pass of the full-size DeepLabv3+ ResNet-101 and
#     ResNet-50 (fp32, TF32, fp16 autocast; bench/gpu/torch_reference.py),
#     which also exports them to ONNX;
#   - bench/e2e.ts on those two models and the default model: segscope at f32
#     and f16 against onnxruntime-node CPU and WebGPU, in one run each.
# Results go to $OUT (what the device tool brings back): e2e-*.json,
# torch.json, env.txt (GPU, driver, adapter) and run.log.
#
# One call when the tree and all three loads fit the tool's 64 MiB:
#   run: bash bench/gpu/run.sh all      carry: [".gl", ".gpu", ".gpu-ort"]
# Otherwise two calls in a row (the machine stays warm between them, and
# /tmp/segscope-gpu with it):
#   run: bash bench/gpu/run.sh prepare  carry: [".gl", ".gpu"]
#   run: bash bench/gpu/run.sh bench    carry: [".gpu-ort"]
# Locally, `OUT=/tmp/out bash bench/gpu/run.sh all` is a dry run on
# whatever adapter is here (lavapipe), PyTorch on the CPU ($PYTHON: a
# python3 with torch, torchvision and numpy).
set -euo pipefail
cd "$(dirname "$0")/../.."
phase=${1:-all}
out=${OUT:?set OUT to the folder for the results}
home=/tmp/segscope-gpu
runs=${RUNS:-10}
mkdir -p "$out"
exec > >(tee -a "$out/run.log") 2>&1

prepare() {
  # The loaders the tool's README prescribes, when the machine has none.
  if ! ldconfig -p | grep -q libvulkan; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
  fi
  if [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
    echo "VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json" >"$home.env"
  fi
  mkdir -p "$home"
  xz -dc .gpu/segscope.tar.xz | tar -C "$home" -xf -
  { nvidia-smi || true; "$home/node" -e "
      const { create } = require('$home/app/node_modules/webgpu/dist/linux-x64/dawn.node');
      create([]).requestAdapter().then((a) => {
        const i = a ? a.info : {};
        console.log('WebGPU adapter:', [i.vendor, i.architecture, i.device, i.description].join(' | '), '| features:', [...(a ? a.features : [])].join(' '));
      });
    "; } >"$out/env.txt" 2>&1 || true
  "${PYTHON:-python3}" bench/gpu/torch_reference.py "$home/models" "$out/torch.json" --runs "$runs"
}

bench() {
  [ -x "$home/node" ] || { echo "run.sh: $home is missing: run the 'prepare' phase first (the machine was given back?)"; exit 1; }
  [ -f .gpu-ort/ort.tar.xz ] && xz -dc .gpu-ort/ort.tar.xz | tar -C "$home" -xf -
  # shellcheck disable=SC1090
  [ -f "$home.env" ] && set -a && . "$home.env" && set +a
  export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
  for model in "$home/models/deeplabv3plus_r101_os16.onnx" "$home/models/deeplabv3plus_r50_os16.onnx" weights/deeplabv3plus_scenes.onnx; do
    size=513
    case $model in *scenes*) size=257 ;; esac
    "$home/node" "$home/app/e2e.mjs" "$model" --size "$size" --runs "$runs" --ort cpu,webgpu --precision f32,f16
  done
  cp "$home"/app/results/e2e-*.json "$out/"
}

case $phase in
  prepare) prepare ;;
  bench) bench ;;
  all) prepare && bench ;;
  *) echo "usage: bash bench/gpu/run.sh [all|prepare|bench]"; exit 2 ;;
esac
