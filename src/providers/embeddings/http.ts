import { EmbeddingError } from './embedder.js';

export interface EmbeddingHttpOptions {
  timeoutMs: number;
  fetch?: typeof fetch | undefined;
  /** Retries of retryable failures (429, 5xx, network), with a short backoff. */
  maxRetries?: number;
}

/** POSTs JSON to an embedding endpoint; 408/409/429/5xx and network failures are retried. */
export async function postJson(url: string, headers: Record<string, string>, body: unknown, source: string, options: EmbeddingHttpOptions): Promise<unknown> {
  const fetchImplementation = options.fetch ?? fetch;
  const maxRetries = options.maxRetries ?? 2;
  for (let attempt = 0; ; attempt += 1) {
    let failure: EmbeddingError;
    try {
      const response = await fetchImplementation(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(options.timeoutMs),
      });
      const text = await response.text();
      if (response.ok) {
        try {
          return JSON.parse(text) as unknown;
        } catch (error) {
          throw new EmbeddingError(`${source} answered something that is not JSON.`, false, { cause: error });
        }
      }
      const retryable = response.status === 408 || response.status === 409 || response.status === 429 || response.status >= 500;
      // The vendor's message helps the operator; it never contains our key (sent only in headers).
      failure = new EmbeddingError(`${source} answered HTTP ${response.status}: ${text.slice(0, 300)}`, retryable);
    } catch (error) {
      if (error instanceof EmbeddingError) throw error;
      failure = new EmbeddingError(`${source} could not be reached: ${error instanceof Error ? error.message : String(error)}`, true, { cause: error });
    }
    if (!failure.retryable || attempt >= maxRetries) throw failure;
    await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** attempt));
  }
}
