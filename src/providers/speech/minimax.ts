import type { ResolvedProviderKey } from '../../modules/identity/key-resolution.js';
import { readServerSentEvents } from '../chat/server-sent-events.js';
import { kindForStatus, parseRetryAfter, ProviderCallError, type ProviderFailureKind } from '../chat/provider-error.js';
import { readBody, scrub, transportFailure, upstreamFetch } from './http.js';
import { CONTENT_TYPES, PCM_SAMPLE_RATE, type SpeechProvider, type SpeechRequest, type SpeechResult, type SpeechStream } from './speech-provider.js';
import { wavHeader } from './wav.js';

/**
 * MiniMax T2A v2 (provider-apis §5): `POST /v1/t2a_v2`, Bearer auth, audio as hex. Errors come as
 * HTTP 200 with `base_resp.status_code ≠ 0` (1002 rate limit, 1004 bad key, 1008 no balance…).
 * Streams are SSE whose last event (`status: 2`) repeats the whole audio: we ask for it to be left
 * out and drop it anyway. MiniMax has no WAV output we can rely on, so WAV is its PCM under our header.
 */

const MAX_CHARACTERS = 10_000;

interface MiniMaxBody {
  data?: { audio?: string; status?: number } | null;
  extra_info?: { audio_length?: number; usage_characters?: number } | null;
  base_resp?: { status_code?: number; status_msg?: string } | null;
}

export interface MiniMaxSpeechOptions {
  baseUrl: string;
  timeoutMs: number;
  /** Legacy hosts want `?GroupId=`; current ones ignore it. */
  groupId?: string | undefined;
  fetch?: typeof fetch;
}

export class MiniMaxSpeechProvider implements SpeechProvider {
  readonly defaultModel = 'speech-02-hd';

  constructor(private readonly options: MiniMaxSpeechOptions) {}

  maxCharacters(): number {
    return MAX_CHARACTERS;
  }

  private body(request: SpeechRequest, stream: boolean): Record<string, unknown> {
    const settings = request.settings;
    const audioSetting =
      request.format === 'mp3' ? { format: 'mp3', sample_rate: 32000, bitrate: 128000, channel: 1 } : { format: 'pcm', sample_rate: PCM_SAMPLE_RATE, bitrate: 128000, channel: 1 };
    return {
      model: request.model ?? this.defaultModel,
      text: request.text,
      stream,
      ...(stream ? { stream_options: { exclude_aggregated_audio: true } } : {}),
      voice_setting: {
        voice_id: request.voiceId,
        speed: request.speed ?? 1,
        vol: settings?.volume ?? 1,
        pitch: settings?.pitch ?? 0,
        ...(settings?.emotion ? { emotion: settings.emotion } : {}),
      },
      audio_setting: audioSetting,
      language_boost: 'auto',
      output_format: 'hex',
    };
  }

  private async open(request: SpeechRequest, key: ResolvedProviderKey, stream: boolean) {
    const query = this.options.groupId ? `?GroupId=${encodeURIComponent(this.options.groupId)}` : '';
    const { response, deadline } = await upstreamFetch(
      'minimax',
      `${this.options.baseUrl}/v1/t2a_v2${query}`,
      {
        method: 'POST',
        headers: { authorization: `Bearer ${key.apiKey}`, 'content-type': 'application/json', accept: stream ? 'text/event-stream' : 'application/json' },
        body: JSON.stringify(this.body(request, stream)),
      },
      { timeoutMs: this.options.timeoutMs, signal: request.signal, fetch: this.options.fetch },
    );
    if (!response.ok) {
      const raw = await response.text().catch(() => '');
      deadline.dispose(true);
      let parsed: MiniMaxBody = {};
      try {
        parsed = JSON.parse(raw) as MiniMaxBody;
      } catch {
        // not JSON
      }
      const code = parsed.base_resp?.status_code;
      if (code) throw miniMaxError(code, parsed.base_resp?.status_msg, key, response.status);
      throw new ProviderCallError('minimax', kindForStatus(response.status), `minimax answered ${response.status}`, {
        upstreamStatus: response.status,
        retryAfterSeconds: parseRetryAfter(response.headers.get('retry-after')),
      });
    }
    return { response, deadline, model: request.model ?? this.defaultModel };
  }

  async synthesize(request: SpeechRequest, key: ResolvedProviderKey): Promise<SpeechResult> {
    const { response, deadline, model } = await this.open(request, key, false);
    let body: MiniMaxBody;
    try {
      body = (await response.json()) as MiniMaxBody;
    } catch (error) {
      throw transportFailure('minimax', new ProviderCallError('minimax', 'stream_error', 'minimax sent a broken answer.', { cause: error }), deadline, this.options.timeoutMs);
    } finally {
      deadline.dispose(true);
    }
    throwIfFailed(body, key);
    const pcm = decodeHex(body.data?.audio);
    if (pcm.length === 0) throw new ProviderCallError('minimax', 'invalid_request', 'minimax answered without audio.', { upstreamStatus: 200 });
    const audio = request.format === 'wav' ? Buffer.concat([wavHeader(pcm.length, PCM_SAMPLE_RATE), pcm]) : pcm;
    return { audio, contentType: CONTENT_TYPES[request.format], model, ...usageOf(body, request.text) };
  }

  async stream(request: SpeechRequest, key: ResolvedProviderKey): Promise<SpeechStream> {
    const { response, deadline, model } = await this.open(request, key, true);
    if (!(response.headers.get('content-type') ?? '').includes('text/event-stream')) {
      // Refusals of a stream come as one JSON body (HTTP 200 + base_resp), not as events.
      let body: MiniMaxBody = {};
      try {
        body = (await response.json()) as MiniMaxBody;
      } catch {
        body = {};
      } finally {
        deadline.dispose(true);
      }
      throwIfFailed(body, key);
      throw new ProviderCallError('minimax', 'stream_error', 'minimax answered a stream request without a stream.', { upstreamStatus: response.status });
    }
    let summary: { characters: number; seconds?: number | undefined } = { characters: request.text.length };
    const timeoutMs = this.options.timeoutMs;
    const events = readServerSentEvents(readBody('minimax', response, deadline, timeoutMs));
    // The first event decides whether the call was accepted: a base_resp error arrives as a 200.
    const first = await events.next().catch((error: unknown) => {
      throw transportFailure('minimax', error, deadline, timeoutMs);
    });
    const wav = request.format === 'wav';
    async function* chunks(): AsyncGenerator<Buffer> {
      let delivered = 0;
      if (wav) yield wavHeader(undefined, PCM_SAMPLE_RATE);
      let pending: IteratorResult<string> = first;
      while (!pending.done) {
        let body: MiniMaxBody;
        try {
          body = JSON.parse(pending.value) as MiniMaxBody;
        } catch (error) {
          throw new ProviderCallError('minimax', 'stream_error', 'minimax sent a malformed stream event.', { cause: error });
        }
        throwIfFailed(body, key);
        const audio = decodeHex(body.data?.audio);
        if (body.data?.status === 2) {
          summary = usageOf(body, request.text);
          // The final event repeats everything already sent; only a stream that sent nothing yet uses it.
          if (delivered === 0 && audio.length > 0) yield audio;
          return;
        }
        if (audio.length > 0) {
          delivered += audio.length;
          yield audio;
        }
        pending = await events.next();
      }
      if (delivered === 0) throw new ProviderCallError('minimax', 'stream_error', 'minimax ended the stream without audio.');
    }
    if (first.done) {
      deadline.dispose(true);
      throw new ProviderCallError('minimax', 'stream_error', 'minimax ended the stream without audio.');
    }
    let opening: MiniMaxBody | undefined;
    try {
      opening = JSON.parse(first.value) as MiniMaxBody;
    } catch {
      opening = undefined; // the generator reports it as a malformed event
    }
    try {
      if (opening) throwIfFailed(opening, key);
    } catch (error) {
      deadline.dispose(true);
      throw error;
    }
    return { contentType: CONTENT_TYPES[request.format], model, chunks: chunks(), summary: () => summary };
  }
}

function decodeHex(hex: string | undefined): Buffer {
  if (!hex) return Buffer.alloc(0);
  if (!/^[0-9a-fA-F]*$/.test(hex) || hex.length % 2 !== 0) throw new ProviderCallError('minimax', 'stream_error', 'minimax sent audio that is not hex.');
  return Buffer.from(hex, 'hex');
}

function usageOf(body: MiniMaxBody, text: string): { characters: number; seconds?: number | undefined } {
  const billed = body.extra_info?.usage_characters;
  const length = body.extra_info?.audio_length;
  return {
    characters: typeof billed === 'number' && billed > 0 ? billed : text.length,
    seconds: typeof length === 'number' && length > 0 ? length / 1000 : undefined,
  };
}

function throwIfFailed(body: MiniMaxBody, key: ResolvedProviderKey): void {
  const code = body.base_resp?.status_code;
  if (code !== undefined && code !== 0) throw miniMaxError(code, body.base_resp?.status_msg, key, 200);
}

/** base_resp codes (§5) as our failure kinds: 1002 → 429, 1004 → rejected key, 1008 → the account has no balance. */
export function miniMaxError(code: number, statusMessage: string | undefined, key: ResolvedProviderKey, httpStatus: number): ProviderCallError {
  const message = scrub(statusMessage ?? 'error', key.apiKey, key.masked);
  const kinds: Record<number, ProviderFailureKind> = { 1001: 'timeout', 1002: 'rate_limited', 1004: 'rejected_key', 1024: 'unavailable', 1000: 'unavailable' };
  const kind = kinds[code] ?? 'invalid_request';
  const text =
    code === 1008
      ? `minimax: the account has insufficient balance (1008 ${message})`
      : `minimax answered ${code}: ${message}`;
  return new ProviderCallError('minimax', kind, text, { upstreamStatus: httpStatus, upstreamCode: code, ...(kind === 'rate_limited' ? { retryAfterSeconds: 1 } : {}) });
}
