/**
 * A model turn's cancellation: its call is cut off when the client goes away or when the credit hold
 * written as the call leaves fails (billing's error is then the reason), and the turn can tell the
 * second from the first afterwards.
 *
 * One controller linked to the client's signal by a listener that `release()` removes, rather than
 * `AbortSignal.any([client, hold])`: Node keeps every composite signal `any` makes — its weak
 * references to the sources and theirs to it — past the young generation's collections, so each turn
 * left ≈ 1 KB to be promoted and found dead only by a major collection (issue 14, fifteenth pass: a
 * sampling heap profile of what survived young collections at 200 turns a second, 15 % of it was
 * `any`'s signals and their listeners).
 */
export class TurnCancellation {
  private readonly controller = new AbortController();
  private failed = false;
  private readonly onClientAbort = () => this.controller.abort(this.client.reason);

  constructor(private readonly client: AbortSignal) {
    if (client.aborted) this.controller.abort(client.reason);
    else client.addEventListener('abort', this.onClientAbort, { once: true });
  }

  /** The call's signal: aborted by the client's, or by a failed hold. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** The hold written alongside the call failed: cut the call off with billing's error as the reason. */
  holdFailed(error: unknown): void {
    this.failed = true;
    this.controller.abort(error);
  }

  /** Whether the turn ended because its hold failed (not because the client left). */
  get holdHasFailed(): boolean {
    return this.failed;
  }

  /** The turn is over: stop listening to the client's signal. */
  release(): void {
    this.client.removeEventListener('abort', this.onClientAbort);
  }
}
