import { AppError } from './errors.js';

/**
 * What went wrong in a call to a vendor, in the vendor's terms only. Provider adapters raise
 * failures of these kinds and know nothing of our HTTP contract; this one function decides what a
 * client is told (contract §4): rate_limited → 429 with Retry-After; timeout → 504
 * upstream_timeout; aborted (the client left) → 499; everything else, a rejected key included,
 * → 502 upstream_error. A rejected *user* key never reaches here as such: the gateway reports it
 * and turns it into 402 provider_key_required (reason provider_key_invalid) first.
 */
export type ProviderFailureKind = 'rejected_key' | 'rate_limited' | 'timeout' | 'unavailable' | 'invalid_request' | 'network' | 'stream_error' | 'aborted';

/** The shape of a provider failure (ProviderCallError), as the HTTP layer reads it. */
export interface ProviderFailure extends Error {
  readonly provider: string;
  readonly kind: ProviderFailureKind;
  readonly upstreamStatus: number | undefined;
  readonly retryAfterSeconds: number | undefined;
  readonly upstreamCode?: number | string | undefined;
}

/** True for errors that describe a failed vendor call (they carry a failure kind, not an HTTP status of ours). */
export function isProviderFailure(error: unknown): error is ProviderFailure {
  return error instanceof Error && error.name === 'ProviderCallError' && typeof (error as Partial<ProviderFailure>).kind === 'string';
}

/** The contract error a provider failure becomes at the HTTP edge. */
export function contractErrorForProviderFailure(failure: ProviderFailure): AppError {
  const base = {
    cause: failure,
    extra: { provider: failure.provider, upstream_status: failure.upstreamStatus ?? null, ...(failure.upstreamCode !== undefined ? { upstream_code: failure.upstreamCode } : {}) },
  };
  switch (failure.kind) {
    case 'rate_limited': {
      const retryAfter = Math.max(1, Math.ceil(failure.retryAfterSeconds ?? 1));
      return new AppError(429, 'rate_limited', failure.message, {
        ...base,
        retryable: true,
        extra: { ...base.extra, retry_after: retryAfter },
        headers: { 'retry-after': String(retryAfter) },
      });
    }
    case 'timeout':
      return new AppError(504, 'upstream_timeout', failure.message, { ...base, retryable: true });
    case 'aborted':
      // The client left; nobody reads this answer, but it must not look like our fault in metrics.
      return new AppError(499, 'client_closed_request', failure.message, base);
    case 'unavailable':
    case 'network':
    case 'stream_error':
      return new AppError(502, 'upstream_error', failure.message, { ...base, retryable: true });
    case 'rejected_key':
    case 'invalid_request':
      return new AppError(502, 'upstream_error', failure.message, base);
  }
}
