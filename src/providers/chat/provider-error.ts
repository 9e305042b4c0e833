import { AppError } from '../../infra/http/errors.js';

/**
 * What went wrong in a call to a model provider. The kind decides two things: whether the call may
 * be retried (or a fallback model tried), and what the client is told (contract §4):
 * rate_limited → 429 with Retry-After; timeout → 504 upstream_timeout; everything else → 502
 * upstream_error. A rejected key is also a 502 here: only the chat service knows whether the key
 * was the user's (then it becomes 402 provider_key_invalid via `rejectedKeyError`).
 */
export type ProviderFailureKind =
  | 'rejected_key'
  | 'rate_limited'
  | 'timeout'
  | 'unavailable'
  | 'invalid_request'
  | 'network'
  | 'stream_error'
  | 'aborted';

export interface ProviderCallErrorOptions {
  upstreamStatus?: number | undefined;
  retryAfterSeconds?: number | undefined;
  cause?: unknown;
}

const RETRYABLE_KINDS: ReadonlySet<ProviderFailureKind> = new Set(['rate_limited', 'timeout', 'unavailable', 'network', 'stream_error']);

function statusFor(kind: ProviderFailureKind): { status: number; code: string } {
  switch (kind) {
    case 'rate_limited':
      return { status: 429, code: 'rate_limited' };
    case 'timeout':
      return { status: 504, code: 'upstream_timeout' };
    case 'aborted':
      // The client left; nobody reads this answer, but it must not look like our fault in metrics.
      return { status: 499, code: 'client_closed_request' };
    case 'rejected_key':
    case 'unavailable':
    case 'invalid_request':
    case 'network':
    case 'stream_error':
      return { status: 502, code: 'upstream_error' };
  }
}

export class ProviderCallError extends AppError {
  readonly upstreamStatus: number | undefined;
  readonly retryAfterSeconds: number | undefined;

  constructor(
    readonly provider: string,
    readonly kind: ProviderFailureKind,
    message: string,
    options: ProviderCallErrorOptions = {},
  ) {
    const { status, code } = statusFor(kind);
    const retryAfter = options.retryAfterSeconds !== undefined ? Math.max(1, Math.ceil(options.retryAfterSeconds)) : undefined;
    super(status, code, message, {
      cause: options.cause,
      retryable: RETRYABLE_KINDS.has(kind),
      extra: {
        provider,
        upstream_status: options.upstreamStatus ?? null,
        ...(kind === 'rate_limited' ? { retry_after: retryAfter ?? 1 } : {}),
      },
      headers: kind === 'rate_limited' ? { 'retry-after': String(retryAfter ?? 1) } : {},
    });
    this.upstreamStatus = options.upstreamStatus;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

/** The kind of failure an HTTP status from a provider means (408, 409, 429 and 5xx are retryable). */
export function kindForStatus(status: number): ProviderFailureKind {
  if (status === 401 || status === 403) return 'rejected_key';
  if (status === 429) return 'rate_limited';
  if (status === 408) return 'timeout';
  if (status === 409 || status >= 500) return 'unavailable';
  return 'invalid_request';
}

/** Retry-After as seconds (a number of seconds or an HTTP date), or undefined. */
export function parseRetryAfter(value: string | null): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, (date - Date.now()) / 1000);
}
