/**
 * One upstream call's cancellation: the caller's signal (client disconnect, shutdown) and our own
 * timeout both abort the fetch, and afterwards we can tell which of the two it was. For streams the
 * timeout is an idle timeout, re-armed by every chunk, so a long answer that keeps flowing is
 * never cut while a stalled one is.
 */
export class CallDeadline {
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private expired = false;
  private readonly onCallerAbort = () => this.controller.abort(this.callerSignal?.reason);

  constructor(
    private readonly timeoutMs: number,
    private readonly callerSignal: AbortSignal | undefined,
  ) {
    if (callerSignal?.aborted) this.controller.abort(callerSignal.reason);
    else callerSignal?.addEventListener('abort', this.onCallerAbort, { once: true });
    this.rearm();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get timedOut(): boolean {
    return this.expired;
  }

  get callerAborted(): boolean {
    return this.callerSignal?.aborted === true;
  }

  /** Restarts the timeout (a chunk arrived). */
  rearm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.expired = true;
      this.controller.abort(new Error('upstream timeout'));
    }, this.timeoutMs);
    this.timer.unref();
  }

  /** Stops the timer and, when the call did not finish, aborts the fetch so its socket is freed. */
  dispose(abortUnfinished = false): void {
    if (this.timer) clearTimeout(this.timer);
    this.callerSignal?.removeEventListener('abort', this.onCallerAbort);
    if (abortUnfinished && !this.controller.signal.aborted) this.controller.abort(new Error('call abandoned'));
  }
}
