import type { ResolvedProviderKey } from '../../modules/identity/key-resolution.js';
import { errorFromBody, joinText } from '../chat/gemini.js';
import { parseRetryAfter, ProviderCallError } from '../chat/provider-error.js';
import { transportFailure, upstreamFetch } from '../speech/http.js';
import type { TranscriptionProvider, TranscriptionRequest, TranscriptionResult } from './transcription-provider.js';

const PROMPT = 'Transcribe this voice message verbatim. Answer with the transcript only, nothing else.';

/** Gemini: generateContent with the audio as inline_data (§10; 32 tokens per second of audio). */
export class GeminiTranscriptionProvider implements TranscriptionProvider {
  readonly defaultModel = 'gemini-2.5-flash';

  constructor(private readonly options: { baseUrl: string; timeoutMs: number; fetch?: typeof fetch }) {}

  async transcribe(request: TranscriptionRequest, key: ResolvedProviderKey): Promise<TranscriptionResult> {
    const { timeoutMs } = this.options;
    const model = (request.model ?? this.defaultModel).replace(/^models\//, '');
    const { response, deadline } = await upstreamFetch(
      'gemini',
      `${this.options.baseUrl}/v1beta/models/${encodeURIComponent(model)}:generateContent`,
      {
        method: 'POST',
        headers: { 'x-goog-api-key': key.apiKey, 'content-type': 'application/json' },
        body: JSON.stringify({
          contents: [{ role: 'user', parts: [{ text: request.prompt ? `${PROMPT} Context: ${request.prompt}` : PROMPT }, { inline_data: { mime_type: request.mimeType, data: request.audio.toString('base64') } }] }],
          generation_config: { temperature: 0 },
        }),
      },
      { timeoutMs, signal: request.signal, fetch: this.options.fetch },
    );
    try {
      const body = (await response.json().catch(() => ({}))) as Parameters<typeof errorFromBody>[0] & { usageMetadata?: { promptTokenCount?: number; candidatesTokenCount?: number } };
      if (!response.ok) throw errorFromBody(body, response.status, key, parseRetryAfter(response.headers.get('retry-after')));
      const text = joinText(body).trim();
      if (!text) throw new ProviderCallError('gemini', 'invalid_request', 'gemini returned no transcript (the audio may have been blocked).', { upstreamStatus: 200 });
      return { text, model, promptTokens: body.usageMetadata?.promptTokenCount, completionTokens: body.usageMetadata?.candidatesTokenCount };
    } catch (error) {
      throw transportFailure('gemini', error, deadline, timeoutMs);
    } finally {
      deadline.dispose(true);
    }
  }
}
