import type { ManualClock } from "../clock/clock.js";
import type { SluiceEventBus } from "../events/sluice-events.js";
import type { SecretBox } from "../provider/secret-box.js";

/** What a conformance suite hands the implementation under test for each test. */
export interface StoreHarnessContext {
  /** The store must read time from this clock only; tests move it by hand. */
  clock: ManualClock;
  /** The store must publish its events here. */
  events: SluiceEventBus;
  secretBox: SecretBox;
}

export interface StoreUnderTest<Store> {
  store: Store;
  /**
   * Everything the implementation has stored, as text (a JSON dump of its maps, the rows of its
   * tables). Suites search it to prove secrets are never stored in the clear.
   */
  inspect(): Promise<string>;
  /** Called after each test. */
  close?(): Promise<void>;
}

/**
 * How a conformance suite gets a store. `create` is called before every test and must return a
 * store with no data in it, wired to the given clock, event bus and secret box.
 */
export interface StoreHarness<Store> {
  create(context: StoreHarnessContext): Promise<StoreUnderTest<Store>>;
}
