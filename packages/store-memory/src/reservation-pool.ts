import type { MicroDollars, Reservation } from "@sluice/core";

/**
 * The reservations one allocation (or one key) holds, with their running sum, so a reserve reads
 * what is held in O(1) instead of adding up every reservation.
 *
 * Expiry is lazy: the pool remembers a lower bound on its earliest expiry and only walks its
 * reservations once the clock has passed it, dropping the expired ones from the sum. A renewal
 * that moves an expiry later leaves the bound a bound (a walk may then find nothing to drop and
 * tightens it); one that moves it earlier lowers the bound through `expiryMoved`. Dropping from the pool does not delete the reservation itself: the ledger keeps
 * it until `sweepExpired`, `commit` or a new reserve of the same request id.
 */
export interface ReservationPool {
  /** What the live reservations hold at `now`. */
  reserved(now: number): MicroDollars;
  add(reservation: Reservation): void;
  /** Forgets a reservation; nothing happens when the pool does not hold it (any more). */
  delete(reservation: Reservation): void;
  /** A held reservation's expiry moved to `expiresAt` (the reservation object already carries it). */
  expiryMoved(expiresAt: number): void;
  /** The reservations counted in the sum, for inspection. */
  requestIds(): string[];
}

export function createReservationPool(): ReservationPool {
  const held = new Map<string, Reservation>();
  let total = 0;
  let earliestExpiry = Number.POSITIVE_INFINITY;

  function dropExpired(now: number): void {
    if (now < earliestExpiry) return;
    earliestExpiry = Number.POSITIVE_INFINITY;
    for (const [requestId, reservation] of held) {
      if (reservation.expiresAt <= now) {
        held.delete(requestId);
        total -= reservation.amount;
      } else if (reservation.expiresAt < earliestExpiry) {
        earliestExpiry = reservation.expiresAt;
      }
    }
  }

  return {
    reserved(now) {
      dropExpired(now);
      return total;
    },
    add(reservation) {
      held.set(reservation.requestId, reservation);
      total += reservation.amount;
      earliestExpiry = Math.min(earliestExpiry, reservation.expiresAt);
    },
    delete(reservation) {
      // Compare identities: the pool may hold a newer reservation of the same request id.
      if (held.get(reservation.requestId) !== reservation) return;
      held.delete(reservation.requestId);
      total -= reservation.amount;
    },
    expiryMoved(expiresAt) {
      earliestExpiry = Math.min(earliestExpiry, expiresAt);
    },
    requestIds() {
      return [...held.keys()];
    },
  };
}
