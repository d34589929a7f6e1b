package io.anneal.billing.bme;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

/** The rounding rules of bme-spec section 2. */
class DecTest {
  @Test
  void quotientRoundsHalfEvenAfterTruncatingAt36Digits() {
    assertThat(Dec.ONE.quo(Dec.fromInt(3)).toString()).isEqualTo("0.333333333333333333");
    assertThat(Dec.fromInt(2).quo(Dec.fromInt(3)).toString()).isEqualTo("0.666666666666666667");
    assertThat(Dec.ONE.quo(Dec.parse("0.30")).toString()).isEqualTo("3.333333333333333333");
  }

  @Test
  void productRoundsHalfEven() {
    // 0.000000000000000005 * 0.1 = 5e-19 -> half -> even (0)
    assertThat(Dec.parse("0.000000000000000005").mul(Dec.parse("0.1")).toString()).isEqualTo("0.000000000000000000");
    assertThat(Dec.parse("0.000000000000000015").mul(Dec.parse("0.1")).toString()).isEqualTo("0.000000000000000002");
  }

  @Test
  void powMatchesTheSpecVector() {
    assertThat(Dec.parse("1.1").pow(49).toString()).isEqualTo("106.718957163359378640");
    assertThat(Dec.parse("1.1").pow(0)).isEqualTo(Dec.ONE);
  }

  @Test
  void inputsWithMoreThan18DecimalsAreRejected() {
    assertThatThrownBy(() -> Dec.parse("0.1234567890123456789")).isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> Dec.parse("abc")).isInstanceOf(IllegalArgumentException.class);
  }

  @Test
  void collateralRatioRoundsAtThe18thDecimalBeforeTheBpsTruncation() throws Exception {
    // bme-spec section 6: vault 1 uakt, supply 6 uact, P = 5.700599999999999999 -> 9501 bps, HEALTHY
    CollateralRatio cr = Bme.collateralRatio(java.math.BigInteger.ONE, java.math.BigInteger.ZERO,
        java.math.BigInteger.valueOf(6), OracleSnapshot.healthy("5.700599999999999999"));
    assertThat(cr.ratio().toString()).isEqualTo("0.950100000000000000");
    assertThat(cr.bps()).isEqualTo(9501);
  }
}
