#!/usr/bin/env bash
# The GPU test profile without Maven: the tests tagged "gpu" (JCudaGpuTest: per-kernel parity with
# the CPU kernels, a full train run against the CPU, infer parity, CUDA-event metering, out of
# memory failing one job), then the CPU-side suites of the module as a sanity check of the bundle.
set -euo pipefail
cd "$(dirname "$0")"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>/dev/null || true
exec jre/bin/java --enable-native-access=ALL-UNNAMED -cp 'lib/*' org.junit.platform.console.ConsoleLauncher execute \
  --disable-banner --details=tree --fail-if-no-tests --select-package=io.anneal.gpu --include-classname='.*Test' \
  --exclude-classname='.*KernelSourcesOnCpuTest|.*PtxMatchesSourcesTest' "$@"
