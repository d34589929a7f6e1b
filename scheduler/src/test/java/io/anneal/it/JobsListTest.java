package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A tenant's jobs, newest first, a page at a time, filtered by state; bad queries are refused. */
class JobsListTest {
  @TempDir Path dir;

  private static List<String> ids(JsonObject page) {
    return page.getJsonArray("jobs").stream().map(o -> ((JsonObject) o).getString("id")).toList();
  }

  @Test
  void everyJobIsListedOnceAcrossPagesNewestFirst() throws Exception {
    try (TestService s = TestService.start(dir)) {
      List<String> submitted = new ArrayList<>();
      for (int i = 0; i < 7; i++) {
        var r = s.post("/api/v1/jobs", TestService.DEMO_KEY, new JsonObject().put("kind", "sleep").put("gpus", 1)
            .put("maxSeconds", 30).put("params", new JsonObject().put("ms", 1)).encode());
        submitted.add(s.json(r).getString("id"));
      }
      List<String> newestFirst = new ArrayList<>(submitted);
      Collections.reverse(newestFirst);

      List<String> seen = new ArrayList<>();
      String before = null;
      int pages = 0;
      do {
        JsonObject page = s.json(s.get("/api/v1/jobs?limit=3" + (before == null ? "" : "&before=" + before), TestService.DEMO_KEY));
        seen.addAll(ids(page));
        before = page.getString("next");
        pages++;
      } while (before != null);
      assertThat(pages).isEqualTo(3);
      assertThat(seen).containsExactlyElementsOf(newestFirst);
      // without a limit: the newest 200 at most, as before, and no next page here
      JsonObject all = s.json(s.get("/api/v1/jobs", TestService.DEMO_KEY));
      assertThat(ids(all)).containsExactlyElementsOf(newestFirst);
      assertThat(all.getValue("next")).isNull();

      s.await(Duration.ofSeconds(30), () -> ids(s.json(s.get("/api/v1/jobs?state=SETTLED", TestService.DEMO_KEY))).size() == 7);
      assertThat(ids(s.json(s.get("/api/v1/jobs?state=QUEUED", TestService.DEMO_KEY)))).isEmpty();
      assertThat(ids(s.json(s.get("/api/v1/jobs?state=SETTLED&limit=2&before=" + newestFirst.get(1), TestService.DEMO_KEY))))
          .containsExactlyElementsOf(newestFirst.subList(2, 4));
      assertThat(ids(s.json(s.get("/api/v1/jobs?before=j_not-a-job", TestService.DEMO_KEY)))).isEmpty();

      for (String bad : new String[] {"limit=0", "limit=1001", "limit=x", "state=DONE"}) {
        var r = s.get("/api/v1/jobs?" + bad, TestService.DEMO_KEY);
        assertThat(r.statusCode()).as(bad).isEqualTo(422);
        assertThat(s.json(r).getString("type")).endsWith("/invalid-query");
      }
      assertThat(s.get("/api/v1/jobs", null).statusCode()).isEqualTo(401);
    }
  }
}
