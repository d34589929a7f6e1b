#!/usr/bin/env bash
# Side by side on the same GPU: our SGEMM at 4096^3 FP32 vs torch.matmul with TF32 off, and one
# Adam training step of the same MLP in Anneal and in PyTorch. Prints one line per figure.
set -euo pipefail
cd "$(dirname "$0")"
N="${N:-4096}"
LAYERS="${LAYERS:-784,2048,2048,10}"
BATCH="${BATCH:-512}"
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv 2>/dev/null || true
java() { jre/bin/java --enable-native-access=ALL-UNNAMED -cp 'lib/*' "$@"; }
java io.anneal.gpu.GpuBench sgemm "$N" 20
java io.anneal.gpu.GpuBench mlp "$LAYERS" "$BATCH" 200
python3 torch_bench.py sgemm "$N" 20
python3 torch_bench.py mlp "$LAYERS" "$BATCH" 200
