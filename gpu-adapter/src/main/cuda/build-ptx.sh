#!/usr/bin/env bash
# Rebuilds the committed PTX from the CUDA sources. The build itself needs no CUDA toolkit.
# PTX for compute_80 JITs on A100, H100 and H200 with a driver that supports its PTX ISA version
# (nvcc 13 emits ISA 9.0, which needs a CUDA 13 driver); set NVCC to an older nvcc for older drivers.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/../resources/io/anneal/gpu/ptx"
NVCC="${NVCC:-nvcc}"
mkdir -p "$out"
for cu in "$here"/*.cu; do
  name="$(basename "$cu" .cu)"
  "$NVCC" -ptx -arch=compute_80 -O3 -o "$out/$name.ptx" "$cu"
  echo "built $out/$name.ptx"
done
