package io.anneal.billing;

import io.anneal.billing.bme.Dec;
import io.anneal.billing.pricing.PriceBook;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.ArrayList;
import java.util.List;

/** The body of {@link BillingAddresses#PRICES_CHANGED}: price changes in their exact form. */
public final class PriceChanges {
  private PriceChanges() {}

  public static JsonObject encode(List<PriceBook.Change> changes) {
    JsonArray a = new JsonArray();
    for (PriceBook.Change c : changes) {
      a.add(new JsonObject().put("gpuClass", c.gpuClass()).put("fromMs", c.fromMs())
          .put("uactPerGpuSecond", c.perGpuSecond().toString()).put("uactPerGpuHour", c.perGpuHour())
          .put("utilization", c.utilization() == null ? null : c.utilization().toString()));
    }
    return new JsonObject().put("changes", a);
  }

  /** @throws IllegalArgumentException on a body that is not one {@link #encode} made */
  public static List<PriceBook.Change> decode(JsonObject body) {
    List<PriceBook.Change> out = new ArrayList<>();
    try {
      for (Object o : body.getJsonArray("changes")) {
        JsonObject c = (JsonObject) o;
        String u = c.getString("utilization");
        out.add(new PriceBook.Change(c.getString("gpuClass"), c.getLong("fromMs"), Dec.parse(c.getString("uactPerGpuSecond")),
            c.getLong("uactPerGpuHour"), u == null ? null : Dec.parse(u)));
      }
    } catch (RuntimeException e) {
      throw new IllegalArgumentException("not a price change message: " + e.getMessage(), e);
    }
    return out;
  }
}
