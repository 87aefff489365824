#!/usr/bin/env bash
# segscope's set-up in one command (`npm run setup`), from a fresh clone:
# the system packages that are missing, then the npm dependencies.
#
# On Debian 12 (bookworm) and newer, or Ubuntu, it installs with apt-get:
# - a Vulkan driver Dawn accepts: Mesa's lavapipe (software, any machine)
#   from Mesa 24 on. Debian 12's Mesa 22 is refused by Dawn, so there it
#   comes from bookworm-backports (Mesa 25). A machine with a GPU driver
#   keeps using its GPU; lavapipe is the fallback adapter;
# - libonnx-testdata (the ONNX conformance cases) and chromium (the HTML
#   report test), which `npm test` needs.
# Elsewhere it says what to install and goes on with npm.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)

installed_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true; }
major() { sed -E 's/^([0-9]+:)?([0-9]+).*/\2/' <<<"$1"; }

if command -v apt-get >/dev/null && command -v dpkg-query >/dev/null; then
  missing=()
  for p in libvulkan1 libonnx-testdata chromium; do
    [ -n "$(installed_version "$p")" ] || missing+=("$p")
  done
  mesa=$(installed_version mesa-vulkan-drivers)
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  need_mesa=0
  if [ -z "$mesa" ] || [ "$(major "$mesa")" -lt 24 ]; then need_mesa=1; fi
  if [ ${#missing[@]} -gt 0 ] || [ $need_mesa -eq 1 ]; then
    export DEBIAN_FRONTEND=noninteractive
    if [ $need_mesa -eq 1 ] && [ "$codename" = bookworm ] && ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
      echo "setup: adding bookworm-backports for Mesa >= 24 (Dawn refuses Debian 12's Mesa 22)"
      "${sudo[@]}" tee /etc/apt/sources.list.d/bookworm-backports.sources >/dev/null <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    fi
    "${sudo[@]}" apt-get update -q
    if [ $need_mesa -eq 1 ]; then
      if [ "$codename" = bookworm ]; then
        "${sudo[@]}" apt-get install -y -q -t bookworm-backports mesa-vulkan-drivers
      else
        "${sudo[@]}" apt-get install -y -q mesa-vulkan-drivers
      fi
    fi
    [ ${#missing[@]} -eq 0 ] || "${sudo[@]}" apt-get install -y -q "${missing[@]}"
  fi
else
  echo "setup: no apt-get here. segscope needs a Vulkan (or Metal/D3D12) driver that Dawn accepts"
  echo "       (on Linux without a GPU: Mesa >= 24 lavapipe); the tests also need the ONNX"
  echo "       backend test data (Debian: libonnx-testdata) and Chromium."
fi

# onnxruntime-node (the tests' reference, a dev dependency) would download
# CUDA libraries in its install script where npm runs install scripts.
ONNXRUNTIME_NODE_INSTALL=skip npm install
