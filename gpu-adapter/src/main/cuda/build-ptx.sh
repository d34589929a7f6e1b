#!/usr/bin/env bash
# Rebuilds the committed PTX from the CUDA sources. The Maven build itself needs no CUDA toolkit.
#
# nvcc 13 stamps its PTX with ISA 9.0, which only CUDA 13 drivers load. The kernels use nothing newer
# than PTX ISA 7.0 (CUDA 11.0), so the header is lowered to that: any driver since CUDA 11.0 that
# knows the GPU (A100 with R450+, H100/H200 with R520+) can JIT them. ptxas then assembles the result
# for sm_80 and sm_90, which fails if any instruction needs a newer ISA than the header claims.
#   OUT=dir   write there instead of src/main/resources (the PTX-matches-sources test does)
#   NVCC=...  another nvcc;  PTX_ISA=x.y  another header version
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${OUT:-$here/../resources/io/anneal/gpu/ptx}"
NVCC="${NVCC:-nvcc}"
PTX_ISA="${PTX_ISA:-7.0}"
mkdir -p "$out"
for cu in "$here"/*.cu; do
  name="$(basename "$cu" .cu)"
  "$NVCC" -ptx -arch=compute_80 -O3 -o "$out/$name.nvcc.ptx" "$cu"
  sed -E "s/^\.version [0-9]+\.[0-9]+$/.version $PTX_ISA/" "$out/$name.nvcc.ptx" > "$out/$name.ptx"
  rm "$out/$name.nvcc.ptx"
  if command -v ptxas > /dev/null; then
    for arch in sm_80 sm_90; do
      ptxas -arch="$arch" -o /dev/null "$out/$name.ptx"
    done
  else
    echo "ptxas not found: $name.ptx was not assembled (run this where the CUDA toolkit is installed)" >&2
  fi
  echo "built $out/$name.ptx (PTX ISA $PTX_ISA)"
done
