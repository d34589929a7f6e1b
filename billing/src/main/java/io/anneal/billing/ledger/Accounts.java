package io.anneal.billing.ledger;

/** Account names. External and issuance accounts may go negative; all others never do. */
public final class Accounts {
  /** AKT arriving from outside (stands in for on-chain deposits). */
  public static final String EXTERNAL_CHAIN = "ext:chain";
  /** AKT given to the vault by the community pool (the seed). */
  public static final String COMMUNITY_POOL = "ext:community-pool";
  /** Counter-account of all ACT in existence: its uact balance is minus the ACT supply. */
  public static final String ACT_ISSUANCE = "bme:issuance";
  /** Counter-account of newly created AKT (redemptions beyond remint credits). */
  public static final String AKT_ISSUANCE = "bme:akt-issuance";
  public static final String VAULT = "bme:vault";
  /** ACT held by the engine: mint spreads (and escrowed redemptions). */
  public static final String ENGINE = "bme:engine";

  private Accounts() {}

  public static String tenant(String tenantId) {
    return "tenant:" + tenantId;
  }

  public static String escrow(String tenantId) {
    return "escrow:" + tenantId;
  }

  public static String provider(String nodeId) {
    return "provider:" + nodeId;
  }

  public static boolean mayGoNegative(String account) {
    return account.startsWith("ext:") || account.equals(ACT_ISSUANCE) || account.equals(AKT_ISSUANCE);
  }
}
