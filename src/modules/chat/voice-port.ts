import type { Character } from '../characters/index.js';
import type { UserRow } from '../identity/store.js';

/**
 * What the chat needs from the voice module (injected like `imagine`; absent = the chat has no
 * voice): voice messages in (transcribed into the user's message) and spoken answers out.
 */

/** A voice message as it came: a URL (REST `audio_url`, http(s) or data:audio) or inline base64 (OpenAI `input_audio`). */
export type VoiceMessage = { kind: 'url'; url: string } | { kind: 'inline'; base64: string; format: string };

export interface HeardVoiceMessage {
  /** The transcript: it becomes the user's message. */
  text: string;
  /** Stored on the user's message: where the audio is kept, who transcribed it, how long it was. */
  metadata: Record<string, unknown>;
}

export interface SpokenReplyRequest {
  user: UserRow;
  character: Character;
  text: string;
  requestId: string;
  /** The origin the client called (the audio URL is built on it unless PUBLIC_BASE_URL is set). */
  origin: string;
  signal: AbortSignal;
}

/** A spoken answer: a signed, expiring URL of the stored audio, or why there is none (the text answer stands). */
export type SpokenReply =
  | { audio_url: string; audio_expires_at: string; audio_seconds: number; audio_error: null }
  | { audio_url: null; audio_expires_at: null; audio_seconds: null; audio_error: { status: number; code: string; message: string } };

export interface ChatVoicePort {
  /** Fetches (SSRF-safe, size-limited) and transcribes a voice message through the gateway; errors are ordinary HTTP errors. */
  hear(request: { user: UserRow; message: VoiceMessage; field: string; requestId: string; signal: AbortSignal }): Promise<HeardVoiceMessage>;
  /** Speaks an answer in the character's voice and stores it; never throws (a failure is `audio_error`). */
  speak(request: SpokenReplyRequest): Promise<SpokenReply>;
}
