import type { Logger } from 'pino';
import type { Config } from '../../config.js';
import { normalizeError } from '../../infra/http/error-handler.js';
import { PayloadTooLargeError, ValidationError } from '../../infra/http/errors.js';
import { safeFetch } from '../../infra/http/safe-fetch.js';
import type { ChatVoicePort, HeardVoiceMessage, SpokenReply, SpokenReplyRequest, VoiceMessage } from '../chat/voice-port.js';
import type { UserRow } from '../identity/store.js';
import type { MediaService } from '../media/index.js';
import type { VoiceService } from './service.js';

export interface ChatVoiceDependencies {
  config: Readonly<Config>;
  voice: VoiceService;
  media: MediaService;
  logger: Logger;
  /** Fetches a voice message URL; defaults to the SSRF-safe fetch. A test seam. */
  fetchAudio?: (url: string, field: string, maxBytes: number, signal: AbortSignal) => Promise<{ bytes: Buffer; contentType: string }>;
}

/** Content types a voice message may arrive with (the bytes are sniffed anyway before anything is charged). */
const AUDIO_CONTENT_TYPE = /^(audio\/|video\/(webm|mp4|ogg|quicktime)|application\/(ogg|octet-stream))/i;
const DATA_URL = /^data:((?:audio|video)\/[a-z0-9.+-]+)(?:;[a-z0-9=.+-]+)*;base64,([a-z0-9+/=\s]*)$/i;
const BASE64 = /^[A-Za-z0-9+/\s]*={0,2}\s*$/;
/** OpenAI `input_audio.format` (wav, mp3) and the other containers the transcription accepts. */
const INLINE_FORMATS: Record<string, string> = {
  wav: 'audio/wav',
  mp3: 'audio/mpeg',
  mpeg: 'audio/mpeg',
  ogg: 'audio/ogg',
  opus: 'audio/ogg',
  webm: 'audio/webm',
  flac: 'audio/flac',
  m4a: 'audio/mp4',
  mp4: 'audio/mp4',
};

/**
 * Voice in chat, for the chat module's `ChatVoicePort`: a voice message is fetched SSRF-safely
 * (or decoded), size-limited, transcribed through the gateway (OpenAI, ElevenLabs or Gemini, by
 * key availability) and kept in the media store; an answer is spoken in the character's voice
 * through the gateway, stored, and handed back as a signed, expiring URL.
 */
export class ChatVoice implements ChatVoicePort {
  constructor(private readonly dependencies: ChatVoiceDependencies) {}

  async hear(request: { user: UserRow; message: VoiceMessage; field: string; requestId: string; signal: AbortSignal }): Promise<HeardVoiceMessage> {
    const { voice, logger } = this.dependencies;
    const audio = await this.load(request.message, request.field, request.signal);
    const transcript = await voice.transcribe({
      user: request.user,
      audio: audio.bytes,
      mimeType: audio.contentType,
      field: request.field,
      requestId: request.requestId,
      source: 'chat',
      signal: request.signal,
    });
    if (!transcript.text) throw new ValidationError(request.field, 'No speech was heard in the voice message.');
    const reference: Record<string, unknown> = {
      content_type: transcript.mimeType,
      bytes: audio.bytes.length,
      seconds: Math.round(transcript.seconds * 100) / 100,
      transcribed_by: { provider: transcript.provider, model: transcript.model },
      ...(transcript.language ? { language: transcript.language } : {}),
      ...(audio.sourceUrl ? { source_url: audio.sourceUrl } : {}),
    };
    try {
      const row = await this.dependencies.media.save({
        userId: request.user.id,
        kind: 'audio',
        bytes: audio.bytes,
        contentType: transcript.mimeType,
        expiresAt: this.expiry(),
        metadata: { source: 'voice_message', request_id: request.requestId },
      });
      reference.media_id = row.id;
    } catch (error) {
      // The transcript is what the character reads; a storage hiccup costs the reference, not the turn.
      logger.warn({ err: error }, 'could not keep a voice message in the media store');
    }
    return { text: transcript.text, metadata: { audio: reference } };
  }

  async speak(request: SpokenReplyRequest): Promise<SpokenReply> {
    const { voice, media, logger } = this.dependencies;
    const { character } = request;
    if (!character.voiceId) {
      return failed(422, 'voice_not_configured', `${character.name} has no voice: set voice_id (a name from GET /v1/voices) on the character.`);
    }
    const settings = character.voiceSettings ?? {};
    try {
      const spoken = await voice.speak({
        user: request.user,
        text: request.text,
        voice: character.voiceId,
        provider: settings.provider,
        model: settings.model,
        format: 'mp3',
        speed: settings.speed,
        settings: { stability: settings.stability, similarityBoost: settings.similarityBoost, style: settings.style, emotion: settings.emotion },
        characterId: character.id,
        requestId: request.requestId,
        source: 'chat',
        signal: request.signal,
      });
      const row = await media.save({
        userId: request.user.id,
        kind: 'audio',
        bytes: spoken.audio,
        contentType: spoken.contentType,
        expiresAt: this.expiry(),
        metadata: { source: 'chat', character_id: character.id, voice: spoken.voice, provider: spoken.provider, seconds: spoken.seconds, request_id: request.requestId },
      });
      const signed = media.signedUrl(row, { origin: request.origin });
      return { audio_url: signed.url, audio_expires_at: signed.expiresAt.toISOString(), audio_seconds: Math.round(spoken.seconds * 1000) / 1000, audio_error: null };
    } catch (error) {
      const normalized = normalizeError(error);
      if (normalized.status >= 500) logger.warn({ err: error, characterId: character.id }, 'the spoken answer failed; the text answer stands');
      return failed(normalized.status, normalized.code, normalized.message);
    }
  }

  /** Stored voice audio is swept after MEDIA_AUDIO_RETENTION_DAYS (0 = kept until the user is deleted). */
  private expiry(): Date | null {
    const days = this.dependencies.config.media.audioRetentionDays;
    return days > 0 ? new Date(Date.now() + days * 86_400_000) : null;
  }

  private async load(message: VoiceMessage, field: string, signal: AbortSignal): Promise<{ bytes: Buffer; contentType: string | undefined; sourceUrl?: string }> {
    const { config } = this.dependencies;
    const maxBytes = config.voice.audioInputMaxBytes;
    const tooLarge = () => new PayloadTooLargeError(`The voice message is larger than ${maxBytes} bytes.`, { extra: { field, limit: maxBytes } });
    if (message.kind === 'inline') {
      const contentType = INLINE_FORMATS[message.format.toLowerCase()];
      if (!contentType) throw new ValidationError(field, `input_audio.format ${JSON.stringify(message.format)} is not supported: use wav or mp3 (or ogg, webm, flac, m4a).`);
      // base64 is 4 characters per 3 bytes: refuse an oversized payload before decoding it.
      if (message.base64.length > Math.ceil(maxBytes / 3) * 4 + 4) throw tooLarge();
      if (!BASE64.test(message.base64)) throw new ValidationError(field, 'input_audio.data must be base64.');
      const bytes = Buffer.from(message.base64, 'base64');
      if (bytes.length === 0) throw new ValidationError(field, 'input_audio.data is empty.');
      return { bytes, contentType };
    }
    const dataUrl = DATA_URL.exec(message.url);
    if (dataUrl) {
      if (dataUrl[2]!.length > Math.ceil(maxBytes / 3) * 4 + 4) throw tooLarge();
      const bytes = Buffer.from(dataUrl[2]!, 'base64');
      if (bytes.length === 0) throw new ValidationError(field, 'The data: URL holds no audio.');
      return { bytes, contentType: dataUrl[1]!.toLowerCase() };
    }
    if (message.url.startsWith('data:')) throw new ValidationError(field, 'Only base64 data: URLs of audio are accepted.');
    const fetched = this.dependencies.fetchAudio
      ? await this.dependencies.fetchAudio(message.url, field, maxBytes, signal)
      : await safeFetch(message.url, { allowPrivate: config.allowPrivateFetch, field, maxBytes, signal, timeoutMs: 30_000, acceptContentType: (type) => AUDIO_CONTENT_TYPE.test(type) });
    return { bytes: fetched.bytes, contentType: fetched.contentType.split(';')[0]?.trim() || undefined, sourceUrl: redact(message.url) };
  }
}

/** The URL without its query (signed CDN links carry their credentials there). */
function redact(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return url.slice(0, 200);
  }
}

function failed(status: number, code: string, message: string): SpokenReply {
  return { audio_url: null, audio_expires_at: null, audio_seconds: null, audio_error: { status, code, message } };
}
