#!/usr/bin/env bash
# Builds the bundle that runs Anneal's GPU tests and GPU benchmarks on a lent GPU machine, whose
# image has an NVIDIA driver and PyTorch but no JDK: a jlinked JRE, the gpu-adapter jars (main and
# tests), JCuda with only its driver-API native library, AssertJ and the JUnit console launcher,
# plus the scripts below. Fails if the bundle exceeds the device's 64 MiB.
#
#   gpu-adapter/device/pack.sh            # -> gpu-adapter/target/anneal-gpu-bundle.tar.gz
#
# On the device:  tar xzf anneal-gpu-bundle.tar.gz && cd anneal-gpu && ./run-gpu-tests.sh && ./run-gpu-bench.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
module="$(cd "$here/.." && pwd)"
root="$(cd "$module/.." && pwd)"
out="$module/target/anneal-gpu"
limit=$((64 * 1024 * 1024))
MVN="${MVN:-mvn -B -q}"

$MVN -f "$root/pom.xml" -pl gpu-adapter -am -DskipTests install
$MVN -f "$module/pom.xml" org.apache.maven.plugins:maven-dependency-plugin:3.11.0:copy \
  -Dartifact=org.junit.platform:junit-platform-console-standalone:1.14.4 -DoutputDirectory="$module/target/device-deps"
$MVN -f "$module/pom.xml" org.apache.maven.plugins:maven-dependency-plugin:3.11.0:copy-dependencies \
  -DincludeGroupIds=org.jcuda,org.assertj -DoutputDirectory="$module/target/device-deps"

rm -rf "$out" "$module/target/anneal-gpu-bundle.tar.gz"
mkdir -p "$out/lib"
cp "$module"/target/anneal-gpu-adapter-*.jar "$out/lib/"
rm -f "$out"/lib/*-sources.jar "$out"/lib/*-tests.jar
(cd "$module/target/test-classes" && jar cf "$out/lib/anneal-gpu-adapter-tests.jar" .)
cp "$module"/target/device-deps/jcuda-[0-9]*.jar "$module"/target/device-deps/assertj-core-*.jar \
  "$module"/target/device-deps/junit-platform-console-standalone-*.jar "$out/lib/"
# JCuda's natives jar carries the runtime, NVRTC and PTX-compiler bindings too (~25 MB); Anneal
# uses the driver API only, so only libJCudaDriver is kept.
natives="$(ls "$module"/target/device-deps/jcuda-natives-*-linux-x86_64.jar)"
work="$(mktemp -d)"
(cd "$work" && unzip -q "$natives" 'lib/libJCudaDriver-*' && jar cf "$out/lib/$(basename "$natives")" lib)
rm -rf "$work"

JAVA_HOME="${JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")}"
"$JAVA_HOME/bin/jlink" --add-modules java.base,java.logging,java.management,jdk.unsupported,jdk.zipfs \
  --strip-debug --no-header-files --no-man-pages --compress=2 --output "$out/jre"

cp "$here/run-gpu-tests.sh" "$here/run-gpu-bench.sh" "$here/torch_bench.py" "$out/"
chmod +x "$out"/*.sh
tar -C "$module/target" -czf "$module/target/anneal-gpu-bundle.tar.gz" anneal-gpu
size=$(du -sb "$out" | cut -f1)
packed=$(stat -c %s "$module/target/anneal-gpu-bundle.tar.gz")
echo "bundle: $out ($((size / 1024)) KiB unpacked, $((packed / 1024)) KiB packed; limit $((limit / 1024)) KiB)"
if [ "$size" -gt "$limit" ]; then
  echo "the bundle is larger than the device's 64 MiB" >&2
  exit 1
fi
