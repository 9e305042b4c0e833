import type { ResolvedProviderKey } from '../../modules/identity/key-resolution.js';
import { CallDeadline } from './call-deadline.js';
import type { ChatContentPart, ChatMessage, ChatModelProvider, ChatRequest, ChatResult, ChatStreamEvent, ChatUsage } from './chat-model.js';
import { ProviderCallError, kindForStatus, parseRetryAfter } from './provider-error.js';
import { readServerSentEvents } from './server-sent-events.js';

/**
 * Gemini chat (provider-apis §3): generateContent and streamGenerateContent?alt=sse, key in
 * x-goog-api-key. System messages become systemInstruction; assistant turns have role "model";
 * image parts must be data: URLs (Gemini takes inline bytes, not links). The stream has no
 * [DONE]: it ends at EOF. A bad key is a 400 with reason API_KEY_INVALID, mapped to rejected_key.
 */

export interface GeminiOptions {
  baseUrl: string;
  timeoutMs: number;
  fetch?: typeof fetch | undefined;
}

interface GeminiPart {
  text?: string;
  inline_data?: { mime_type: string; data: string };
}

interface GeminiResponse {
  candidates?: Array<{ content?: { parts?: Array<{ text?: string; thought?: boolean }> }; finishReason?: string }>;
  usageMetadata?: { promptTokenCount?: number; candidatesTokenCount?: number; thoughtsTokenCount?: number };
  promptFeedback?: { blockReason?: string };
  modelVersion?: string;
  error?: { code?: number; message?: string; status?: string; details?: Array<{ reason?: string }> };
}

export class GeminiChatProvider implements ChatModelProvider {
  private readonly fetchImplementation: typeof fetch;

  constructor(private readonly options: GeminiOptions) {
    this.fetchImplementation = options.fetch ?? fetch;
  }

  async complete(request: ChatRequest, key: ResolvedProviderKey): Promise<ChatResult> {
    const deadline = new CallDeadline(this.options.timeoutMs, request.signal);
    try {
      const response = await this.send(request, key, false, deadline);
      const body = (await response.json().catch((error: unknown) => {
        throw transportError(error, deadline, this.options.timeoutMs);
      })) as GeminiResponse;
      if (!body.candidates?.length) {
        throw new ProviderCallError('gemini', 'invalid_request', `gemini blocked the prompt (${body.promptFeedback?.blockReason ?? 'no candidates'}).`, { upstreamStatus: 200 });
      }
      return { text: joinText(body), finishReason: body.candidates[0]?.finishReason ?? 'STOP', model: body.modelVersion ?? request.model, usage: toUsage(body) };
    } finally {
      deadline.dispose(true);
    }
  }

  async *stream(request: ChatRequest, key: ResolvedProviderKey): AsyncGenerator<ChatStreamEvent> {
    const deadline = new CallDeadline(this.options.timeoutMs, request.signal);
    let finished = false;
    try {
      const response = await this.send(request, key, true, deadline);
      if (!response.body) throw new ProviderCallError('gemini', 'unavailable', 'gemini sent an empty stream.');
      let finishReason: string | undefined;
      let usage: ChatUsage | undefined;
      let model = request.model;
      try {
        for await (const data of readServerSentEvents(response.body as unknown as AsyncIterable<Uint8Array>)) {
          deadline.rearm();
          let chunk: GeminiResponse;
          try {
            chunk = JSON.parse(data) as GeminiResponse;
          } catch {
            // Gemini streams only JSON chunks: anything else is a broken upstream, not an empty success.
            throw new ProviderCallError('gemini', 'stream_error', 'gemini streamed data that is not a JSON chunk.');
          }
          if (chunk.error) throw errorFromBody(chunk, chunk.error.code ?? 500, key, undefined);
          const text = joinText(chunk);
          if (text) yield { type: 'delta', text };
          if (chunk.usageMetadata) usage = toUsage(chunk);
          if (chunk.modelVersion) model = chunk.modelVersion;
          const reason = chunk.candidates?.[0]?.finishReason;
          if (reason) finishReason = reason;
        }
      } catch (error) {
        if (error instanceof ProviderCallError) throw error;
        throw transportError(error, deadline, this.options.timeoutMs);
      }
      if (finishReason === undefined) throw new ProviderCallError('gemini', 'network', 'gemini closed the stream before it finished.');
      finished = true;
      yield { type: 'finish', finishReason, model, usage };
    } finally {
      deadline.dispose(!finished);
    }
  }

  private async send(request: ChatRequest, key: ResolvedProviderKey, stream: boolean, deadline: CallDeadline): Promise<Response> {
    const model = request.model.replace(/^models\//, '');
    const path = stream ? `:streamGenerateContent?alt=sse` : ':generateContent';
    const body: Record<string, unknown> = { contents: toContents(request.messages) };
    const system = request.messages.filter((message) => message.role === 'system').map((message) => textOf(message.content));
    if (system.length > 0) body.systemInstruction = { parts: [{ text: system.join('\n\n') }] };
    const generationConfig: Record<string, unknown> = {};
    if (request.temperature !== undefined) generationConfig.temperature = request.temperature;
    if (request.maxTokens !== undefined) generationConfig.maxOutputTokens = request.maxTokens;
    if (Object.keys(generationConfig).length > 0) body.generationConfig = generationConfig;
    let response: Response;
    try {
      response = await this.fetchImplementation(`${this.options.baseUrl}/v1beta/models/${encodeURIComponent(model)}${path}`, {
        method: 'POST',
        headers: { 'x-goog-api-key': key.apiKey, 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: deadline.signal,
      });
    } catch (error) {
      throw transportError(error, deadline, this.options.timeoutMs);
    }
    if (response.ok) return response;
    const parsed = (await response.json().catch(() => ({}))) as GeminiResponse;
    throw errorFromBody(parsed, response.status, key, parseRetryAfter(response.headers.get('retry-after')));
  }
}

/** Gemini's errors, with its quirk: a bad key is 400 INVALID_ARGUMENT + reason API_KEY_INVALID. */
export function errorFromBody(body: GeminiResponse, status: number, key: ResolvedProviderKey, retryAfterSeconds: number | undefined): ProviderCallError {
  const reasons = body.error?.details?.map((detail) => detail.reason) ?? [];
  const kind = reasons.includes('API_KEY_INVALID') ? 'rejected_key' : kindForStatus(status);
  const message = (body.error?.message ?? `HTTP ${status}`).split(key.apiKey).join(key.masked);
  return new ProviderCallError('gemini', kind, `gemini answered ${status}: ${message}`, { upstreamStatus: status, retryAfterSeconds });
}

export function transportError(error: unknown, deadline: CallDeadline, timeoutMs: number): ProviderCallError {
  if (deadline.timedOut) return new ProviderCallError('gemini', 'timeout', `gemini did not answer within ${timeoutMs} ms.`, { cause: error });
  if (deadline.callerAborted) return new ProviderCallError('gemini', 'aborted', 'The client went away; the upstream call was cancelled.', { cause: error });
  return new ProviderCallError('gemini', 'network', `Could not reach gemini: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
}

function toContents(messages: ChatMessage[]): Array<{ role: 'user' | 'model'; parts: GeminiPart[] }> {
  return messages
    .filter((message) => message.role !== 'system')
    .map((message) => ({
      role: message.role === 'assistant' ? ('model' as const) : ('user' as const),
      parts: toParts(message.content, message.name),
    }));
}

function toParts(content: string | ChatContentPart[] | null, name: string | undefined): GeminiPart[] {
  const prefix = name ? `${name}: ` : '';
  if (content === null) return [{ text: prefix }];
  if (typeof content === 'string') return [{ text: prefix + content }];
  const parts: GeminiPart[] = [];
  for (const part of content) {
    if (part.type === 'text') parts.push({ text: prefix + part.text });
    else {
      const match = /^data:([^;,]+);base64,(.*)$/s.exec(part.image_url.url);
      if (match) parts.push({ inline_data: { mime_type: match[1]!, data: match[2]! } });
    }
  }
  return parts;
}

function textOf(content: string | ChatContentPart[] | null): string {
  if (content === null) return '';
  return typeof content === 'string' ? content : content.flatMap((part) => (part.type === 'text' ? [part.text] : [])).join('\n');
}

export function joinText(body: GeminiResponse): string {
  return (body.candidates?.[0]?.content?.parts ?? [])
    .filter((part) => !part.thought && typeof part.text === 'string')
    .map((part) => part.text)
    .join('');
}

function toUsage(body: GeminiResponse): ChatUsage {
  return {
    promptTokens: body.usageMetadata?.promptTokenCount ?? 0,
    completionTokens: (body.usageMetadata?.candidatesTokenCount ?? 0) + (body.usageMetadata?.thoughtsTokenCount ?? 0),
  };
}
