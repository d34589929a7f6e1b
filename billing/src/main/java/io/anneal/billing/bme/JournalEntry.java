package io.anneal.billing.bme;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The ledger postings one engine operation implies (bme-spec 10.5): every change of engine state is
 * one of these, balanced per denom, so a ledger that applies them holds exactly the engine's
 * balances, vault, engine ACT and supply. Accounts: owners by name, {@link #VAULT}, {@link #ENGINE},
 * {@link #ACT_ISSUANCE} (minus the ACT supply), {@link #AKT_ISSUANCE} (minus the AKT newly minted)
 * and {@link #EXTERNAL} (AKT arriving from outside).
 */
public record JournalEntry(String kind, String ref, List<Line> lines) {
  public static final String VAULT = "bme:vault";
  public static final String ENGINE = "bme:engine";
  public static final String ACT_ISSUANCE = "bme:issuance";
  public static final String AKT_ISSUANCE = "bme:akt-issuance";
  public static final String EXTERNAL = "ext:chain";

  /** One signed amount of one denom ({@code uact} or {@code uakt}) on one account. */
  public record Line(String account, String denom, long amount) {
    public Line {
      Objects.requireNonNull(account, "account");
      if (!"uact".equals(denom) && !"uakt".equals(denom)) throw new IllegalArgumentException("denom " + denom);
    }
  }

  public JournalEntry {
    lines = lines.stream().filter(l -> l.amount() != 0).toList();
    Map<String, Long> sum = new HashMap<>();
    for (Line l : lines) sum.merge(l.denom(), l.amount(), Long::sum);
    sum.forEach((denom, total) -> {
      if (total != 0) throw new IllegalStateException(kind + " " + ref + " is unbalanced in " + denom + " by " + total);
    });
  }
}
