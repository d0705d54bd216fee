import type { TunnelChange } from "./tunnel-directory.js";

/** The listener set behind a directory's `onChange`: one listener's throw never stops the next. */
export class TunnelChangeListeners {
  readonly #listeners = new Set<(change: TunnelChange) => void>();

  add(listener: (change: TunnelChange) => void): () => void {
    // Wrapped, so one function subscribed twice gets two independent subscriptions.
    const entry = (change: TunnelChange): void => listener(change);
    this.#listeners.add(entry);
    return () => {
      this.#listeners.delete(entry);
    };
  }

  emit(change: TunnelChange): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener({ type: change.type, tunnel: { ...change.tunnel } });
      } catch {
        // A directory reports to whoever listens; a listener's failure is that listener's to handle.
      }
    }
  }

  clear(): void {
    this.#listeners.clear();
  }
}
