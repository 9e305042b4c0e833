import { CallDeadline } from '../chat/call-deadline.js';
import { ProviderCallError } from '../chat/provider-error.js';

/** fetch with the adapter's timeout and the caller's signal, translating transport failures. */
export async function upstreamFetch(
  provider: string,
  url: string,
  init: RequestInit,
  options: { timeoutMs: number; signal?: AbortSignal | undefined; fetch?: typeof fetch | undefined },
): Promise<{ response: Response; deadline: CallDeadline }> {
  const deadline = new CallDeadline(options.timeoutMs, options.signal);
  try {
    const response = await (options.fetch ?? fetch)(url, { ...init, signal: deadline.signal });
    return { response, deadline };
  } catch (error) {
    deadline.dispose(true);
    throw transportFailure(provider, error, deadline, options.timeoutMs);
  }
}

export function transportFailure(provider: string, error: unknown, deadline: CallDeadline, timeoutMs: number): ProviderCallError {
  if (error instanceof ProviderCallError) return error;
  if (deadline.timedOut) return new ProviderCallError(provider, 'timeout', `${provider} did not answer within ${timeoutMs} ms.`, { cause: error });
  if (deadline.callerAborted) return new ProviderCallError(provider, 'aborted', 'The client went away; the upstream call was cancelled.', { cause: error });
  return new ProviderCallError(provider, 'network', `Could not reach ${provider}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
}

/** Reads a streamed body chunk by chunk, re-arming the idle timeout; a broken stream is a stream_error. */
export async function* readBody(provider: string, response: Response, deadline: CallDeadline, timeoutMs: number): AsyncGenerator<Buffer> {
  if (!response.body) return;
  const reader = response.body.getReader();
  try {
    for (;;) {
      let next: ReadableStreamReadResult<Uint8Array>;
      try {
        next = await reader.read();
      } catch (error) {
        const failure = transportFailure(provider, error, deadline, timeoutMs);
        throw failure.kind === 'network' ? new ProviderCallError(provider, 'stream_error', `${provider}'s audio stream broke off.`, { cause: error }) : failure;
      }
      if (next.done) return;
      deadline.rearm();
      if (next.value.length > 0) yield Buffer.from(next.value);
    }
  } finally {
    reader.releaseLock();
    deadline.dispose(true);
  }
}

/** Hides the key if a vendor echoes it in an error message. */
export function scrub(message: string, secret: string, masked: string): string {
  return secret ? message.split(secret).join(masked) : message;
}
