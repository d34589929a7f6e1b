package io.anneal.gpu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The CPU train and infer workloads: they learn, and the artifact reproduces what was learned. */
class MlpTest {
  private final ModelStore models = ModelStore.inMemory();
  private final CpuBackend cpu = new CpuBackend(1, models);

  private WorkloadResult train(Map<String, Object> params, List<Map<String, Object>> progress) throws Exception {
    RunControl control = new RunControl() {
      @Override
      public void progress(Map<String, Object> event) {
        progress.add(event);
      }

      @Override
      public boolean cancelled() {
        return false;
      }
    };
    return cpu.run(0, new Workload("job1", "tenant-a", "train", params, Duration.ofSeconds(60)), control);
  }

  @Test
  void trainingOnSpiralsReachesNinetyPercentAndInferReproducesIt() throws Exception {
    List<Map<String, Object>> progress = new ArrayList<>();
    WorkloadResult r = train(Map.of("dataset", "spirals", "samples", 100, "layers", List.of(2, 64, 64, 3),
        "activation", "relu", "optimizer", "adam", "learningRate", 0.01, "epochs", 200, "batchSize", 32, "seed", 3),
        progress);
    double accuracy = ((Number) r.summary().get("accuracy")).doubleValue();
    assertThat(accuracy).as("training accuracy on 3 spirals").isGreaterThanOrEqualTo(0.90);
    assertThat(r.summary()).containsEntry("modelId", "m_job1");
    assertThat(r.deviceNanos()).isPositive();
    // loss is streamed, at most MAX_PROGRESS_EVENTS times, and it fell
    assertThat(progress).isNotEmpty().hasSizeLessThanOrEqualTo(MlpWorkloads.MAX_PROGRESS_EVENTS);
    double first = ((Number) progress.get(0).get("loss")).doubleValue();
    double last = ((Number) progress.get(progress.size() - 1).get("loss")).doubleValue();
    assertThat(last).isLessThan(first / 3);

    // infer with the artifact on the same points reproduces the training accuracy
    Datasets.Data d = Datasets.spirals(100, 3, 3);
    List<List<Double>> inputs = new ArrayList<>();
    for (int i = 0; i < d.rows(); i++) inputs.add(List.of((double) d.x()[i * 2], (double) d.x()[i * 2 + 1]));
    WorkloadResult inf = cpu.run(0, new Workload("job2", "tenant-a", "infer", Map.of("modelId", "m_job1", "inputs", inputs),
        Duration.ofSeconds(10)), RunControl.NONE);
    @SuppressWarnings("unchecked")
    List<Integer> classes = (List<Integer>) inf.summary().get("classes");
    int ok = 0;
    for (int i = 0; i < d.rows(); i++) ok += classes.get(i) == d.y()[i] ? 1 : 0;
    assertThat(ok / (double) d.rows()).isEqualTo(accuracy, org.assertj.core.data.Offset.offset(1e-4));
  }

  @Test
  void sgdOnBlobsWithTanhLearnsToo() throws Exception {
    WorkloadResult r = train(Map.of("dataset", "blobs", "samples", 60, "layers", List.of(2, 16, 4), "activation", "tanh",
        "optimizer", "sgd", "learningRate", 0.2, "epochs", 60, "batchSize", 16, "seed", 9), new ArrayList<>());
    assertThat(((Number) r.summary().get("accuracy")).doubleValue()).isGreaterThanOrEqualTo(0.95);
  }

  @Test
  void trainingIsDeterministicForASeed() throws Exception {
    Map<String, Object> p = Map.of("dataset", "spirals", "layers", List.of(2, 8, 3), "epochs", 5, "seed", 5);
    WorkloadResult a = train(p, new ArrayList<>());
    WorkloadResult b = train(p, new ArrayList<>());
    assertThat(a.digest()).isEqualTo(b.digest());
  }

  @Test
  void inlineDataTrainsAndModelsBelongToTheirTenant() throws Exception {
    List<List<Double>> x = List.of(List.of(0.0, 0.0), List.of(0.0, 1.0), List.of(1.0, 0.0), List.of(1.0, 1.0));
    WorkloadResult r = train(Map.of("dataset", "inline", "data", Map.of("x", x, "y", List.of(0, 1, 1, 0)),
        "layers", List.of(2, 16, 2), "activation", "tanh", "epochs", 400, "batchSize", 4, "learningRate", 0.05, "seed", 2),
        new ArrayList<>());
    assertThat(((Number) r.summary().get("accuracy")).doubleValue()).as("XOR").isEqualTo(1.0);
    assertThatThrownBy(() -> cpu.run(0, new Workload("j", "tenant-b", "infer", Map.of("modelId", "m_job1", "inputs", x),
        Duration.ofSeconds(5)), RunControl.NONE))
        .isInstanceOfSatisfying(WorkloadException.class, e -> {
          assertThat(e.reason()).isEqualTo(WorkloadException.Reason.JOB_ERROR);
          assertThat(e.getMessage()).contains("no model m_job1");
        });
  }

  @Test
  void badTrainingParametersAreJobErrors() {
    assertThatThrownBy(() -> train(Map.of("dataset", "spirals", "layers", List.of(3, 8, 3)), new ArrayList<>()))
        .hasMessageContaining("3 inputs but the data has 2 features");
    assertThatThrownBy(() -> train(Map.of("dataset", "moons", "layers", List.of(2, 3)), new ArrayList<>()))
        .hasMessageContaining("dataset must be");
    assertThatThrownBy(() -> train(Map.of("dataset", "spirals", "layers", List.of(2, 3), "optimizer", "lbfgs"),
        new ArrayList<>())).hasMessageContaining("sgd or adam");
  }

  @Test
  void aModelArtifactRoundTrips() {
    Mlp net = new Mlp(new int[] {2, 5, 3}, Mlp.Activation.RELU, 1);
    Mlp back = Mlp.fromBytes(net.toBytes());
    float[] x = {0.3f, -0.7f};
    assertThat(back.predict(x, 1)).containsExactly(net.predict(x, 1));
    assertThatThrownBy(() -> Mlp.fromBytes(new byte[] {1, 2, 3, 4, 5})).isInstanceOf(IllegalArgumentException.class);
  }

  @Test
  void aNetworkLargerThanTheDeviceFailsWithOutOfMemoryBeforeAllocatingAndTheDeviceGoesOn() throws Exception {
    // ~9 layers of 4,096 units on batches of 65,536: tens of GiB, far beyond this device's share of the heap
    List<Integer> layers = new ArrayList<>(List.of(2));
    for (int i = 0; i < 8; i++) layers.add(4096);
    layers.add(3);
    Map<String, Object> huge = Map.of("dataset", "spirals", "samples", 30_000, "layers", layers, "batchSize", 65_536,
        "epochs", 1);
    long need = MlpWorkloads.estimateBytes(layers.stream().mapToInt(Integer::intValue).toArray(), 65_536, "adam");
    assertThat(need).isGreaterThan(cpu.devices().get(0).memoryMiB() << 20);
    assertThatThrownBy(() -> cpu.run(0, new Workload("big", "tenant-a", "train", huge, Duration.ofSeconds(60)), RunControl.NONE))
        .isInstanceOfSatisfying(WorkloadException.class, e -> {
          assertThat(e.reason()).isEqualTo(WorkloadException.Reason.OUT_OF_MEMORY);
          assertThat(e.getMessage()).contains("MiB").contains("lower batchSize");
        });
    WorkloadResult ok = train(Map.of("dataset", "blobs", "samples", 30, "layers", List.of(2, 8, 3), "epochs", 5), new ArrayList<>());
    assertThat(ok.summary()).containsKey("modelId");
  }
}
