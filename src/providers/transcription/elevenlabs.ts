import type { ResolvedProviderKey } from '../../modules/identity/key-resolution.js';
import { parseRetryAfter } from '../chat/provider-error.js';
import { elevenLabsError } from '../speech/elevenlabs.js';
import { transportFailure, upstreamFetch } from '../speech/http.js';
import type { TranscriptionProvider, TranscriptionRequest, TranscriptionResult } from './transcription-provider.js';

/** ElevenLabs Scribe: multipart `POST /v1/speech-to-text` with `model_id` and `file`. */
export class ElevenLabsTranscriptionProvider implements TranscriptionProvider {
  readonly defaultModel = 'scribe_v1';

  constructor(private readonly options: { baseUrl: string; timeoutMs: number; fetch?: typeof fetch }) {}

  async transcribe(request: TranscriptionRequest, key: ResolvedProviderKey): Promise<TranscriptionResult> {
    const { timeoutMs } = this.options;
    const model = request.model ?? this.defaultModel;
    const form = new FormData();
    form.set('file', new Blob([new Uint8Array(request.audio)], { type: request.mimeType }), request.filename);
    form.set('model_id', model);
    if (request.language) form.set('language_code', request.language);
    const { response, deadline } = await upstreamFetch('elevenlabs', `${this.options.baseUrl}/v1/speech-to-text`, { method: 'POST', headers: { 'xi-api-key': key.apiKey }, body: form }, { timeoutMs, signal: request.signal, fetch: this.options.fetch });
    try {
      const raw = await response.text();
      if (!response.ok) throw elevenLabsError(response.status, raw, key, parseRetryAfter(response.headers.get('retry-after')));
      const body = JSON.parse(raw) as { text?: string; language_code?: string; audio_duration_secs?: number };
      return { text: body.text ?? '', model, language: body.language_code, seconds: body.audio_duration_secs };
    } catch (error) {
      throw transportFailure('elevenlabs', error, deadline, timeoutMs);
    } finally {
      deadline.dispose(true);
    }
  }
}
