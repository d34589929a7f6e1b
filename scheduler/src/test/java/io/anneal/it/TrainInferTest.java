package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A tenant trains a model, streams its loss, and runs inference with it, through the service. */
class TrainInferTest {
  @TempDir Path dir;

  @Test
  void trainStreamsLossThenInferUsesTheArtifact() throws Exception {
    try (TestService s = TestService.start(dir); TestService.Ws ws = s.ws(TestService.DEMO_KEY)) {
      ws.nextOfType("authenticated", Duration.ofSeconds(5));
      JsonObject train = new JsonObject().put("kind", "train").put("gpus", 1).put("maxSeconds", 120)
          .put("params", new JsonObject().put("dataset", "blobs").put("samples", 50).put("layers", new JsonArray().add(2).add(16).add(3))
              .put("epochs", 40).put("batchSize", 16).put("seed", 4));
      ws.send(new JsonObject().put("type", "submit").put("requestId", "t").put("subscribe", true).put("job", train));
      String jobId = ws.nextOfType("accepted", Duration.ofSeconds(10)).getString("jobId");
      int progress = 0;
      while (true) {
        JsonObject m = ws.nextOfType("job", Duration.ofSeconds(60));
        if (m.containsKey("progress")) {
          assertThat(m.getJsonObject("progress").getDouble("loss")).isNotNegative();
          progress++;
        }
        if ("SETTLED".equals(m.getString("state"))) break;
      }
      assertThat(progress).isPositive();
      JsonObject job = s.job(jobId);
      assertThat(job.getString("outcome")).isEqualTo("SUCCEEDED");
      JsonObject result = job.getJsonObject("result");
      assertThat(result.getDouble("accuracy")).isGreaterThanOrEqualTo(0.95);
      String modelId = result.getString("modelId");
      assertThat(job.getLong("chargeUact")).isNotNull();

      JsonObject infer = new JsonObject().put("kind", "infer").put("gpus", 1).put("maxSeconds", 30)
          .put("params", new JsonObject().put("modelId", modelId)
              .put("inputs", new JsonArray().add(new JsonArray().add(2.0).add(0.0)).add(new JsonArray().add(-1.0).add(1.7))));
      var r = s.post("/api/v1/jobs", TestService.DEMO_KEY, infer.encode());
      assertThat(r.statusCode()).isEqualTo(202);
      String inferId = s.json(r).getString("id");
      s.await(Duration.ofSeconds(30), () -> "SETTLED".equals(s.job(inferId).getString("state")));
      JsonObject out = s.job(inferId).getJsonObject("result");
      // blob 0 is centred at (2, 0), blob 1 at (-1, 1.73)
      assertThat(out.getJsonArray("classes").getList()).containsExactly(0, 1);
      assertThat(out.getJsonArray("outputs")).hasSize(2);

      var bad = s.post("/api/v1/jobs", TestService.DEMO_KEY, new JsonObject().put("kind", "train").put("gpus", 1)
          .put("params", new JsonObject().put("layers", new JsonArray().add(2)).put("optimizer", "lbfgs")).encode());
      assertThat(bad.statusCode()).isEqualTo(422);
      assertThat(s.json(bad).getString("detail")).contains("params.layers").contains("params.optimizer");
    }
  }
}
