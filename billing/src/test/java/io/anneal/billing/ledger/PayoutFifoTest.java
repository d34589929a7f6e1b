package io.anneal.billing.ledger;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;
import net.jqwik.api.constraints.LongRange;
import net.jqwik.api.constraints.Size;
import org.junit.jupiter.api.Test;

/** First in, first out: which income each payout burns, and how much of each item. */
class PayoutFifoTest {
  private static PayoutFifo.Item receipt(long tx, String id, long uact) {
    return new PayoutFifo.Item(tx, id, uact);
  }

  @Test
  void aPayoutOfPartOfTheBalanceBurnsTheOldestIncomeAndSplitsTheReceiptAtItsEnd() {
    List<PayoutFifo.Item> income = List.of(receipt(10, "a/0", 300), receipt(10, "b/0", 500),
        new PayoutFifo.Item(11, PayoutFifo.NOT_A_RECEIPT, 200), receipt(12, "c/0", 400));
    PayoutFifo.Cursor cursor = PayoutFifo.Cursor.from(1);
    PayoutFifo.Burn first = PayoutFifo.burn(income.iterator(), cursor, 600);
    assertThat(first.start()).isEqualTo(new PayoutFifo.Cursor(10, "a/0", 0));
    assertThat(first.end()).isEqualTo(new PayoutFifo.Cursor(10, "b/0", 300));
    assertThat(first.fromIncome()).isEqualTo(600);
    assertThat(first.receipts()).isEqualTo(2);
    assertThat(first.receiptsUact()).isEqualTo(600);
    PayoutFifo.Burn second = PayoutFifo.burn(income.iterator(), first.next(cursor), 500);
    assertThat(second.start()).isEqualTo(new PayoutFifo.Cursor(10, "b/0", 300));
    assertThat(second.end()).isEqualTo(new PayoutFifo.Cursor(12, "c/0", 100));
    assertThat(second.receipts()).as("b/0's rest and c/0's first 100; the top-up is no receipt").isEqualTo(2);
    assertThat(second.receiptsUact()).isEqualTo(300);
    // b/0's 500: 300 by the first payout, 200 by the second
    assertThat(PayoutFifo.burnedOf(first.start(), first.end(), income.get(1))).isEqualTo(300);
    assertThat(PayoutFifo.burnedOf(second.start(), second.end(), income.get(1))).isEqualTo(200);
    assertThat(PayoutFifo.burnedOf(first.start(), first.end(), income.get(3))).isZero();
    // more than the income left: what there is
    PayoutFifo.Burn third = PayoutFifo.burn(income.iterator(), second.next(first.next(cursor)), 1_000);
    assertThat(third.fromIncome()).isEqualTo(300);
    assertThat(third.end()).isEqualTo(new PayoutFifo.Cursor(12, "c/0", 400));
    PayoutFifo.Burn none = PayoutFifo.burn(income.iterator(), third.next(cursor), 5);
    assertThat(none.start()).isNull();
    assertThat(none.fromIncome()).isZero();
  }

  @Property(tries = 1000)
  void everyUactOfIncomeIsBurnedOnceInOrderAndEachPayoutBurnsItsAmount(
      @ForAll @Size(min = 1, max = 30) List<@LongRange(min = 1, max = 1_000) Long> amounts,
      @ForAll @Size(min = 0, max = 12) List<@LongRange(min = 1, max = 3_000) Long> payouts,
      @ForAll @IntRange(min = 1, max = 4) int perTx) {
    List<PayoutFifo.Item> income = new ArrayList<>();
    for (int i = 0; i < amounts.size(); i++) {
      long tx = 100 + i / perTx;
      // every fifth item a top-up in an entry of its own
      income.add(i % 5 == 4 ? new PayoutFifo.Item(10_000 + i, PayoutFifo.NOT_A_RECEIPT, amounts.get(i))
          : receipt(tx, String.format("r%03d/0", i), amounts.get(i)));
    }
    income.sort((x, y) -> x.tx() != y.tx() ? Long.compare(x.tx(), y.tx()) : x.item().compareTo(y.item()));
    long total = amounts.stream().mapToLong(Long::longValue).sum();
    PayoutFifo.Cursor cursor = PayoutFifo.Cursor.from(0);
    List<PayoutFifo.Burn> burns = new ArrayList<>();
    long burned = 0;
    for (long p : payouts) {
      PayoutFifo.Burn b = PayoutFifo.burn(income.iterator(), cursor, p);
      assertThat(b.fromIncome()).isEqualTo(Math.min(p, total - burned));
      long sum = 0;
      long receiptsUact = 0;
      for (PayoutFifo.Item it : income) {
        long of = PayoutFifo.burnedOf(b.start(), b.end(), it);
        sum += of;
        if (it.receipt()) receiptsUact += of;
      }
      assertThat(sum).as("a payout's parts add up to what it burned").isEqualTo(b.fromIncome());
      assertThat(receiptsUact).isEqualTo(b.receiptsUact());
      burned += b.fromIncome();
      burns.add(b);
      cursor = b.next(cursor);
    }
    // each item: burned at most once in all, wholly if the burning went past it
    long left = burned;
    for (PayoutFifo.Item it : income) {
      long of = 0;
      for (PayoutFifo.Burn b : burns) of += PayoutFifo.burnedOf(b.start(), b.end(), it);
      assertThat(of).isEqualTo(Math.min(it.uact(), left));
      left -= of;
    }
  }
}
