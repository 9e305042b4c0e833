import type { ResolvedProviderKey } from '../../modules/identity/key-resolution.js';

/** One speech-to-text interface (provider-apis §10): OpenAI-compatible, ElevenLabs Scribe, Gemini. */
export interface TranscriptionRequest {
  audio: Buffer;
  mimeType: string;
  filename: string;
  model?: string | undefined;
  /** ISO-639-1 hint. */
  language?: string | undefined;
  prompt?: string | undefined;
  signal?: AbortSignal | undefined;
}

export interface TranscriptionResult {
  text: string;
  model: string;
  language?: string | undefined;
  /** Seconds of audio as the vendor reported them, where it does. */
  seconds?: number | undefined;
  promptTokens?: number | undefined;
  completionTokens?: number | undefined;
}

export interface TranscriptionProvider {
  readonly defaultModel: string;
  transcribe(request: TranscriptionRequest, key: ResolvedProviderKey): Promise<TranscriptionResult>;
}
