import type { ProviderName } from '../../config.js';
import type { ResolvedProviderKey } from '../../modules/identity/key-resolution.js';
import { CallDeadline } from './call-deadline.js';
import type { ChatModelProvider, ChatRequest, ChatResult, ChatStreamEvent, ChatToolCall, ChatToolCallDelta, ChatUsage } from './chat-model.js';
import { ProviderCallError, kindForStatus, parseRetryAfter } from './provider-error.js';
import { readServerSentEvents } from './server-sent-events.js';
import { postUpstream, type UpstreamResponse } from './upstream-request.js';

/**
 * One adapter for the OpenAI-compatible chat APIs: OpenRouter, OpenAI and xAI (provider-apis §1).
 *
 * Plain HTTP (undici's request; see upstream-request.ts) + our own SSE reader rather than the `openai` SDK: the SDK retries on its own
 * (we must retry only before the first byte reached our client, and try fallback models), throws
 * a generic APIError for OpenRouter's "200 with an error body" and mid-stream error events, and
 * hides the `: OPENROUTER PROCESSING` keep-alives that let us re-arm an idle timeout. The wire
 * format is small; owning it keeps every failure mapped to one ProviderCallError.
 */

export interface OpenAiCompatibleOptions {
  provider: Extract<ProviderName, 'openrouter' | 'openai' | 'xai'>;
  baseUrl: string;
  timeoutMs: number;
  /** Sent to OpenRouter as HTTP-Referer (app attribution); harmless elsewhere. */
  appUrl?: string | undefined;
  appTitle?: string | undefined;
  fetch?: typeof fetch;
}

interface WireUsage {
  prompt_tokens?: number;
  completion_tokens?: number;
  cost?: number;
}

interface WireChoice {
  finish_reason?: string | null;
  message?: { content?: string | null; tool_calls?: ChatToolCall[] | null };
  delta?: { content?: string | null; tool_calls?: ChatToolCallDelta[] | null };
}

interface WireResponse {
  model?: string;
  choices?: WireChoice[];
  usage?: WireUsage | null;
  error?: unknown;
}

export class OpenAiCompatibleChatProvider implements ChatModelProvider {
  constructor(private readonly options: OpenAiCompatibleOptions) {}

  async complete(request: ChatRequest, key: ResolvedProviderKey): Promise<ChatResult> {
    const deadline = new CallDeadline(this.options.timeoutMs, request.signal);
    try {
      const response = await this.send(request, key, false, deadline);
      const text = await response.text().catch((error: unknown) => {
        throw this.transportError(error, deadline);
      });
      const body = parseJson(text) as WireResponse | undefined;
      if (!body) throw new ProviderCallError(this.options.provider, 'unavailable', `${this.options.provider} answered with a body that is not JSON.`, { upstreamStatus: response.status });
      if (body.error !== undefined || !Array.isArray(body.choices) || body.choices.length === 0) {
        // OpenRouter's "200 with an error body and no choices".
        throw this.errorFromBody(body, response.status, key, undefined);
      }
      const choice = body.choices[0]!;
      const toolCalls = Array.isArray(choice.message?.tool_calls) && choice.message.tool_calls.length > 0 ? choice.message.tool_calls : undefined;
      return {
        text: choice.message?.content ?? '',
        finishReason: choice.finish_reason ?? 'stop',
        model: body.model ?? request.model,
        usage: toUsage(body.usage),
        ...(toolCalls ? { toolCalls } : {}),
      };
    } finally {
      deadline.dispose(true);
    }
  }

  async *stream(request: ChatRequest, key: ResolvedProviderKey): AsyncGenerator<ChatStreamEvent> {
    const deadline = new CallDeadline(this.options.timeoutMs, request.signal);
    let finished = false;
    try {
      const response = await this.send(request, key, true, deadline);
      if (!response.body) throw new ProviderCallError(this.options.provider, 'unavailable', `${this.options.provider} sent an empty stream.`);
      let model = request.model;
      let finishReason: string | undefined;
      let usage: ChatUsage | undefined;
      let sawDone = false;
      try {
        for await (const data of readServerSentEvents(rearmOnChunk(response.body, deadline))) {
          if (data === '[DONE]') {
            sawDone = true;
            break;
          }
          const chunk = parseJson(data) as WireResponse | undefined;
          // OpenAI-compatible streams carry only JSON chunks and [DONE]: anything else is a broken
          // upstream, never an empty success (which would be stored as complete and billed).
          if (!chunk || typeof chunk !== 'object') {
            throw new ProviderCallError(this.options.provider, 'stream_error', `${this.options.provider} streamed data that is not a JSON chunk.`);
          }
          if (chunk.error !== undefined) throw this.errorFromBody(chunk, 200, key, 'stream_error');
          if (typeof chunk.model === 'string') model = chunk.model;
          if (chunk.usage) usage = toUsage(chunk.usage);
          for (const choice of chunk.choices ?? []) {
            if (choice.finish_reason === 'error') {
              throw new ProviderCallError(this.options.provider, 'stream_error', `${this.options.provider} reported an error mid-stream.`);
            }
            const content = choice.delta?.content;
            if (typeof content === 'string' && content !== '') yield { type: 'delta', text: content };
            // Tool-call fragments are relayed as they came; the client merges them by index.
            const toolCalls = choice.delta?.tool_calls;
            if (Array.isArray(toolCalls) && toolCalls.length > 0) yield { type: 'tool_call_delta', toolCalls };
            if (choice.finish_reason) finishReason = choice.finish_reason;
          }
        }
      } catch (error) {
        if (error instanceof ProviderCallError) throw error;
        throw this.transportError(error, deadline);
      }
      if (!sawDone && finishReason === undefined) {
        throw new ProviderCallError(this.options.provider, 'network', `${this.options.provider} closed the stream before it finished.`);
      }
      finished = true;
      yield { type: 'finish', finishReason: finishReason ?? 'stop', model, usage };
    } finally {
      // Abandoned by the consumer (client left) or failed: abort so the upstream socket closes.
      deadline.dispose(!finished);
    }
  }

  private async send(request: ChatRequest, key: ResolvedProviderKey, stream: boolean, deadline: CallDeadline): Promise<UpstreamResponse> {
    const { provider, baseUrl } = this.options;
    const headers: Record<string, string> = {
      authorization: `Bearer ${key.apiKey}`,
      'content-type': 'application/json',
      accept: stream ? 'text/event-stream' : 'application/json',
    };
    if (provider === 'openrouter') {
      headers['http-referer'] = this.options.appUrl ?? 'https://github.com/anima-ai/anima';
      headers['x-openrouter-title'] = this.options.appTitle ?? 'Anima';
    }
    const body: Record<string, unknown> = { model: request.model, messages: request.messages, stream };
    if (request.temperature !== undefined) body.temperature = request.temperature;
    if (request.maxTokens !== undefined) body.max_tokens = request.maxTokens;
    for (const [field, value] of Object.entries(request.passthrough ?? {})) if (value !== undefined) body[field] = value;
    // A no-op at OpenRouter (usage always comes); OpenAI and xAI stream usage only when asked.
    if (stream) body.stream_options = { include_usage: true };

    let response: UpstreamResponse;
    try {
      response = await postUpstream(`${baseUrl}/chat/completions`, { headers, body: JSON.stringify(body), signal: deadline.signal }, this.options.fetch);
    } catch (error) {
      throw this.transportError(error, deadline);
    }
    if (response.ok) return response;
    const text = await response.text().catch(() => '');
    const parsed = parseJson(text) as WireResponse | undefined;
    throw this.errorFromBody(parsed ?? {}, response.status, key, undefined, parseRetryAfter(response.headers.get('retry-after')));
  }

  private errorFromBody(
    body: WireResponse,
    httpStatus: number,
    key: ResolvedProviderKey,
    forcedKind: 'stream_error' | undefined,
    retryAfterSeconds?: number,
  ): ProviderCallError {
    const { provider } = this.options;
    const { message, status } = describeVendorError(body.error);
    // OpenRouter's error code equals the HTTP status; for a 200 with an error body it is the real one.
    const effectiveStatus = httpStatus >= 400 ? httpStatus : (status ?? 502);
    const kind = forcedKind ?? kindForStatus(effectiveStatus);
    const safeMessage = redact(message ?? `HTTP ${effectiveStatus}`, key);
    return new ProviderCallError(provider, kind, `${provider} answered ${effectiveStatus}: ${safeMessage}`, {
      upstreamStatus: effectiveStatus,
      retryAfterSeconds,
    });
  }

  private transportError(error: unknown, deadline: CallDeadline): ProviderCallError {
    const { provider } = this.options;
    if (deadline.timedOut) return new ProviderCallError(provider, 'timeout', `${provider} did not answer within ${this.options.timeoutMs} ms.`, { cause: error });
    if (deadline.callerAborted) return new ProviderCallError(provider, 'aborted', 'The client went away; the upstream call was cancelled.', { cause: error });
    return new ProviderCallError(provider, 'network', `Could not reach ${provider}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

async function* rearmOnChunk(body: AsyncIterable<Uint8Array>, deadline: CallDeadline): AsyncGenerator<Uint8Array> {
  for await (const chunk of body) {
    deadline.rearm();
    yield chunk;
  }
}

function toUsage(usage: WireUsage | null | undefined): ChatUsage {
  return {
    promptTokens: usage?.prompt_tokens ?? 0,
    completionTokens: usage?.completion_tokens ?? 0,
    ...(typeof usage?.cost === 'number' ? { costUsd: usage.cost } : {}),
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The vendors' error shapes: `{error:{code:int|string,message}}`, `{error:"text"}`, `{code,error}`. */
function describeVendorError(error: unknown): { message: string | undefined; status: number | undefined } {
  if (typeof error === 'string') return { message: error, status: undefined };
  if (error && typeof error === 'object') {
    const record = error as { message?: unknown; code?: unknown };
    const message = typeof record.message === 'string' ? record.message : undefined;
    const code = typeof record.code === 'number' ? record.code : typeof record.code === 'string' && /^\d{3}$/.test(record.code) ? Number(record.code) : undefined;
    return { message, status: code };
  }
  return { message: undefined, status: undefined };
}

/** A vendor may quote the key back; the user sees only its masked form. */
function redact(text: string, key: ResolvedProviderKey): string {
  return key.apiKey ? text.split(key.apiKey).join(key.masked) : text;
}
