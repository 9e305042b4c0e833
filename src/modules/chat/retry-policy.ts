import type { ProviderCallError } from '../gateway/index.js';

/** Exponential backoff with jitter between attempts, honouring the provider's Retry-After. */
export const BACKOFF_BASE_MS = 250;
export const BACKOFF_CAP_MS = 4_000;
/** A Retry-After longer than this is not waited out: the client gets the 429 and decides. */
export const MAX_RETRY_AFTER_WAIT_MS = 10_000;

export function backoffDelay(attempt: number, error: ProviderCallError, random: () => number = Math.random): number | undefined {
  if (error.retryAfterSeconds !== undefined) {
    const requested = error.retryAfterSeconds * 1000;
    if (requested > MAX_RETRY_AFTER_WAIT_MS) return undefined;
    return requested + random() * BACKOFF_BASE_MS;
  }
  const exponential = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
  // Full jitter on half the delay: spreads retries of many clients without waiting less than half.
  return exponential / 2 + (random() * exponential) / 2;
}

/** Whether a fallback model is worth trying after this failure: the model or its route is unavailable, not our request or key. */
export function warrantsFallback(error: ProviderCallError): boolean {
  if (error.kind === 'rejected_key' || error.kind === 'aborted') return false;
  return error.retryable || error.upstreamStatus === 404;
}
