import type { ResolvedProviderKey } from '../../modules/identity/key-resolution.js';

/**
 * One text-to-speech interface for every vendor (ElevenLabs, MiniMax). Adapters speak one piece of
 * text within the vendor's limit; splitting longer texts and joining the audio is the voice
 * service's job (`audio-format.ts`), so it works the same for every vendor.
 */

/** What clients may ask for. PCM is signed 16-bit little-endian mono at 24 kHz. */
export const SPEECH_FORMATS = ['mp3', 'wav', 'pcm'] as const;
export type SpeechFormat = (typeof SPEECH_FORMATS)[number];

export const PCM_SAMPLE_RATE = 24_000;

export const CONTENT_TYPES: Record<SpeechFormat, string> = {
  mp3: 'audio/mpeg',
  wav: 'audio/wav',
  pcm: 'audio/pcm',
};

export interface SpeechRequest {
  text: string;
  /** The vendor's own voice id. */
  voiceId: string;
  /** The vendor's model id; undefined = the adapter's default. */
  model?: string | undefined;
  format: SpeechFormat;
  /** 0.5–2, 1 = normal. */
  speed?: number | undefined;
  /** Vendor voice settings (ElevenLabs stability / similarity_boost / style; MiniMax emotion / pitch / vol). */
  settings?: SpeechVoiceSettings | undefined;
  signal?: AbortSignal | undefined;
}

export interface SpeechVoiceSettings {
  stability?: number | undefined;
  similarityBoost?: number | undefined;
  style?: number | undefined;
  emotion?: string | undefined;
  pitch?: number | undefined;
  volume?: number | undefined;
}

export interface SpeechResult {
  audio: Buffer;
  contentType: string;
  model: string;
  /** Characters the vendor billed (ElevenLabs `character-cost`, MiniMax `usage_characters`), else the text's. */
  characters: number;
  /** Seconds of audio as the vendor reported them, where it does (MiniMax `audio_length`). */
  seconds?: number | undefined;
}

export interface SpeechStream {
  contentType: string;
  model: string;
  /** Audio bytes as they arrive. Throws a ProviderCallError when the stream breaks. */
  chunks: AsyncIterable<Buffer>;
  /** After `chunks` ended: what the vendor reported (characters billed, seconds where known). */
  summary(): { characters: number; seconds?: number | undefined };
}

export interface SpeechProvider {
  /** The default model when a request names none. */
  readonly defaultModel: string;
  /** The most characters one call of this model may carry. */
  maxCharacters(model: string | undefined): number;
  synthesize(request: SpeechRequest, key: ResolvedProviderKey): Promise<SpeechResult>;
  /** Resolves once the vendor accepted the call (errors before the first byte reject here). */
  stream(request: SpeechRequest, key: ResolvedProviderKey): Promise<SpeechStream>;
}
