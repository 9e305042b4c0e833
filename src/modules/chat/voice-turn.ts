import type { FastifyRequest } from 'fastify';
import { AppError, ValidationError } from '../../infra/http/errors.js';
import type { UserRow } from '../identity/store.js';
import type { PreparedTurn, TurnOutcome } from './service.js';
import type { ChatVoicePort, HeardVoiceMessage, SpokenReply, VoiceMessage } from './voice-port.js';

/**
 * The chat routes' few lines of voice: a voice message heard before the turn is prepared (its
 * transcript is the user's message), and the answer spoken after the text answer. The work is the
 * voice module's (`ChatVoicePort`); this file only decides when and shapes the answer.
 */

/** Base64 of the largest voice message plus the rest of a request: the chat routes' body limit when voice is on. */
export function voiceBodyLimit(voice: ChatVoicePort | undefined, defaultLimit: number, audioInputMaxBytes: number): number {
  return voice ? Math.max(defaultLimit, Math.ceil(audioInputMaxBytes / 3) * 4 + 1_048_576) : defaultLimit;
}

/**
 * Transcribes the voice message when there is one; 422 when this server has no voice. The
 * character is looked up first, so a wrong one is a 404 before the transcription is paid for.
 */
export async function hearVoiceMessage(
  voice: ChatVoicePort | undefined,
  request: { user: UserRow; message: VoiceMessage | undefined; field: string; requestId: string; signal: AbortSignal; assertCharacter: () => Promise<unknown> },
): Promise<HeardVoiceMessage | undefined> {
  if (!request.message) return undefined;
  if (!voice) throw new ValidationError(request.field, 'Voice messages are not enabled on this server: send text.');
  await request.assertCharacter();
  return voice.hear({ user: request.user, message: request.message, field: request.field, requestId: request.requestId, signal: request.signal });
}

/** The user's message: what they typed, then what they said. */
export function withTranscript(text: string, heard: HeardVoiceMessage | undefined): string {
  if (!heard) return text;
  return text.trim() ? `${text}\n\n${heard.text}` : heard.text;
}

/** The one voice message of an OpenAI user message (`input_audio` parts); more than one is a 422. */
export function inputAudioOf(content: unknown): VoiceMessage | undefined {
  if (!Array.isArray(content)) return undefined;
  const parts = content.filter((part): part is { type: 'input_audio'; input_audio: { data: string; format: string } } => (part as { type?: unknown }).type === 'input_audio');
  if (parts.length === 0) return undefined;
  if (parts.length > 1) throw new ValidationError('messages', 'One input_audio part per message: send one voice message at a time.');
  return { kind: 'inline', base64: parts[0]!.input_audio.data, format: parts[0]!.input_audio.format };
}

/**
 * Speaks a complete text answer when the turn asked for voice (`voice: true`) or the conversation
 * has voice replies on (`!voice`) and the request did not say `voice: false`. A speech failure
 * leaves the text answer standing and comes back as `audio_error`.
 */
export async function speakAnswer(
  voice: ChatVoicePort | undefined,
  turn: PreparedTurn,
  outcome: TurnOutcome | undefined,
  request: { user: UserRow; requested: boolean | undefined; requestId: string; http: FastifyRequest; signal: AbortSignal },
): Promise<SpokenReply | undefined> {
  if (turn.kind !== 'model' || !outcome) return undefined;
  const wanted = request.requested ?? turn.conversation.voiceReplies;
  if (!wanted) return undefined;
  if (!voice) return unspoken(new AppError(501, 'voice_not_enabled', 'Speech is not enabled on this server: the answer is text only.'));
  if (outcome.status !== 'complete' || outcome.error || !outcome.text.trim()) return undefined;
  return voice.speak({
    user: request.user,
    character: turn.character,
    text: outcome.text,
    requestId: request.requestId,
    origin: `${request.http.protocol}://${request.http.host}`,
    signal: request.signal,
  });
}

function unspoken(error: AppError): SpokenReply {
  return { audio_url: null, audio_expires_at: null, audio_seconds: null, audio_error: { status: error.status, code: error.code, message: error.message } };
}

/** An OpenAI message's content without its `input_audio` parts (they are heard apart, not read). */
export function withoutAudio<Part extends { type: string }>(content: string | Part[] | null): string | Array<Exclude<Part, { type: 'input_audio' }>> | null {
  if (content === null || typeof content === 'string') return content;
  return content.filter((part): part is Exclude<Part, { type: 'input_audio' }> => part.type !== 'input_audio');
}
