package io.anneal.arch;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;

import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.junit.AnalyzeClasses;
import com.tngtech.archunit.junit.ArchTest;
import com.tngtech.archunit.lang.ArchRule;

/** The pure cores stay free of frameworks and I/O (STYLE.md "Pure core, thin edges"). */
@AnalyzeClasses(packages = "io.anneal", importOptions = ImportOption.DoNotIncludeTests.class)
class ArchitectureTest {
  private static final String[] CORE = {
    "io.anneal.billing.bme..", "io.anneal.billing.merkle..", "io.anneal.billing.receipt..", "io.anneal.placement..",
    "io.anneal.job.."
  };
  private static final String[] FRAMEWORKS = {"io.vertx..", "com.hazelcast..", "jcuda..", "java.sql..", "javax.sql..",
    "com.zaxxer..", "org.flywaydb..", "io.micrometer..", "com.fasterxml.."};

  @ArchTest
  static final ArchRule coreHasNoFrameworkTypes =
      noClasses().that().resideInAnyPackage(CORE).should().dependOnClassesThat().resideInAnyPackage(FRAMEWORKS);

  /** The settlement rules every ledger adapter applies decide without I/O (ADR 12). */
  @ArchTest
  static final ArchRule settlementRulesHaveNoFrameworkTypes =
      noClasses().that().haveNameMatching("io\\.anneal\\.billing\\.ledger\\.SettlementPlan.*").should().dependOnClassesThat()
          .resideInAnyPackage(FRAMEWORKS);

  @ArchTest
  static final ArchRule gpuAdapterDependsOnNothingOfOurs =
      noClasses().that().resideInAPackage("io.anneal.gpu..").should().dependOnClassesThat()
          .resideInAnyPackage("io.anneal.billing..", "io.anneal.api..", "io.anneal.sched..", "io.anneal.store..");

  @ArchTest
  static final ArchRule billingDoesNotKnowTheScheduler =
      noClasses().that().resideInAPackage("io.anneal.billing..").should().dependOnClassesThat()
          .resideInAnyPackage("io.anneal.api..", "io.anneal.sched..", "io.anneal.store..", "io.anneal.worker..", "io.anneal.gpu..");

  @ArchTest
  static final ArchRule onlyTheWorkerTouchesTheGpuBackend =
      noClasses().that().resideInAnyPackage("io.anneal.api..", "io.anneal.sched..", "io.anneal.store..").should()
          .dependOnClassesThat().resideInAPackage("io.anneal.gpu..");
}
