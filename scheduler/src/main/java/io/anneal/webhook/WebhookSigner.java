package io.anneal.webhook;

import java.nio.charset.StandardCharsets;
import java.security.InvalidKeyException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * The {@code Anneal-Signature} header of a webhook delivery: {@code t=<unix seconds>,v1=<hex>} where
 * the hex is HMAC-SHA256 with the webhook's secret over {@code "<t>.<body>"}. A receiver recomputes
 * it from the raw body, compares in constant time, and rejects old timestamps (replay).
 */
public final class WebhookSigner {
  public static final String HEADER = "Anneal-Signature";

  private WebhookSigner() {}

  public static String hmacHex(String secret, String signedPayload) {
    try {
      Mac mac = Mac.getInstance("HmacSHA256");
      mac.init(new SecretKeySpec(secret.getBytes(StandardCharsets.UTF_8), "HmacSHA256"));
      return HexFormat.of().formatHex(mac.doFinal(signedPayload.getBytes(StandardCharsets.UTF_8)));
    } catch (NoSuchAlgorithmException | InvalidKeyException e) {
      throw new IllegalStateException("HmacSHA256 unavailable", e);
    }
  }

  /** The header value for {@code body} sent at {@code epochSeconds}. */
  public static String header(String secret, long epochSeconds, String body) {
    return "t=" + epochSeconds + ",v1=" + hmacHex(secret, epochSeconds + "." + body);
  }

  /**
   * What a receiver does: true when {@code header} carries a v1 signature of {@code body} by
   * {@code secret} whose timestamp is within {@code toleranceSeconds} of {@code nowSeconds}.
   */
  public static boolean verify(String secret, String header, String body, long nowSeconds, long toleranceSeconds) {
    if (header == null) return false;
    long t = -1;
    String v1 = null;
    for (String part : header.split(",")) {
      String[] kv = part.trim().split("=", 2);
      if (kv.length != 2) continue;
      if (kv[0].equals("t")) {
        try {
          t = Long.parseLong(kv[1]);
        } catch (NumberFormatException e) {
          return false;
        }
      } else if (kv[0].equals("v1")) {
        v1 = kv[1];
      }
    }
    if (t < 0 || v1 == null || Math.abs(nowSeconds - t) > toleranceSeconds) return false;
    byte[] want = hmacHex(secret, t + "." + body).getBytes(StandardCharsets.US_ASCII);
    return MessageDigest.isEqual(want, v1.getBytes(StandardCharsets.US_ASCII));
  }
}
