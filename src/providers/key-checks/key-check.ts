import type { ProviderName } from '../../config.js';

/**
 * Checking a provider key against the provider's own cheapest authenticated endpoint.
 * `valid`/`invalid` are the provider's verdict; `unreachable` means no verdict (network error,
 * timeout, 429, 5xx, an unexpected answer): such a key is stored, not refused; `unchecked` means
 * the provider has no documented way to check (kie).
 *
 * Details never quote the vendor's body: some echo (part of) the key back.
 */
export type KeyCheckStatus = 'valid' | 'invalid' | 'unreachable' | 'unchecked';

export interface KeyCheckOutcome {
  status: KeyCheckStatus;
  detail: string;
}

export interface KeyCheckResponse {
  status: number;
  body: unknown;
}

export interface KeyCheck {
  provider: ProviderName;
  /** The check request, or undefined when the provider has no key-check endpoint. */
  request(baseUrl: string, key: string): { url: string; init: RequestInit } | undefined;
  /** The verdict of a response; the default treats 2xx as valid and 401/403 as invalid. */
  interpret?(response: KeyCheckResponse): KeyCheckOutcome | undefined;
}

export interface KeyCheckOptions {
  baseUrl: string;
  timeoutMs: number;
  fetch?: typeof fetch;
}

/** A vendor error code that is safe to repeat (a short identifier, never free text). */
export function safeCode(value: unknown): string | undefined {
  return typeof value === 'string' && /^[A-Za-z0-9_.-]{1,60}$/.test(value) ? value : undefined;
}

function describeStatus(provider: string, status: number, code?: string): string {
  return `${provider} answered HTTP ${status}${code ? ` (${code})` : ''}`;
}

/** Common error-code locations: OpenAI `error.code`, Google `error.status`/details reason, ElevenLabs `detail.status`. */
function errorCode(body: unknown): string | undefined {
  if (!body || typeof body !== 'object') return undefined;
  const record = body as Record<string, unknown>;
  const error = record.error;
  if (error && typeof error === 'object') {
    const inner = error as Record<string, unknown>;
    const details = Array.isArray(inner.details) ? (inner.details as Array<Record<string, unknown>>) : [];
    const reason = details.map((detail) => safeCode(detail.reason)).find(Boolean);
    return reason ?? safeCode(inner.code) ?? safeCode(inner.status) ?? safeCode(inner.type);
  }
  const detail = record.detail;
  if (detail && typeof detail === 'object' && !Array.isArray(detail)) return safeCode((detail as Record<string, unknown>).status);
  return safeCode(record.code) ?? safeCode(record.name);
}

export function defaultInterpretation(provider: ProviderName, response: KeyCheckResponse): KeyCheckOutcome {
  const code = errorCode(response.body);
  if (response.status >= 200 && response.status < 300) return { status: 'valid', detail: `accepted by ${provider}` };
  if (response.status === 401 || response.status === 403) {
    return { status: 'invalid', detail: `rejected by ${provider}: ${describeStatus(provider, response.status, code)}` };
  }
  return { status: 'unreachable', detail: `no verdict: ${describeStatus(provider, response.status, code)}` };
}

export async function runKeyCheck(check: KeyCheck, key: string, options: KeyCheckOptions): Promise<KeyCheckOutcome> {
  const request = check.request(options.baseUrl, key);
  if (!request) return { status: 'unchecked', detail: `${check.provider} has no documented key-check endpoint; the key is stored unchecked` };
  const fetchFunction = options.fetch ?? fetch;
  let response: Response;
  try {
    response = await fetchFunction(request.url, {
      ...request.init,
      redirect: 'manual',
      signal: AbortSignal.timeout(options.timeoutMs),
    });
  } catch (error) {
    const timedOut = error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError');
    return {
      status: 'unreachable',
      detail: timedOut ? `${check.provider} did not answer within ${options.timeoutMs} ms` : `${check.provider} could not be reached`,
    };
  }
  let body: unknown;
  try {
    const text = await response.text();
    body = text ? (JSON.parse(text) as unknown) : undefined;
  } catch {
    body = undefined;
  }
  const outcome = { status: response.status, body };
  return check.interpret?.(outcome) ?? defaultInterpretation(check.provider, outcome);
}
