import type { ResolvedProviderKey } from '../../modules/identity/key-resolution.js';
import { ValidationError } from '../../infra/http/errors.js';
import { kindForStatus, parseRetryAfter, ProviderCallError } from '../chat/provider-error.js';
import { readBody, scrub, transportFailure, upstreamFetch } from './http.js';
import { CONTENT_TYPES, PCM_SAMPLE_RATE, type SpeechFormat, type SpeechProvider, type SpeechRequest, type SpeechResult, type SpeechStream } from './speech-provider.js';

/**
 * ElevenLabs text-to-speech (provider-apis §2, §11): `POST /v1/text-to-speech/{voice_id}` for
 * whole answers and `…/stream` for chunked bytes (not SSE), `xi-api-key` auth, `output_format` in
 * the query, billed characters in the `character-cost` header. Errors carry `detail` as an object
 * (`{status, message}`) or a validation array; 401 `quota_exceeded` is an empty account, not a bad key.
 */

/** Character limits per model (§11); unknown models get the most conservative one. */
const MODEL_LIMITS: Record<string, number> = {
  eleven_v3: 3000,
  eleven_flash_v2_5: 40_000,
  eleven_turbo_v2_5: 40_000,
  eleven_multilingual_v2: 10_000,
  eleven_flash_v2: 30_000,
  eleven_turbo_v2: 30_000,
};

const OUTPUT_FORMATS: Record<SpeechFormat, string> = {
  mp3: 'mp3_44100_128',
  wav: `wav_${PCM_SAMPLE_RATE}`,
  pcm: `pcm_${PCM_SAMPLE_RATE}`,
};

export interface ElevenLabsSpeechOptions {
  baseUrl: string;
  timeoutMs: number;
  fetch?: typeof fetch;
}

export class ElevenLabsSpeechProvider implements SpeechProvider {
  readonly defaultModel = 'eleven_multilingual_v2';

  constructor(private readonly options: ElevenLabsSpeechOptions) {}

  maxCharacters(model: string | undefined): number {
    return MODEL_LIMITS[model ?? this.defaultModel] ?? 3000;
  }

  private async open(request: SpeechRequest, key: ResolvedProviderKey, stream: boolean) {
    const model = request.model ?? this.defaultModel;
    const path = `/v1/text-to-speech/${encodeURIComponent(request.voiceId)}${stream ? '/stream' : ''}`;
    const settings = request.settings;
    const voiceSettings = {
      ...(settings?.stability !== undefined ? { stability: settings.stability } : {}),
      ...(settings?.similarityBoost !== undefined ? { similarity_boost: settings.similarityBoost } : {}),
      ...(settings?.style !== undefined ? { style: settings.style } : {}),
      ...(request.speed !== undefined ? { speed: request.speed } : {}),
    };
    const { response, deadline } = await upstreamFetch(
      'elevenlabs',
      `${this.options.baseUrl}${path}?output_format=${OUTPUT_FORMATS[request.format]}`,
      {
        method: 'POST',
        headers: { 'xi-api-key': key.apiKey, 'content-type': 'application/json', accept: CONTENT_TYPES[request.format] },
        body: JSON.stringify({ text: request.text, model_id: model, ...(Object.keys(voiceSettings).length > 0 ? { voice_settings: voiceSettings } : {}) }),
      },
      { timeoutMs: this.options.timeoutMs, signal: request.signal, fetch: this.options.fetch },
    );
    if (!response.ok) {
      const body = await response.text().catch(() => '');
      deadline.dispose(true);
      throw elevenLabsError(response.status, body, key, parseRetryAfter(response.headers.get('retry-after')));
    }
    const contentType = response.headers.get('content-type') ?? '';
    if (contentType.includes('json') || contentType.startsWith('text/')) {
      deadline.dispose(true);
      throw new ProviderCallError('elevenlabs', 'invalid_request', `elevenlabs answered ${contentType} instead of audio.`, { upstreamStatus: response.status });
    }
    const billed = Number(response.headers.get('character-cost'));
    return { response, deadline, model, characters: Number.isFinite(billed) && billed > 0 ? billed : request.text.length };
  }

  async synthesize(request: SpeechRequest, key: ResolvedProviderKey): Promise<SpeechResult> {
    const { response, deadline, model, characters } = await this.open(request, key, false);
    const parts: Buffer[] = [];
    try {
      for await (const chunk of readBody('elevenlabs', response, deadline, this.options.timeoutMs)) parts.push(chunk);
    } catch (error) {
      throw transportFailure('elevenlabs', error, deadline, this.options.timeoutMs);
    }
    return { audio: Buffer.concat(parts), contentType: CONTENT_TYPES[request.format], model, characters };
  }

  async stream(request: SpeechRequest, key: ResolvedProviderKey): Promise<SpeechStream> {
    const { response, deadline, model, characters } = await this.open(request, key, true);
    return {
      contentType: CONTENT_TYPES[request.format],
      model,
      chunks: readBody('elevenlabs', response, deadline, this.options.timeoutMs),
      summary: () => ({ characters }),
    };
  }
}

interface ElevenLabsErrorBody {
  detail?: { status?: string; message?: string } | Array<{ loc?: unknown[]; msg?: string }>;
}

export function elevenLabsError(status: number, raw: string, key: ResolvedProviderKey, retryAfterSeconds: number | undefined): ProviderCallError | ValidationError {
  let body: ElevenLabsErrorBody = {};
  try {
    body = JSON.parse(raw) as ElevenLabsErrorBody;
  } catch {
    // not JSON: the status decides
  }
  const detail = body.detail;
  let message = `HTTP ${status}`;
  let code: string | undefined;
  if (Array.isArray(detail)) message = detail.map((item) => `${(item.loc ?? []).join('.')}: ${item.msg ?? 'invalid'}`).join('; ');
  else if (detail) {
    message = detail.message ?? message;
    code = detail.status;
  }
  message = scrub(message, key.apiKey, key.masked);
  // An account out of characters answers 401 too; that key is fine and must not be marked invalid.
  if (code === 'quota_exceeded') return new ProviderCallError('elevenlabs', 'invalid_request', `elevenlabs: the account is out of characters (${message})`, { upstreamStatus: status });
  // The client named a voice this account cannot use: their mistake, a 422 naming the field.
  if (code === 'voice_not_found') return new ValidationError('voice', `elevenlabs does not know this voice: ${message}`);
  return new ProviderCallError('elevenlabs', kindForStatus(status), `elevenlabs answered ${status}: ${message}`, { upstreamStatus: status, retryAfterSeconds });
}
