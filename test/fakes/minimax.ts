/**
 * MiniMax T2A v2 fake: `POST /v1/t2a_v2` (hex audio or a URL, non-stream and SSE) and the
 * `POST /v1/get_voice` key check. Like the vendor it answers most errors as HTTP 200 with
 * `base_resp.status_code != 0`, sends a `Trace-Id` header and ignores `?GroupId=`.
 * Its root stands for `https://api.minimax.io`.
 */
import { randomUUID } from 'node:crypto';
import { bearerToken, plainObject, startFakeServer, type FakeContext, type FaultRule, type FakeServer } from './fake-server.js';
import { MP3_SAMPLE_RATES, mp3Layout, silentMp3, silentPcm, silentWav } from './media.js';

export interface MiniMaxSettings {
  validKeys: string[];
  msPerCharacter: number;
  /** Characters the account can still pay for; beyond it answers 1008. Null = unlimited. */
  remainingCharacters: number | null;
  /** Number of SSE audio events a streamed answer is split into (before the final one). */
  streamEvents: number;
  chunkDelayMs: number;
  systemVoices: Array<{ voice_id: string; voice_name: string; description?: string[] }>;
}

export interface MiniMaxFake extends FakeServer {
  settings: MiniMaxSettings;
  errorBody(status: number): unknown;
  /**
   * The next `times` (default 1) T2A/get_voice calls answer HTTP 200 with this base_resp code
   * (1000 unknown, 1001 timeout, 1002 rate limit, 1004 auth, 1008 balance, 1024 internal, …).
   */
  failWithCode(statusCode: number, options?: { times?: number; message?: string }): () => void;
}

export const MINIMAX_MESSAGES: Record<number, string> = {
  1000: 'unknown error',
  1001: 'request timeout',
  1002: 'rate limit exceeded, please try again later',
  1004: "login fail: Please carry the API secret key in the 'Authorization' field of the request header",
  1008: 'insufficient balance',
  1024: 'internal error',
  1039: 'token limit',
  2013: 'invalid params',
  2038: 'user has not completed real-name verification',
};

export function miniMaxErrorBody(statusCode: number, message?: string): Record<string, unknown> {
  return {
    trace_id: randomUUID().replaceAll('-', ''),
    base_resp: { status_code: statusCode, status_msg: message ?? MINIMAX_MESSAGES[statusCode] ?? 'error' },
  };
}

/** The base_resp code a real HTTP status would carry, for injected HTTP faults. */
function codeForStatus(status: number): number {
  if (status === 401 || status === 403) return 1004;
  if (status === 402) return 1008;
  if (status === 429) return 1002;
  if (status === 408 || status === 504) return 1001;
  if (status >= 500) return 1024;
  return 1000;
}

interface AudioSetting {
  format: 'mp3' | 'pcm' | 'wav';
  sampleRate: number;
  bitrate: number;
  channel: 1 | 2;
}

function readAudioSetting(raw: unknown): AudioSetting | string {
  const setting = plainObject(raw);
  const format = setting.format ?? 'mp3';
  const sampleRate = setting.sample_rate ?? 32000;
  const bitrate = setting.bitrate ?? 128000;
  const channel = setting.channel ?? 1;
  if (format !== 'mp3' && format !== 'pcm' && format !== 'wav') return `invalid params, audio_setting.format ${JSON.stringify(format)} is not supported by the fake`;
  if (typeof sampleRate !== 'number' || sampleRate < 8000 || sampleRate > 44100) return 'invalid params, audio_setting.sample_rate';
  if (format === 'mp3' && !MP3_SAMPLE_RATES.includes(sampleRate)) return 'invalid params, audio_setting.sample_rate';
  if (bitrate !== 32000 && bitrate !== 64000 && bitrate !== 128000 && bitrate !== 256000) return 'invalid params, audio_setting.bitrate';
  if (channel !== 1 && channel !== 2) return 'invalid params, audio_setting.channel';
  return { format, sampleRate, bitrate, channel };
}

export async function startMiniMaxFake(options: Partial<MiniMaxSettings> = {}): Promise<MiniMaxFake> {
  const settings: MiniMaxSettings = {
    validKeys: ['test-key'],
    msPerCharacter: 60,
    remainingCharacters: null,
    streamEvents: 4,
    chunkDelayMs: 0,
    systemVoices: [
      { voice_id: 'male-qn-qingse', voice_name: '青涩青年音色' },
      { voice_id: 'female-shaonv', voice_name: '少女音色' },
      { voice_id: 'English_Graceful_Lady', voice_name: 'Graceful Lady' },
      { voice_id: 'English_Trustworth_Man', voice_name: 'Trustworthy Man' },
    ],
    ...options,
  };

  const traceHeader = (): Record<string, string> => ({ 'trace-id': randomUUID().replaceAll('-', '') });

  const synthesize = async (context: FakeContext): Promise<void> => {
    const body = plainObject(context.request.body);
    const text = body.text;
    if (typeof text !== 'string' || text.length === 0) {
      await context.json(200, miniMaxErrorBody(2013, 'invalid params, text is empty'));
      return;
    }
    if (typeof body.model !== 'string') {
      await context.json(200, miniMaxErrorBody(2013, 'invalid params, model is required'));
      return;
    }
    const audioSetting = readAudioSetting(body.audio_setting);
    if (typeof audioSetting === 'string') {
      await context.json(200, miniMaxErrorBody(2013, audioSetting));
      return;
    }
    if (settings.remainingCharacters !== null) {
      if (text.length > settings.remainingCharacters) {
        await context.json(200, miniMaxErrorBody(1008));
        return;
      }
      settings.remainingCharacters -= text.length;
    }
    const voiceSetting = plainObject(body.voice_setting);
    Object.assign(context.request.meta, { model: body.model, voiceId: voiceSetting.voice_id, format: audioSetting.format, groupId: context.request.query.GroupId });

    const durationMs = text.length * settings.msPerCharacter;
    const audio =
      audioSetting.format === 'mp3'
        ? silentMp3(durationMs, audioSetting.sampleRate, audioSetting.bitrate / 1000, audioSetting.channel)
        : audioSetting.format === 'wav'
          ? silentWav(durationMs, audioSetting.sampleRate, audioSetting.channel)
          : silentPcm(durationMs, audioSetting.sampleRate, audioSetting.channel);
    const encodedBitrate = audioSetting.format === 'mp3' ? mp3Layout(audioSetting.sampleRate, audioSetting.bitrate / 1000).kbps * 1000 : audioSetting.bitrate;
    const extraInfo = {
      audio_length: durationMs,
      audio_sample_rate: audioSetting.sampleRate,
      audio_size: audio.length,
      bitrate: encodedBitrate,
      word_count: text.split(/\s+/).filter(Boolean).length,
      invisible_character_ratio: 0,
      usage_characters: text.length,
      audio_format: audioSetting.format,
      audio_channel: audioSetting.channel,
    };
    const traceId = randomUUID().replaceAll('-', '');
    const ok = { status_code: 0, status_msg: 'success' };

    if (body.stream !== true) {
      const asUrl = body.output_format === 'url';
      const contentType = audioSetting.format === 'mp3' ? 'audio/mpeg' : audioSetting.format === 'wav' ? 'audio/wav' : 'audio/pcm';
      const payload = asUrl ? context.storeFile(audio, contentType, audioSetting.format) : audio.toString('hex');
      await context.json(200, { data: { audio: payload, status: 2 }, extra_info: extraInfo, trace_id: traceId, base_resp: ok }, { 'trace-id': traceId });
      return;
    }
    const writer = context.sse({ 'trace-id': traceId }, settings.chunkDelayMs);
    const events = Math.max(1, settings.streamEvents);
    const size = Math.ceil(audio.length / events);
    for (let offset = 0; offset < audio.length; offset += size) {
      const chunk = audio.subarray(offset, offset + size).toString('hex');
      if (!(await writer.data({ data: { audio: chunk, status: 1 }, trace_id: traceId, base_resp: ok }))) return;
    }
    // The final event repeats the whole audio unless the client opted out.
    const exclude = plainObject(body.stream_options).exclude_aggregated_audio === true;
    if (!(await writer.data({ data: { audio: exclude ? '' : audio.toString('hex'), status: 2 }, extra_info: extraInfo, trace_id: traceId, base_resp: ok }))) return;
    writer.end();
  };

  const server = await startFakeServer(
    async (context) => {
      const { method, path } = context.request;
      const key = bearerToken(context.request.headers);
      if (key === undefined || !settings.validKeys.includes(key)) {
        await context.json(200, miniMaxErrorBody(1004, key === undefined ? undefined : 'login fail: invalid api key'));
        return;
      }
      if (method === 'POST' && path === '/v1/t2a_v2') {
        await synthesize(context);
        return;
      }
      if (method === 'POST' && path === '/v1/get_voice') {
        const voiceType = plainObject(context.request.body).voice_type ?? 'all';
        const system = voiceType === 'system' || voiceType === 'all' ? settings.systemVoices : [];
        await context.json(200, {
          system_voice: system,
          voice_cloning: [],
          voice_generation: [],
          music_generation: [],
          base_resp: { status_code: 0, status_msg: 'success' },
        });
        return;
      }
      await context.json(404, miniMaxErrorBody(1000, `not found: ${method} ${path}`));
    },
    {
      errorBody: (status) => miniMaxErrorBody(codeForStatus(status)),
      commonHeaders: traceHeader,
    },
  );

  const failWithCode: MiniMaxFake['failWithCode'] = (statusCode, failOptions = {}) => {
    const rule: FaultRule = { status: 200, body: miniMaxErrorBody(statusCode, failOptions.message), times: failOptions.times ?? 1 };
    return server.faults.add(rule);
  };
  return { ...server, settings, errorBody: (status) => miniMaxErrorBody(codeForStatus(status)), failWithCode };
}
