import type { ResolvedProviderKey } from '../../modules/identity/key-resolution.js';
import { kindForStatus, parseRetryAfter, ProviderCallError } from '../chat/provider-error.js';
import { scrub, transportFailure, upstreamFetch } from '../speech/http.js';
import type { TranscriptionProvider, TranscriptionRequest, TranscriptionResult } from './transcription-provider.js';

/** OpenAI's multipart `POST /audio/transcriptions` (also any server that copies it: Groq, local Whisper…). */
export class OpenAiTranscriptionProvider implements TranscriptionProvider {
  readonly defaultModel = 'gpt-4o-mini-transcribe';

  constructor(private readonly options: { provider: string; baseUrl: string; timeoutMs: number; fetch?: typeof fetch }) {}

  async transcribe(request: TranscriptionRequest, key: ResolvedProviderKey): Promise<TranscriptionResult> {
    const { provider, timeoutMs } = this.options;
    const model = request.model ?? this.defaultModel;
    const form = new FormData();
    form.set('file', new Blob([new Uint8Array(request.audio)], { type: request.mimeType }), request.filename);
    form.set('model', model);
    form.set('response_format', 'json');
    if (request.language) form.set('language', request.language);
    if (request.prompt) form.set('prompt', request.prompt);
    const { response, deadline } = await upstreamFetch(provider, `${this.options.baseUrl}/audio/transcriptions`, { method: 'POST', headers: { authorization: `Bearer ${key.apiKey}` }, body: form }, { timeoutMs, signal: request.signal, fetch: this.options.fetch });
    try {
      const raw = await response.text();
      let body: { text?: string; error?: { message?: string; code?: string }; usage?: { type?: string; seconds?: number; input_tokens?: number; output_tokens?: number } } = {};
      try {
        body = JSON.parse(raw) as typeof body;
      } catch {
        body = {};
      }
      if (!response.ok) {
        const message = scrub(body.error?.message ?? `HTTP ${response.status}`, key.apiKey, key.masked);
        throw new ProviderCallError(provider, kindForStatus(response.status), `${provider} answered ${response.status}: ${message}`, {
          upstreamStatus: response.status,
          retryAfterSeconds: parseRetryAfter(response.headers.get('retry-after')),
        });
      }
      if (typeof body.text !== 'string') throw new ProviderCallError(provider, 'invalid_request', `${provider} answered without a transcript.`, { upstreamStatus: response.status });
      return {
        text: body.text,
        model,
        seconds: body.usage?.type === 'duration' ? body.usage.seconds : undefined,
        promptTokens: body.usage?.input_tokens,
        completionTokens: body.usage?.output_tokens,
      };
    } catch (error) {
      throw transportFailure(provider, error, deadline, timeoutMs);
    } finally {
      deadline.dispose(true);
    }
  }
}
