import { parseBuffer } from 'music-metadata';
import { joinWav, PCM_SAMPLE_RATE, type SpeechFormat } from '../../providers/speech/index.js';

/**
 * Audio helpers of the voice service: splitting text for vendor limits, joining the parts' audio,
 * and measuring what was produced (music-metadata reads MP3 / WAV / OGG… headers and frames).
 */

/**
 * Splits text into pieces of at most `limit` characters, at sentence ends where possible, then at
 * clause or word boundaries, and only as a last resort inside a word.
 */
export function splitText(text: string, limit: number): string[] {
  if (text.length <= limit) return [text];
  const sentences = text.match(/[^.!?…。！？]+(?:[.!?…。！？]+["'”’)\]]*\s*|$)/g) ?? [text];
  const pieces: string[] = [];
  let current = '';
  const push = (piece: string): void => {
    if (piece.trim()) pieces.push(piece.trim());
  };
  for (const sentence of sentences) {
    if (current.length + sentence.length <= limit) {
      current += sentence;
      continue;
    }
    push(current);
    current = '';
    if (sentence.length <= limit) {
      current = sentence;
      continue;
    }
    for (const piece of splitLong(sentence, limit)) {
      if (current.length + piece.length <= limit) current += piece;
      else {
        push(current);
        current = piece;
      }
    }
  }
  push(current);
  return pieces;
}

function splitLong(sentence: string, limit: number): string[] {
  const words = sentence.match(/\S+\s*/g) ?? [sentence];
  const pieces: string[] = [];
  for (const word of words) {
    if (word.length <= limit) pieces.push(word);
    else for (let offset = 0; offset < word.length; offset += limit) pieces.push(word.slice(offset, offset + limit));
  }
  return pieces;
}

/** One file from the parts' audio: MP3 frames and raw PCM concatenate; WAV gets one header. */
export function joinAudio(format: SpeechFormat, parts: Buffer[]): Buffer {
  if (parts.length === 1) return parts[0]!;
  return format === 'wav' ? joinWav(parts) : Buffer.concat(parts);
}

const MIME_OF: Record<SpeechFormat, string> = { mp3: 'audio/mpeg', wav: 'audio/wav', pcm: 'audio/pcm' };

/**
 * Seconds of audio in these bytes, or undefined when they are not audio of that format. PCM has no
 * header: its length is its duration (16-bit mono at PCM_SAMPLE_RATE).
 */
export async function measureSeconds(format: SpeechFormat, bytes: Buffer): Promise<number | undefined> {
  if (bytes.length === 0) return undefined;
  if (format === 'pcm') return bytes.length / (PCM_SAMPLE_RATE * 2);
  try {
    const metadata = await parseBuffer(bytes, { mimeType: MIME_OF[format], size: bytes.length }, { duration: true, skipCovers: true });
    const seconds = metadata.format.duration;
    return seconds !== undefined && Number.isFinite(seconds) && seconds > 0 ? seconds : undefined;
  } catch {
    return undefined;
  }
}

export interface SniffedAudio {
  mimeType: string;
  seconds: number | undefined;
  extension: string;
}

const CONTAINER_MIME: Array<[RegExp, string, string]> = [
  [/mpeg|mp3/i, 'audio/mpeg', 'mp3'],
  [/wav|wave/i, 'audio/wav', 'wav'],
  [/ogg/i, 'audio/ogg', 'ogg'],
  [/webm|matroska|ebml/i, 'audio/webm', 'webm'],
  [/flac/i, 'audio/flac', 'flac'],
  [/mp4|m4a|aac|isom|quicktime/i, 'audio/mp4', 'm4a'],
  [/aiff/i, 'audio/aiff', 'aiff'],
];

/**
 * What kind of audio a voice message is, read from its bytes (a client's content type is only a
 * hint); undefined when the bytes are not audio at all.
 */
export async function sniffAudio(bytes: Buffer, hintedMimeType: string | undefined): Promise<SniffedAudio | undefined> {
  if (bytes.length < 4) return undefined;
  // A wrong hint (a CDN's audio/ogg on MP3 bytes) must not hide audio the bytes themselves show.
  return (await sniffWith(bytes, hintedMimeType)) ?? (hintedMimeType === undefined ? undefined : await sniffWith(bytes, undefined));
}

async function sniffWith(bytes: Buffer, hintedMimeType: string | undefined): Promise<SniffedAudio | undefined> {
  try {
    const metadata = await parseBuffer(bytes, { mimeType: hintedMimeType, size: bytes.length }, { duration: true, skipCovers: true });
    const container = `${metadata.format.container ?? ''} ${metadata.format.codec ?? ''}`.trim();
    if (!container) return undefined;
    const known = CONTAINER_MIME.find(([pattern]) => pattern.test(container));
    if (!known) return undefined;
    const seconds = metadata.format.duration;
    return { mimeType: known[1], extension: known[2], seconds: seconds !== undefined && Number.isFinite(seconds) ? seconds : undefined };
  } catch {
    return undefined;
  }
}
