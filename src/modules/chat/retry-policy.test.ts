import { describe, expect, it } from 'vitest';
import { ProviderCallError } from '../gateway/index.js';
import { backoffDelay, warrantsFallback } from './retry-policy.js';

describe('retry policy', () => {
  const unavailable = new ProviderCallError('openrouter', 'unavailable', 'down', { upstreamStatus: 503 });

  it('backs off exponentially with jitter between half and the whole delay', () => {
    expect(backoffDelay(0, unavailable, () => 0)).toBe(125);
    expect(backoffDelay(0, unavailable, () => 1)).toBe(250);
    expect(backoffDelay(2, unavailable, () => 0)).toBe(500);
    expect(backoffDelay(10, unavailable, () => 1)).toBe(4000);
  });

  it('waits out a short Retry-After and gives up on a long one', () => {
    const short = new ProviderCallError('openrouter', 'rate_limited', 'slow down', { upstreamStatus: 429, retryAfterSeconds: 1 });
    expect(backoffDelay(0, short, () => 0)).toBe(1000);
    const long = new ProviderCallError('openrouter', 'rate_limited', 'slow down', { upstreamStatus: 429, retryAfterSeconds: 60 });
    expect(backoffDelay(0, long)).toBeUndefined();
  });

  it('tries fallbacks for unavailable models, never for rejected keys or bad requests', () => {
    expect(warrantsFallback(unavailable)).toBe(true);
    expect(warrantsFallback(new ProviderCallError('openrouter', 'invalid_request', 'no such model', { upstreamStatus: 404 }))).toBe(true);
    expect(warrantsFallback(new ProviderCallError('openrouter', 'rejected_key', 'bad key', { upstreamStatus: 401 }))).toBe(false);
    expect(warrantsFallback(new ProviderCallError('openrouter', 'invalid_request', 'bad params', { upstreamStatus: 400 }))).toBe(false);
  });
});
