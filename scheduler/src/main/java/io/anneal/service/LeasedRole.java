package io.anneal.service;

import io.anneal.store.RoleLease;
import io.vertx.core.Deployable;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import java.util.function.LongFunction;
import java.util.logging.Logger;

/**
 * Cluster mode (ADR 19): plays a role only one instance may play at a time, while this instance holds
 * its {@link RoleLease}. Every second it tries to take the lease (standby) or checks that it still
 * holds it; on taking it, it deploys the role's verticle, made for the lease's fencing epoch; on losing
 * it, it stops the role at once and undeploys the verticle, then stands by again.
 */
final class LeasedRole {
  private static final Logger LOG = Logger.getLogger(LeasedRole.class.getName());
  static final long CHECK_MS = 1_000;
  /** How long the lease's session may take to answer before the lease counts as lost. */
  static final int ANSWER_TIMEOUT_MS = 3_000;

  private final Vertx vertx;
  private final RoleLease lease;
  private final LongFunction<Deployable> make;
  private final Runnable onLost;
  /** How many members of the cluster this instance sees now, and how many it must see to play the role. */
  private final java.util.function.IntSupplier members;
  private final int quorum;
  /** The member count last logged as short of the quorum (0: not short). */
  private int shortAt;
  private String deploymentId;
  private volatile boolean active;
  private boolean busy;
  private volatile boolean stopped;
  private long timer = -1;
  private long takeovers;

  /**
   * @param make the role's verticle for a fencing epoch (called on the event loop when the lease is taken)
   * @param onLost called first when the lease is lost, on the event loop: stop acting at once
   * @param members how many members of the cluster this instance sees now
   * @param quorum how many it must see to take or keep the role: an instance cut off from most of the cluster
   *     (a partition that left it its database) lets the role go, so that the side with the workers can play it
   */
  LeasedRole(Vertx vertx, RoleLease lease, LongFunction<Deployable> make, Runnable onLost,
      java.util.function.IntSupplier members, int quorum) {
    this.vertx = vertx;
    this.lease = lease;
    this.make = make;
    this.onLost = onLost;
    this.members = members;
    this.quorum = quorum;
  }

  String role() {
    return lease.role();
  }

  /** Whether this instance plays the role now (lease held and its verticle deployed). */
  boolean active() {
    return active;
  }

  /** How often this instance has taken the role since it started. */
  long takeovers() {
    return takeovers;
  }

  void start() {
    timer = vertx.setPeriodic(0, CHECK_MS, id -> check());
  }

  private enum Step { STANDBY, ACQUIRED, HELD, LOST }

  private void check() {
    if (busy || stopped) return;
    int seen = members.getAsInt();
    if (seen < quorum) {
      noQuorum(seen);
      return;
    }
    if (shortAt != 0) {
      LOG.info("role " + role() + ": this instance sees " + seen + " member(s) again, the quorum is " + quorum);
      shortAt = 0;
    }
    busy = true;
    vertx.executeBlocking(() -> {
      if (lease.held()) return lease.stillHeld(ANSWER_TIMEOUT_MS) ? Step.HELD : Step.LOST;
      return lease.tryAcquire() ? Step.ACQUIRED : Step.STANDBY;
    }, false).onComplete(ar -> {
      if (ar.failed()) {
        // the store is out of reach: a holder finds out on its next check (its session does not answer)
        LOG.fine("role " + role() + ": lease check failed: " + ar.cause().getMessage());
        busy = false;
        return;
      }
      switch (ar.result()) {
        case ACQUIRED -> take();
        case LOST -> {
          LOG.warning("role " + role() + ": the lease is lost (its PostgreSQL session ended, or another instance took"
              + " it): stepping down");
          stepDown().onComplete(x -> busy = false);
        }
        default -> busy = false;
      }
    });
  }

  /**
   * Fewer members in sight than the quorum: a holder stops at once and lets the lease go (without waiting
   * for its verticle's undeployment, which may wait on members it cannot reach: what it would still write
   * is fenced); a standby does not try to take it.
   */
  private void noQuorum(int seen) {
    if (shortAt != seen) {
      LOG.warning("role " + role() + ": this instance sees " + seen + " member(s) of the cluster, fewer than the quorum of "
          + quorum + " (cluster.quorum): " + (active || lease.held() ? "stepping down" : "not taking the role"));
      shortAt = seen;
    }
    if (!active && !lease.held()) return;
    busy = true;
    stepDown();
    vertx.executeBlocking(() -> {
      lease.release();
      return null;
    }, false).onComplete(x -> busy = false);
  }

  private void take() {
    long epoch = lease.epoch();
    if (stopped) {
      busy = false;
      return;
    }
    Deployable v;
    try {
      v = make.apply(epoch);
    } catch (RuntimeException e) {
      LOG.warning("role " + role() + ": could not be set up: " + e.getMessage());
      releaseLater();
      return;
    }
    vertx.deployVerticle(v).onComplete(d -> {
      if (d.succeeded()) {
        deploymentId = d.result();
        active = true;
        takeovers++;
        LOG.info("role " + role() + ": this instance plays it now (lease epoch " + epoch + ")");
        busy = false;
      } else {
        LOG.warning("role " + role() + ": did not start: " + d.cause().getMessage() + "; the lease is let go");
        releaseLater();
      }
    });
  }

  private void releaseLater() {
    vertx.executeBlocking(() -> {
      lease.release();
      return null;
    }, false).onComplete(x -> busy = false);
  }

  private Future<Void> stepDown() {
    active = false;
    try {
      onLost.run();
    } catch (RuntimeException e) {
      LOG.warning("role " + role() + ": " + e.getMessage());
    }
    String id = deploymentId;
    deploymentId = null;
    if (id == null) return Future.succeededFuture();
    return vertx.undeploy(id).recover(e -> Future.succeededFuture());
  }

  /**
   * Stops checking and lets the lease go; call once the role's verticle is stopped (after Vert.x
   * closed): another instance takes the role within about a second. Blocking.
   */
  void release() {
    stopped = true;
    active = false;
    if (timer >= 0) vertx.cancelTimer(timer);
    lease.release();
  }
}
