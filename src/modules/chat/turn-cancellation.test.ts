import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { TurnCancellation } from './turn-cancellation.js';

describe('TurnCancellation', () => {
  it("aborts the call when the client's signal does, with its reason, and that is not a failed hold", () => {
    const client = new AbortController();
    const cancellation = new TurnCancellation(client.signal);
    expect(cancellation.signal.aborted).toBe(false);
    const reason = new Error('client closed the connection');
    client.abort(reason);
    expect(cancellation.signal.aborted).toBe(true);
    expect(cancellation.signal.reason).toBe(reason);
    expect(cancellation.holdHasFailed).toBe(false);
  });

  it("aborts the call with billing's error when the hold fails, and says so", () => {
    const client = new AbortController();
    const cancellation = new TurnCancellation(client.signal);
    const refusal = Object.assign(new Error('insufficient credits'), { statusCode: 402 });
    cancellation.holdFailed(refusal);
    expect(cancellation.signal.reason).toBe(refusal);
    expect(cancellation.holdHasFailed).toBe(true);
    expect(client.signal.aborted).toBe(false);
  });

  it('starts aborted for a client already gone', () => {
    const client = new AbortController();
    client.abort(new Error('gone'));
    const cancellation = new TurnCancellation(client.signal);
    expect(cancellation.signal.aborted).toBe(true);
    expect((cancellation.signal.reason as Error).message).toBe('gone');
  });

  it("leaves no listener on a long-lived client signal once released (one signal shared by many turns)", () => {
    const shared = new AbortController();
    const turns = Array.from({ length: 50 }, () => new TurnCancellation(shared.signal));
    expect(getEventListeners(shared.signal, 'abort')).toHaveLength(50);
    for (const turn of turns) turn.release();
    expect(getEventListeners(shared.signal, 'abort')).toHaveLength(0);
    shared.abort(new Error('shutdown'));
    expect(turns.every((turn) => !turn.signal.aborted)).toBe(true);
  });
});
