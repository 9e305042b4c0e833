import { deflateSync } from 'node:zlib';
import extractChunks from 'png-chunks-extract';
import encodeChunks from 'png-chunks-encode';
import { ValidationError } from '../../infra/http/errors.js';

/**
 * Character cards inside PNG images, as SillyTavern writes them: tEXt chunks whose keyword is
 * `chara` (V2 JSON, base64) and `ccv3` (V3 JSON, base64). Readers prefer `ccv3`.
 */

const CARD_KEYWORDS = new Set(['chara', 'ccv3']);

interface Chunk {
  name: string;
  data: Uint8Array;
}

function readChunks(png: Uint8Array): Chunk[] {
  try {
    return extractChunks(png);
  } catch (error) {
    throw new ValidationError('body', `The body is not a valid PNG image: ${(error as Error).message}.`);
  }
}

function textChunk(keyword: string, text: string): Chunk {
  // tEXt is Latin-1 text: keyword, a zero byte, then the text. Base64 is plain ASCII.
  return { name: 'tEXt', data: Buffer.concat([Buffer.from(keyword, 'latin1'), Buffer.from([0]), Buffer.from(text, 'latin1')]) };
}

function parseTextChunk(chunk: Chunk): { keyword: string; text: string } | undefined {
  const bytes = Buffer.from(chunk.data.buffer, chunk.data.byteOffset, chunk.data.byteLength);
  const separator = bytes.indexOf(0);
  if (separator <= 0) return undefined;
  return { keyword: bytes.subarray(0, separator).toString('latin1'), text: bytes.subarray(separator + 1).toString('latin1') };
}

function decodeCardText(keyword: string, text: string): unknown {
  try {
    return JSON.parse(Buffer.from(text, 'base64').toString('utf8'));
  } catch {
    throw new ValidationError('body', `The PNG's "${keyword}" chunk is not base64-encoded JSON.`);
  }
}

/** The card JSON embedded in a PNG (`ccv3` preferred over `chara`). */
export function readCardFromPng(png: Uint8Array): unknown {
  const texts = new Map<string, string>();
  for (const chunk of readChunks(png)) {
    if (chunk.name !== 'tEXt') continue;
    const parsed = parseTextChunk(chunk);
    if (parsed && CARD_KEYWORDS.has(parsed.keyword.toLowerCase())) texts.set(parsed.keyword.toLowerCase(), parsed.text);
  }
  const v3 = texts.get('ccv3');
  if (v3 !== undefined) return decodeCardText('ccv3', v3);
  const v2 = texts.get('chara');
  if (v2 !== undefined) return decodeCardText('chara', v2);
  throw new ValidationError('body', 'The PNG carries no character card (no tEXt chunk "chara" or "ccv3").');
}

/** The image without any embedded card, to keep as the avatar. */
export function stripCardFromPng(png: Uint8Array): Buffer {
  const chunks = readChunks(png).filter((chunk) => {
    if (chunk.name !== 'tEXt') return true;
    const parsed = parseTextChunk(chunk);
    return !(parsed && CARD_KEYWORDS.has(parsed.keyword.toLowerCase()));
  });
  return Buffer.from(encodeChunks(chunks));
}

/** The image with both cards embedded (replacing any it carried), before IEND. */
export function writeCardsToPng(png: Uint8Array, cards: { v2: unknown; v3: unknown }): Buffer {
  const chunks = readChunks(stripCardFromPng(png));
  const end = chunks.findIndex((chunk) => chunk.name === 'IEND');
  const cardChunks = [
    textChunk('chara', Buffer.from(JSON.stringify(cards.v2), 'utf8').toString('base64')),
    textChunk('ccv3', Buffer.from(JSON.stringify(cards.v3), 'utf8').toString('base64')),
  ];
  chunks.splice(end === -1 ? chunks.length : end, 0, ...cardChunks);
  return Buffer.from(encodeChunks(chunks));
}

/** A solid-colour 256×256 PNG whose colour comes from the name, for characters without an avatar. */
export function placeholderPng(name: string): Buffer {
  const size = 256;
  let hash = 2166136261;
  for (const character of name) hash = Math.imul(hash ^ (character.codePointAt(0) ?? 0), 16777619) >>> 0;
  const red = 64 + (hash & 0x7f);
  const green = 64 + ((hash >>> 8) & 0x7f);
  const blue = 64 + ((hash >>> 16) & 0x7f);
  const row = Buffer.alloc(1 + size * 3);
  for (let x = 0; x < size; x += 1) row.set([red, green, blue], 1 + x * 3);
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit depth, truecolour, deflate, adaptive filtering, no interlace
  return Buffer.from(
    encodeChunks([
      { name: 'IHDR', data: header },
      { name: 'IDAT', data: deflateSync(Buffer.concat(Array.from({ length: size }, () => row))) },
      { name: 'IEND', data: new Uint8Array(0) },
    ]),
  );
}
