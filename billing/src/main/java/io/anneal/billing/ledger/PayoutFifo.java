package io.anneal.billing.ledger;

import java.util.Iterator;

/**
 * Which ACT a provider payout burns, by amount (ADR 8 addendum 2): a node's ACT income — its
 * receipts' charges and its bootstrap top-ups, in journal order — is burned first in, first out by
 * its executed payouts, in the order they executed. A payout of part of the balance then burns the
 * oldest income not burned yet, and a receipt whose charge two payouts share names both, each with
 * its part. Pure: the SQL ledger feeds it the items and keeps what it returns.
 */
public final class PayoutFifo {
  private PayoutFifo() {}

  /** What precedes every receipt id, for an income item that is not a receipt (a bootstrap top-up). */
  public static final String NOT_A_RECEIPT = "";

  /**
   * One income item of a node: a settled receipt's charge ({@code item} its receipt id) or a
   * bootstrap top-up ({@code item} {@link #NOT_A_RECEIPT}), in journal entry {@code tx}.
   */
  public record Item(long tx, String item, long uact) {
    public boolean receipt() {
      return !item.isEmpty();
    }
  }

  /**
   * A place in a node's income: item {@code (tx, item)}, of which {@code used} uact are burned. The
   * next uact to burn is there if any of it is left, else at the next item.
   */
  public record Cursor(long tx, String item, long used) {
    /** Before every item of journal entries from {@code tx} on. */
    public static Cursor from(long tx) {
      return new Cursor(tx, NOT_A_RECEIPT, 0);
    }

    /** Orders items as the journal does: by entry, then by receipt id. */
    int compareTo(long otherTx, String otherItem) {
      int c = Long.compare(tx, otherTx);
      return c != 0 ? c : item.compareTo(otherItem);
    }
  }

  /**
   * What one payout burned: from {@code start} (its first item and how much of it was burned
   * before) to {@code end} (its last item and how much of it is burned with this payout), how much
   * of its amount income covered ({@code fromIncome}; less only when the balance held ACT from
   * before attribution began), and of that, how many receipts and how much of their charges.
   * {@code start} and {@code end} are null when it burned nothing.
   */
  public record Burn(Cursor start, Cursor end, long fromIncome, long receipts, long receiptsUact) {
    /** Where the next payout of the node starts from. */
    public Cursor next(Cursor before) {
      return end == null ? before : end;
    }
  }

  /**
   * Burns {@code amount} from {@code items}, the node's income in journal order from {@code cursor}'s
   * item on (items before it are skipped).
   */
  public static Burn burn(Iterator<Item> items, Cursor cursor, long amount) {
    Cursor start = null;
    Cursor end = null;
    long left = amount;
    long receipts = 0;
    long receiptsUact = 0;
    while (left > 0 && items.hasNext()) {
      Item it = items.next();
      int where = cursor.compareTo(it.tx(), it.item());
      if (where > 0) continue; // before the cursor: burned by earlier payouts
      long usedBefore = where == 0 ? cursor.used() : 0;
      long available = it.uact() - usedBefore;
      if (available <= 0) continue;
      long take = Math.min(available, left);
      if (start == null) start = new Cursor(it.tx(), it.item(), usedBefore);
      end = new Cursor(it.tx(), it.item(), usedBefore + take);
      left -= take;
      if (it.receipt()) {
        receipts++;
        receiptsUact += take;
      }
    }
    return new Burn(start, end, amount - left, receipts, receiptsUact);
  }

  /**
   * How much of an item a payout burned, given where it started and ended (0 when the item lies
   * outside): the whole item strictly between, and the parts at either end.
   */
  public static long burnedOf(Cursor start, Cursor end, Item it) {
    if (start == null || end == null) return 0;
    if (start.compareTo(it.tx(), it.item()) > 0 || end.compareTo(it.tx(), it.item()) < 0) return 0;
    long from = start.compareTo(it.tx(), it.item()) == 0 ? start.used() : 0;
    long to = end.compareTo(it.tx(), it.item()) == 0 ? end.used() : it.uact();
    return Math.max(0, to - from);
  }
}
