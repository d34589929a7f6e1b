package io.anneal.billing.bme;

import static org.assertj.core.api.Assertions.assertThat;

import io.anneal.billing.tools.BmeCli;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The bme-spec vectors, through the same path as {@code anneal bme replay --check}. */
class SpecVectorsTest {
  @TempDir Path tmp;

  private static Path resource(String name) throws URISyntaxException {
    return Path.of(SpecVectorsTest.class.getResource("/vectors/" + name).toURI());
  }

  private static int run(PrintStream out, PrintStream err, String... args) {
    return BmeCli.run(args, out, err);
  }

  @Test
  void everyVectorOfAppendixCPasses() throws Exception {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int rc = run(new PrintStream(out), new PrintStream(err), "replay", resource("spec-appendix-c.json").toString(), "--check");
    assertThat(err.toString(StandardCharsets.UTF_8)).isEmpty();
    assertThat(rc).isZero();
    assertThat(out.toString(StandardCharsets.UTF_8)).contains("all 17 vectors match");
  }

  @Test
  void theEngineOptionVectorsPass() throws Exception {
    // bme-spec 16.4 (restart threshold, FIFO, exact USD, queue depth), expectations worked by hand
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int rc = run(new PrintStream(out), new PrintStream(err), "replay", resource("engine-options.json").toString(), "--check");
    assertThat(err.toString(StandardCharsets.UTF_8)).isEmpty();
    assertThat(rc).isZero();
    assertThat(out.toString(StandardCharsets.UTF_8)).contains("all 4 vectors match");
  }

  @Test
  void checkMayComeBeforeTheFileAndAnythingElseIsRefusedWithTheUsage() throws Exception {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int rc = run(new PrintStream(out), new PrintStream(err), "replay", "--check", resource("engine-options.json").toString());
    assertThat(err.toString(StandardCharsets.UTF_8)).isEmpty();
    assertThat(rc).isZero();
    assertThat(out.toString(StandardCharsets.UTF_8)).contains("all 4 vectors match");

    ByteArrayOutputStream err2 = new ByteArrayOutputStream();
    rc = run(new PrintStream(new ByteArrayOutputStream()), new PrintStream(err2), "replay", "--chek",
        resource("engine-options.json").toString());
    assertThat(rc).isEqualTo(2);
    assertThat(err2.toString(StandardCharsets.UTF_8)).contains("unexpected argument --chek").contains("usage:");

    ByteArrayOutputStream err3 = new ByteArrayOutputStream();
    rc = run(new PrintStream(new ByteArrayOutputStream()), new PrintStream(err3), "replay", "--check");
    assertThat(rc).isEqualTo(2);
    assertThat(err3.toString(StandardCharsets.UTF_8)).contains("no vector file given");
  }

  @Test
  void aFileThatCannotBeReadIsNamedWithWhy() throws Exception {
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    Path missing = tmp.resolve("missing.json");
    assertThat(run(new PrintStream(new ByteArrayOutputStream()), new PrintStream(err), "replay", missing.toString())).isEqualTo(2);
    assertThat(err.toString(StandardCharsets.UTF_8)).contains("cannot read " + missing + ": no such file");

    Path cut = tmp.resolve("cut.json");
    Files.writeString(cut, "{\"schema\":\"anneal-bme-vectors/1\",\n\"vectors\":[{\"id\":");
    ByteArrayOutputStream err2 = new ByteArrayOutputStream();
    assertThat(run(new PrintStream(new ByteArrayOutputStream()), new PrintStream(err2), "replay", cut.toString())).isEqualTo(2);
    assertThat(err2.toString(StandardCharsets.UTF_8)).contains("cannot read " + cut + ": not valid JSON at line 2, column")
        .doesNotContain("REDACTED");
  }

  @Test
  void anOptionOfTheWrongTypeIsNamed() throws Exception {
    Path f = tmp.resolve("bad-option.json");
    Files.writeString(f, "{\"schema\":\"anneal-bme-vectors/1\",\"vectors\":[{\"id\":\"v1\",\"op\":\"params.validate\","
        + "\"input\":{\"params\":{\"fifoQueue\":1}},\"expect\":{}}]}");
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int rc = run(new PrintStream(new ByteArrayOutputStream()), new PrintStream(err), "replay", f.toString());
    assertThat(rc).isNotZero();
    assertThat(err.toString(StandardCharsets.UTF_8)).contains("v1").contains("params.fifoQueue").contains("true or false");
  }

  @Test
  void pureFunctionVectorsOfSection15Pass() throws Exception {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int rc = run(new PrintStream(out), new PrintStream(err), "replay", resource("spec-pure.json").toString(), "--check");
    assertThat(err.toString(StandardCharsets.UTF_8)).isEmpty();
    assertThat(rc).isZero();
    assertThat(out.toString(StandardCharsets.UTF_8)).contains("all 15 vectors match");
  }

  @Test
  void aWrongExpectationIsReportedWithItsVectorAndKey() throws Exception {
    String doc = Files.readString(resource("spec-pure.json")).replace("\"mintAmount\": \"120575000\"", "\"mintAmount\": \"120575001\"");
    Path f = tmp.resolve("wrong.json");
    Files.writeString(f, doc);
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int rc = run(new PrintStream(new ByteArrayOutputStream()), new PrintStream(err), "replay", f.toString(), "--check");
    assertThat(rc).isEqualTo(1);
    assertThat(err.toString(StandardCharsets.UTF_8)).contains("spec-01 expect.mintAmount: expected \"120575001\", got \"120575000\"");
  }

  @Test
  void replayWithoutCheckPrintsTheComputedExpectations() throws Exception {
    String doc = Files.readString(resource("spec-pure.json")).replace("\"crBps\": \"9523\"", "\"crBps\": \"1\"");
    Path f = tmp.resolve("in.json");
    Files.writeString(f, doc);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    assertThat(run(new PrintStream(out), System.err, "replay", f.toString())).isZero();
    assertThat(out.toString(StandardCharsets.UTF_8)).contains("\"crBps\" : \"9523\"").doesNotContain("\"crBps\" : \"1\"");
  }

  @Test
  void aMalformedVectorNamesTheVectorAndTheKey() throws Exception {
    Path f = tmp.resolve("bad.json");
    Files.writeString(f, "{\"schema\":\"anneal-bme-vectors/1\",\"vectors\":[{\"id\":\"v7\",\"op\":\"convert.quote\","
        + "\"input\":{\"direction\":\"AKT_TO_ACT\",\"oracle\":{\"healthy\":true,\"priceAkt\":\"1\"}}}]}");
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    assertThat(run(new PrintStream(new ByteArrayOutputStream()), new PrintStream(err), "replay", f.toString())).isEqualTo(2);
    assertThat(err.toString(StandardCharsets.UTF_8)).contains("vector v7").contains("'amount'");
  }
}
