package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.anneal.gpu.GpuBackend;
import io.anneal.gpu.GpuDevice;
import io.anneal.gpu.RunControl;
import io.anneal.gpu.Workload;
import io.anneal.gpu.WorkloadException;
import io.anneal.gpu.WorkloadResult;
import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Backend faults become clear job outcomes through the whole service; the worker and device stay usable. */
class FaultMappingTest {
  @TempDir Path dir;

  /** A backend whose behaviour the job picks: ms 1 = device failure, 2 = out of memory, 3 = job error. */
  static final class FaultyBackend implements GpuBackend {
    final AtomicInteger runs = new AtomicInteger();

    @Override
    public String name() {
      return "cpu";
    }

    @Override
    public Set<String> kinds() {
      return Set.of("sleep");
    }

    @Override
    public List<GpuDevice> devices() {
      return List.of(new GpuDevice(0, "cpu", "fault injector", "FAKE-0", 1024, 1, "-", "-", false));
    }

    @Override
    public WorkloadResult run(int device, Workload w, RunControl control) throws WorkloadException {
      runs.incrementAndGet();
      long ms = w.longParam("ms", 0);
      if (ms == 1) throw new WorkloadException(WorkloadException.Reason.DEVICE_FAILURE, "launch failed (injected)", 5_000_000);
      if (ms == 2) throw new WorkloadException(WorkloadException.Reason.OUT_OF_MEMORY, "out of memory (injected)", 1_000_000);
      if (ms == 3) throw new WorkloadException(WorkloadException.Reason.JOB_ERROR, "bad input (injected)", 0);
      return new WorkloadResult(7_000_000, 7_000_000, 0, "", Map.of());
    }

    /** 700 MiB of the device's 1,024 are free: a job asking for more than 512 MiB cannot have it. */
    @Override
    public void reserve(int device, long bytes) throws WorkloadException {
      if (bytes > (512L << 20)) {
        throw new WorkloadException(WorkloadException.Reason.OUT_OF_MEMORY, "cannot reserve " + (bytes >> 20) + " MiB", 0);
      }
    }

    @Override
    public long freeMemoryBytes(int device) {
      return 700L << 20;
    }

    @Override
    public void close() {}
  }

  private static String submit(TestService s, long ms) {
    var r = s.post("/api/v1/jobs", TestService.DEMO_KEY, new JsonObject().put("kind", "sleep").put("gpus", 1)
        .put("maxSeconds", 30).put("params", new JsonObject().put("ms", ms)).encode());
    assertThat(r.statusCode()).isEqualTo(202);
    return s.json(r).getString("id");
  }

  @Test
  void faultsFailTheirJobAloneAreRetriedOnlyWhenNotTheJobsFaultAndAreStillBilledForWhatTheyUsed() throws Exception {
    FaultyBackend backend = new FaultyBackend();
    try (TestService s = TestService.start(dir, backend)) {
      String oom = submit(s, 2);
      s.await(Duration.ofSeconds(20), () -> "SETTLED".equals(s.job(oom).getString("state")));
      JsonObject j = s.job(oom);
      assertThat(j.getString("outcome")).isEqualTo("FAILED");
      assertThat(j.getString("error")).startsWith("OUT_OF_MEMORY");
      assertThat(j.getInteger("attempt")).isEqualTo(1);

      String bad = submit(s, 3);
      s.await(Duration.ofSeconds(20), () -> "SETTLED".equals(s.job(bad).getString("state")));
      assertThat(s.job(bad).getString("error")).startsWith("JOB_ERROR").contains("bad input");

      int before = backend.runs.get();
      String flaky = submit(s, 1);
      s.await(Duration.ofSeconds(30), () -> "SETTLED".equals(s.job(flaky).getString("state")));
      JsonObject f = s.job(flaky);
      assertThat(f.getString("outcome")).isEqualTo("FAILED");
      assertThat(f.getString("error")).startsWith("DEVICE_FAILURE").contains("after 3 retries");
      assertThat(backend.runs.get() - before).as("first run + 3 retries").isEqualTo(4);

      // a job whose memory cannot be reserved fails before it runs
      int runsBefore = backend.runs.get();
      var big = s.post("/api/v1/jobs", TestService.DEMO_KEY, new JsonObject().put("kind", "sleep").put("gpus", 1)
          .put("memoryMiB", 600).put("maxSeconds", 30).put("params", new JsonObject().put("ms", 50)).encode());
      String bigId = s.json(big).getString("id");
      s.await(Duration.ofSeconds(20), () -> "SETTLED".equals(s.job(bigId).getString("state")));
      assertThat(s.job(bigId).getString("error")).startsWith("OUT_OF_MEMORY").contains("cannot reserve 600 MiB");
      assertThat(backend.runs.get()).isEqualTo(runsBefore);
      // free device memory, as the backend measures it, shows in the fleet view
      s.await(Duration.ofSeconds(15), () -> Long.valueOf(700).equals(s.json(s.get("/api/v1/gpus", null))
          .getJsonArray("gpus").getJsonObject(0).getLong("freeMemoryMiB")));

      // the device still takes work, and a good job is billed for its metered time
      String ok = submit(s, 50);
      s.await(Duration.ofSeconds(20), () -> "SETTLED".equals(s.job(ok).getString("state")));
      assertThat(s.job(ok).getString("outcome")).isEqualTo("SUCCEEDED");
    }
  }

  /** Two devices; device 0 is broken: every run on it is a device failure. */
  static final class OneBrokenDevice implements GpuBackend {
    final AtomicInteger runsOnBroken = new AtomicInteger();
    /** False once the device is "replaced". */
    final java.util.concurrent.atomic.AtomicBoolean broken = new java.util.concurrent.atomic.AtomicBoolean(true);

    @Override
    public String name() {
      return "cpu";
    }

    @Override
    public Set<String> kinds() {
      return Set.of("sleep");
    }

    @Override
    public List<GpuDevice> devices() {
      return List.of(new GpuDevice(0, "cpu", "broken", "FAKE-0", 1024, 1, "-", "-", false),
          new GpuDevice(1, "cpu", "healthy", "FAKE-1", 1024, 1, "-", "-", false));
    }

    @Override
    public WorkloadResult run(int device, Workload w, RunControl control) throws WorkloadException {
      if (device == 0 && broken.get()) {
        runsOnBroken.incrementAndGet();
        throw new WorkloadException(WorkloadException.Reason.DEVICE_FAILURE, "Xid 79: GPU has fallen off the bus (injected)", 0);
      }
      return new WorkloadResult(3_000_000, 3_000_000, 0, "", Map.of());
    }

    @Override
    public void close() {}
  }

  /** A quarantine the store could not take when it began is written again until it is: it must outlive a restart. */
  @Test
  void aQuarantineThatCouldNotBeStoredIsStoredOnceTheStoreTakesIt() throws Exception {
    OneBrokenDevice backend = new OneBrokenDevice();
    // the worker's refused writes, as it logs them
    java.util.concurrent.atomic.AtomicInteger refused = new java.util.concurrent.atomic.AtomicInteger();
    java.util.logging.Logger workerLog = java.util.logging.Logger.getLogger(io.anneal.worker.WorkerVerticle.class.getName());
    java.util.logging.Handler counter = new java.util.logging.Handler() {
      @Override
      public void publish(java.util.logging.LogRecord r) {
        if (r.getMessage() != null && r.getMessage().contains("not recorded yet")) refused.incrementAndGet();
      }

      @Override
      public void flush() {}

      @Override
      public void close() {}
    };
    workerLog.addHandler(counter);
    try (TestService s = TestService.start(dir, backend)) {
      try (var c = s.service.database().connection(); var st = c.createStatement()) {
        st.execute("ALTER TABLE device_quarantine RENAME TO device_quarantine_away"); // every write to it fails
      }
      for (int i = 0; i < 2; i++) {
        String id = submit(s, 10);
        s.await(Duration.ofSeconds(30), () -> "SETTLED".equals(s.job(id).getString("state")));
      }
      s.await(Duration.ofSeconds(10), () -> s.gpu(0).getBoolean("quarantined", false));
      s.await(Duration.ofSeconds(10), () -> refused.get() >= 2); // the first write and a retry, both refused
      try (var c = s.service.database().connection(); var st = c.createStatement()) {
        st.execute("ALTER TABLE device_quarantine_away RENAME TO device_quarantine");
      }
      s.await(Duration.ofSeconds(10), () -> {
        try (var c = s.service.database().connection()) {
          return io.anneal.store.Quarantines.of(c, s.service.nodeId()).containsKey(0);
        } catch (java.sql.SQLException e) {
          throw new IllegalStateException(e);
        }
      });
    } finally {
      workerLog.removeHandler(counter);
    }
    try (TestService s = TestService.start(dir, backend)) {
      s.await(Duration.ofSeconds(10), () -> s.gpu(0).getBoolean("quarantined", false));
      assertThat(s.gpu(0).getString("quarantineReason")).contains("Xid 79");
    }
  }

  @Test
  void aDeviceThatFailsForSeveralJobsIsQuarantinedShownAndNoLongerUsed() throws Exception {
    OneBrokenDevice backend = new OneBrokenDevice();
    try (TestService s = TestService.start(dir, backend)) {
      // one job failing over and over on the broken device does not condemn it alone (it could be the job)...
      String first = submit(s, 10);
      s.await(Duration.ofSeconds(30), () -> "SETTLED".equals(s.job(first).getString("state")));
      // ...but a second job failing there too does: quarantined, and the retry runs on the healthy device
      String second = submit(s, 10);
      s.await(Duration.ofSeconds(30), () -> "SETTLED".equals(s.job(second).getString("state")));
      assertThat(backend.runsOnBroken.get()).isGreaterThanOrEqualTo(3);

      JsonObject fleet = s.json(s.get("/api/v1/gpus", null));
      JsonObject broken = fleet.getJsonArray("gpus").stream().map(o -> (JsonObject) o)
          .filter(g -> g.getInteger("index") == 0).findFirst().orElseThrow();
      assertThat(broken.getBoolean("quarantined")).isTrue();
      assertThat(broken.getString("quarantineReason")).contains("device failures in a row from 2 jobs").contains("Xid 79");
      assertThat(fleet.getInteger("total")).isEqualTo(1);
      assertThat(s.job(second).getString("outcome")).isEqualTo("SUCCEEDED");

      int brokenRuns = backend.runsOnBroken.get();
      for (int i = 0; i < 3; i++) {
        String next = submit(s, 10);
        s.await(Duration.ofSeconds(30), () -> "SETTLED".equals(s.job(next).getString("state")));
        assertThat(s.job(next).getString("outcome")).isEqualTo("SUCCEEDED");
        assertThat(s.job(next).getJsonArray("devices").getList()).containsExactly(1);
      }
      assertThat(backend.runsOnBroken.get()).as("nothing ran on the quarantined device").isEqualTo(brokenRuns);
    }

    // the quarantine outlives a restart: the device stays out of service, with its reason
    try (TestService s = TestService.start(dir, backend)) {
      s.await(Duration.ofSeconds(10), () -> s.gpu(0).getBoolean("quarantined", false));
      assertThat(s.gpu(0).getString("quarantineReason")).contains("Xid 79");
      assertThat(s.json(s.get("/api/v1/gpus", null)).getInteger("total")).isEqualTo(1);
      int brokenRuns = backend.runsOnBroken.get();
      String afterRestart = submit(s, 10);
      s.await(Duration.ofSeconds(30), () -> "SETTLED".equals(s.job(afterRestart).getString("state")));
      assertThat(s.job(afterRestart).getJsonArray("devices").getList()).containsExactly(1);
      assertThat(backend.runsOnBroken.get()).isEqualTo(brokenRuns);

      // the GPU is replaced; an operator (only an admin) lifts the quarantine and it serves jobs again
      backend.broken.set(false);
      String lift = "/api/v1/gpus/" + s.gpu(0).getString("nodeId") + "/0/quarantine";
      assertThat(s.delete(lift, TestService.DEMO_KEY).statusCode()).isEqualTo(403);
      assertThat(s.delete(lift, TestService.ADMIN_KEY).statusCode()).isEqualTo(204);
      assertThat(s.delete(lift, TestService.ADMIN_KEY).statusCode()).as("not quarantined any more").isEqualTo(404);
      s.await(Duration.ofSeconds(10), () -> !s.gpu(0).getBoolean("quarantined", false));
      assertThat(s.json(s.get("/api/v1/gpus", null)).getInteger("total")).isEqualTo(2);
      String onZero = submit(s, 10);
      s.await(Duration.ofSeconds(30), () -> "SETTLED".equals(s.job(onZero).getString("state")));
      assertThat(s.job(onZero).getString("outcome")).isEqualTo("SUCCEEDED");
      assertThat(s.job(onZero).getJsonArray("devices").getList()).containsExactly(0);
    }
  }
}
