package io.anneal.gpu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import org.junit.jupiter.api.Test;

class BackendsTest {
  @Test
  void withoutADriverJcudaFailsWithAClearMessageAndAutoFallsBackToCpu() {
    JCudaProbe.Result probe = JCudaProbe.probe();
    org.junit.jupiter.api.Assumptions.assumeFalse(probe.usable(), "this machine has a CUDA device");
    assertThat(probe.problem()).isPresent();
    assertThatThrownBy(() -> Backends.open("jcuda", 1, List.of()))
        .isInstanceOf(Backends.UnavailableException.class)
        .hasMessageContaining("--gpu-backend jcuda")
        .hasMessageContaining("use --gpu-backend auto or cpu");
    try (GpuBackend auto = Backends.open("auto", 2, List.of())) {
      assertThat(auto.name()).isEqualTo("cpu");
      assertThat(auto.devices()).hasSize(2).allSatisfy(d -> assertThat(d.gpuClass()).isEqualTo("cpu"));
    }
    // the probe result is remembered: a second call does not touch JCuda again
    assertThat(JCudaProbe.probe()).isSameAs(probe);
  }

  @Test
  void simulatedDevicesAreAlwaysLabelledSimulated() {
    try (GpuBackend sim = Backends.open("simulated", 1, Backends.parseSimulated("3:H100,2:L4"))) {
      assertThat(sim.devices()).hasSize(5).allSatisfy(d -> {
        assertThat(d.simulated()).isTrue();
        assertThat(d.name()).startsWith("Simulated ");
      });
      assertThat(sim.devices().get(3).gpuClass()).isEqualTo("L4");
    }
  }

  @Test
  void badBackendSpecsAreOperatorErrors() {
    assertThatThrownBy(() -> Backends.open("tpu", 1, List.of())).hasMessageContaining("unknown --gpu-backend");
    assertThatThrownBy(() -> Backends.parseSimulated("many:H100")).hasMessageContaining("N[:CLASS]");
    assertThatThrownBy(() -> Backends.open("simulated", 1, List.of())).hasMessageContaining("--simulated-gpus");
  }
}
