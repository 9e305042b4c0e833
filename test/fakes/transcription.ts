/**
 * Speech-to-text for the fakes (provider-apis §10): OpenAI's multipart `POST /audio/transcriptions`
 * (mounted on the OpenAI fake) and ElevenLabs' `POST /v1/speech-to-text` (on the ElevenLabs fake).
 * The audio is really read (music-metadata): a file that is not audio is refused as the vendors
 * do, and the reported duration is the file's own. The transcript is a knob.
 */
import { randomUUID } from 'node:crypto';
import { parseBuffer } from 'music-metadata';
import { headerValue, type FakeContext } from './fake-server.js';
import { openAiErrorBody } from './openai-images.js';

export interface TranscribedAudio {
  bytes: Buffer;
  mimeType: string;
  filename: string;
  seconds: number;
  model: string;
  language: string | undefined;
}

export interface TranscriptionSettings {
  /** The transcript: fixed, or computed from the audio. */
  transcript: string | ((audio: TranscribedAudio) => string);
}

export const DEFAULT_TRANSCRIPT = (audio: TranscribedAudio): string => `Voice message of ${audio.seconds.toFixed(1)} seconds.`;

export async function readMultipart(context: FakeContext): Promise<FormData | undefined> {
  const contentType = headerValue(context.request.headers, 'content-type') ?? '';
  if (!contentType.startsWith('multipart/form-data')) return undefined;
  try {
    return await new Request('http://fake.invalid/', { method: 'POST', headers: { 'content-type': contentType }, body: new Uint8Array(context.request.rawBody) }).formData();
  } catch {
    return undefined;
  }
}

/** The audio's duration in seconds, or undefined when the bytes are not audio. */
export async function audioSeconds(bytes: Buffer, mimeType: string): Promise<number | undefined> {
  try {
    const metadata = await parseBuffer(bytes, { mimeType, size: bytes.length }, { duration: true, skipCovers: true });
    if (!metadata.format.container && !metadata.format.codec) return undefined;
    return metadata.format.duration ?? undefined;
  } catch {
    return undefined;
  }
}

function transcriptOf(settings: TranscriptionSettings, audio: TranscribedAudio): string {
  return typeof settings.transcript === 'string' ? settings.transcript : settings.transcript(audio);
}

async function fileField(form: FormData, name: string): Promise<{ bytes: Buffer; mimeType: string; filename: string } | undefined> {
  const file = form.get(name);
  if (file === null || typeof file === 'string') return undefined;
  return { bytes: Buffer.from(await file.arrayBuffer()), mimeType: file.type || 'application/octet-stream', filename: file.name || 'audio' };
}

/** OpenAI `POST /audio/transcriptions`: `json` (default), `text`, `verbose_json`. */
export async function handleOpenAiTranscription(context: FakeContext, settings: TranscriptionSettings): Promise<void> {
  const form = await readMultipart(context);
  if (!form) {
    await context.json(400, openAiErrorBody("Could not parse multipart form", 'invalid_request_error'));
    return;
  }
  const model = form.get('model');
  if (typeof model !== 'string' || model === '') {
    await context.json(400, openAiErrorBody("you must provide a model parameter", 'invalid_request_error', 'model'));
    return;
  }
  const file = await fileField(form, 'file');
  if (!file) {
    await context.json(400, openAiErrorBody("Missing required parameter: 'file'.", 'invalid_request_error', 'file'));
    return;
  }
  const seconds = await audioSeconds(file.bytes, file.mimeType);
  if (seconds === undefined) {
    await context.json(400, openAiErrorBody('Invalid file format. Supported formats: [\'flac\', \'m4a\', \'mp3\', \'mp4\', \'mpeg\', \'mpga\', \'oga\', \'ogg\', \'wav\', \'webm\']', 'invalid_request_error', null, 'invalid_value'));
    return;
  }
  const language = typeof form.get('language') === 'string' ? (form.get('language') as string) : undefined;
  const audio: TranscribedAudio = { ...file, seconds, model, language };
  Object.assign(context.request.meta, { model, filename: file.filename, mimeType: file.mimeType, bytes: file.bytes.length, seconds, language });
  const text = transcriptOf(settings, audio);
  const format = (form.get('response_format') as string | null) ?? 'json';
  const usage = model === 'whisper-1' ? { type: 'duration', seconds: Math.ceil(seconds) } : { type: 'tokens', input_tokens: Math.ceil(seconds * 10), output_tokens: Math.ceil(text.length / 4), total_tokens: Math.ceil(seconds * 10) + Math.ceil(text.length / 4) };
  switch (format) {
    case 'text':
      await context.send(200, text, { 'content-type': 'text/plain; charset=utf-8' });
      return;
    case 'verbose_json':
      await context.json(200, { task: 'transcribe', language: 'english', duration: seconds, text, segments: [{ id: 0, seek: 0, start: 0, end: seconds, text, tokens: [], temperature: 0, avg_logprob: -0.2, compression_ratio: 1.1, no_speech_prob: 0.01 }], usage: { type: 'duration', seconds: Math.ceil(seconds) } });
      return;
    default:
      await context.json(200, { text, usage });
  }
}

/** ElevenLabs `POST /v1/speech-to-text` (multipart `file`, `model_id`). */
export async function handleElevenLabsSpeechToText(context: FakeContext, settings: TranscriptionSettings): Promise<void> {
  const invalid = (field: string, message: string) => context.json(422, { detail: [{ loc: ['body', field], msg: message, type: 'value_error' }] });
  const form = await readMultipart(context);
  if (!form) {
    await invalid('file', 'multipart body expected');
    return;
  }
  const model = form.get('model_id');
  if (model !== 'scribe_v1' && model !== 'scribe_v2') {
    await invalid('model_id', 'value is not a valid enumeration member; permitted: scribe_v1, scribe_v2');
    return;
  }
  const file = await fileField(form, 'file');
  if (!file) {
    await invalid('file', 'field required');
    return;
  }
  const seconds = await audioSeconds(file.bytes, file.mimeType);
  if (seconds === undefined) {
    await context.json(400, { detail: { status: 'invalid_content', message: 'The uploaded file is not a supported audio or video file.' } });
    return;
  }
  const language = typeof form.get('language_code') === 'string' ? (form.get('language_code') as string) : undefined;
  const text = transcriptOf(settings, { ...file, seconds, model, language });
  Object.assign(context.request.meta, { model, filename: file.filename, mimeType: file.mimeType, seconds });
  const words = text.split(/(\s+)/).filter(Boolean);
  const step = words.length > 0 ? seconds / words.length : 0;
  await context.json(200, {
    language_code: language ?? 'eng',
    language_probability: 0.98,
    text,
    transcription_id: randomUUID().replaceAll('-', ''),
    audio_duration_secs: seconds,
    words: words.map((word, index) => ({ text: word, start: index * step, end: (index + 1) * step, type: /^\s+$/.test(word) ? 'spacing' : 'word', speaker_id: 'speaker_0', logprob: 0 })),
  });
}
