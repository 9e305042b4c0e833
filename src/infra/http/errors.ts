/**
 * Typed errors. Services throw these; one error handler (error-handler.ts) maps them to
 * problem+json, or to OpenAI's envelope on the OpenAI-compatible routes (contract §4).
 */

export interface AppErrorOptions {
  cause?: unknown;
  /** Extra members for the problem body (`provider`, `setup_url`, `retry_after`, `param`…). */
  extra?: Record<string, unknown>;
  retryable?: boolean;
  headers?: Record<string, string>;
}

export class AppError extends Error {
  readonly extra: Record<string, unknown>;
  readonly retryable: boolean;
  readonly headers: Record<string, string>;

  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    options: AppErrorOptions = {},
  ) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.extra = options.extra ?? {};
    this.retryable = options.retryable ?? false;
    this.headers = options.headers ?? {};
  }
}

export class BadRequestError extends AppError {
  constructor(message: string, code = 'bad_request', options?: AppErrorOptions) {
    super(400, code, message, options);
  }
}

export class UnauthorizedError extends AppError {
  constructor(message = 'A valid API key or token is required.', options?: AppErrorOptions) {
    super(401, 'unauthorized', message, { ...options, headers: { 'www-authenticate': 'Bearer', ...options?.headers } });
  }
}

export class ForbiddenError extends AppError {
  constructor(message = 'This key may not do that.', options?: AppErrorOptions) {
    super(403, 'forbidden', message, options);
  }
}

export class NotFoundError extends AppError {
  constructor(what = 'Resource', options?: AppErrorOptions) {
    super(404, 'not_found', `${what} not found.`, options);
  }
}

export class ConflictError extends AppError {
  constructor(message: string, options?: AppErrorOptions) {
    super(409, 'conflict', message, options);
  }
}

export class ValidationError extends AppError {
  constructor(
    readonly field: string,
    message: string,
    options?: AppErrorOptions,
  ) {
    super(422, 'validation_failed', message, { ...options, extra: { field, ...options?.extra } });
  }
}

export class PayloadTooLargeError extends AppError {
  constructor(message = 'The request body is too large.', options?: AppErrorOptions) {
    super(413, 'payload_too_large', message, options);
  }
}

export class ProviderKeyRequiredError extends AppError {
  constructor(
    readonly provider: string,
    setupUrl: string | undefined,
    message?: string,
    options?: AppErrorOptions,
  ) {
    super(
      402,
      'provider_key_required',
      message ??
        `No usable ${provider} key: add your own ${provider} key${setupUrl ? ` at ${setupUrl}` : ' with POST /v1/me/provider-keys'}.`,
      { ...options, extra: { provider, setup_url: setupUrl ?? null, ...options?.extra } },
    );
  }
}

export class InsufficientCreditsError extends AppError {
  constructor(message = 'Not enough credits for this request.', options?: AppErrorOptions) {
    super(402, 'insufficient_credits', message, options);
  }
}

export class RateLimitedError extends AppError {
  constructor(retryAfterSeconds: number, message = 'Too many requests.', options?: AppErrorOptions) {
    const retryAfter = Math.max(1, Math.ceil(retryAfterSeconds));
    super(429, 'rate_limited', message, {
      ...options,
      retryable: true,
      extra: { retry_after: retryAfter, ...options?.extra },
      headers: { 'retry-after': String(retryAfter), ...options?.headers },
    });
  }
}

export class UpstreamError extends AppError {
  constructor(
    readonly provider: string,
    message: string,
    options?: AppErrorOptions & { upstreamStatus?: number },
  ) {
    super(502, 'upstream_error', message, {
      ...options,
      extra: { provider, upstream_status: options?.upstreamStatus ?? null, ...options?.extra },
    });
  }
}

export class UpstreamTimeoutError extends AppError {
  constructor(readonly provider: string, message?: string, options?: AppErrorOptions) {
    super(504, 'upstream_timeout', message ?? `${provider} did not answer in time.`, {
      ...options,
      retryable: true,
      extra: { provider, ...options?.extra },
    });
  }
}

export class ServiceUnavailableError extends AppError {
  constructor(message = 'The service is shutting down or not ready.', options?: AppErrorOptions) {
    super(503, 'service_unavailable', message, { ...options, retryable: true });
  }
}
