package io.anneal.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.Vertx;
import io.vertx.openapi.contract.OpenAPIContract;
import io.vertx.openapi.contract.OpenAPIVersion;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The OpenAPI document the service serves is a valid OpenAPI 3.1 contract (validated by Vert.x's
 * OpenAPI loader) and describes exactly the operations the router serves: none missing, none extra.
 */
class OpenApiContractTest {
  @TempDir Path dir;

  @Test
  void theServedDocumentIsValidAndCoversEveryRouteExactly() throws Exception {
    try (TestService s = TestService.start(dir)) {
      var served = s.get("/openapi.yaml", null);
      assertThat(served.statusCode()).isEqualTo(200);
      assertThat(served.headers().firstValue("content-type")).hasValueSatisfying(t -> assertThat(t).startsWith("application/yaml"));
      // Vert.x's loader validates the document against the OpenAPI 3.1 meta-schema, then refuses media
      // types it could not validate messages of; the three we serve beyond JSON are swapped for ones it knows
      // in the copy it checks (only media-type keys change, so validity and coverage are what is tested)
      Path file = dir.resolve("served-openapi.yaml");
      Files.writeString(file, served.body().replace("application/problem+json:", "application/json:")
          .replace("application/yaml:", "text/plain:").replace("text/csv:", "text/plain:"));

      Vertx vertx = Vertx.vertx();
      try {
        OpenAPIContract contract;
        try {
          contract = OpenAPIContract.from(vertx, file.toString()).toCompletionStage().toCompletableFuture()
              .get(30, TimeUnit.SECONDS);
        } catch (java.util.concurrent.ExecutionException e) {
          // the loader's message names no rule; the schema validator's output does
          StringBuilder why = new StringBuilder();
          for (Throwable t = e.getCause(); t != null; t = t.getCause()) {
            why.append(t.getClass().getSimpleName()).append(": ").append(t.getMessage()).append("; ");
            try {
              Object unit = t.getClass().getMethod("getOutputUnit").invoke(t);
              Object errors = unit.getClass().getMethod("getErrors").invoke(unit);
              why.append("errors ").append(errors).append("; ");
            } catch (ReflectiveOperationException ignored) {
              // not a schema validation exception
            }
          }
          throw new AssertionError("invalid OpenAPI document: " + why, e);
        }
        assertThat(contract.getVersion()).isEqualTo(OpenAPIVersion.V3_1);
        Set<String> documented = new TreeSet<>();
        contract.operations().forEach(op -> documented.add(op.getHttpMethod().name() + " " + op.getOpenAPIPath()));
        Set<String> served2 = new TreeSet<>(s.service.api().operations());
        // the API explorer's routes are pages, not API operations
        served2.removeIf(op -> op.startsWith("GET /docs") || op.startsWith("GET /webjars/"));
        assertThat(served2).contains("POST /api/v1/jobs", "DELETE /api/v1/webhooks/{id}").hasSizeGreaterThan(25);
        assertThat(documented).as("documented operations vs the router's").isEqualTo(served2);
      } finally {
        vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
      }
    }
  }

  @Test
  void theApiExplorerServesSwaggerUiPointedAtOurDocument() throws Exception {
    try (TestService s = TestService.start(dir)) {
      var docs = s.get("/docs", null);
      assertThat(docs.statusCode()).as("redirect to the explorer").isIn(302, 303);
      String page = docs.headers().firstValue("location").orElseThrow();
      var index = s.get(page, null);
      assertThat(index.statusCode()).isEqualTo(200);
      assertThat(index.body()).contains("swagger-ui");
      var init = s.get(page.replace("index.html", "swagger-initializer.js"), null);
      assertThat(init.body()).contains("url:'/openapi.yaml'").doesNotContain("petstore");
      assertThat(s.get(page.replace("index.html", "swagger-ui-bundle.js"), null).statusCode()).isEqualTo(200);
    }
  }
}
