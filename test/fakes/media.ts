/**
 * Real media bytes for the fakes: solid-colour PNGs, silent MPEG audio frames, PCM and WAV.
 * Everything is generated in code so no fixture files are needed and every byte is valid.
 */
import { createHash } from 'node:crypto';
import { deflateSync } from 'node:zlib';

// ---------------------------------------------------------------- PNG

const crcTable = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n += 1) {
    let c = n;
    for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32(bytes: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of bytes) crc = (crcTable[(crc ^ byte) & 0xff] ?? 0) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const typeAndData = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(typeAndData));
  return Buffer.concat([length, typeAndData, crc]);
}

export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export type Rgb = readonly [number, number, number];

/** A solid-colour 8-bit RGB PNG of the given size. */
export function solidPng(width: number, height: number, colour: Rgb = [128, 128, 128]): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // colour type: truecolour
  header[10] = 0; // deflate
  header[11] = 0; // adaptive filtering
  header[12] = 0; // no interlace
  const row = Buffer.alloc(1 + width * 3);
  row[0] = 0; // filter type None
  for (let x = 0; x < width; x += 1) {
    row[1 + x * 3] = colour[0];
    row[2 + x * 3] = colour[1];
    row[3 + x * 3] = colour[2];
  }
  const raw = Buffer.alloc(row.length * height);
  for (let y = 0; y < height; y += 1) row.copy(raw, y * row.length);
  return Buffer.concat([
    PNG_SIGNATURE,
    pngChunk('IHDR', header),
    pngChunk('IDAT', deflateSync(raw)),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** Reads width and height from a PNG's IHDR chunk (for tests and callers of the fakes). */
export function pngDimensions(bytes: Buffer): { width: number; height: number } {
  if (!bytes.subarray(0, 8).equals(PNG_SIGNATURE) || bytes.toString('ascii', 12, 16) !== 'IHDR') {
    throw new Error('not a PNG');
  }
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

/**
 * A real baseline JPEG (JFIF, one grey component) of a solid colour: every 8x8 block carries only
 * its DC coefficient, so two tiny Huffman tables and no DCT are needed. Decoders and header
 * readers accept it like any camera JPEG.
 */
export function solidJpeg(width: number, height: number, colour: Rgb = [128, 128, 128]): Buffer {
  const grey = Math.round(0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]);
  // With all quantisers 1, a constant block's DC coefficient is 8 × (value − 128).
  const dc = 8 * (grey - 128);
  const category = dc === 0 ? 0 : Math.floor(Math.log2(Math.abs(dc))) + 1;
  const segment = (marker: number, body: Buffer): Buffer => {
    const head = Buffer.alloc(4);
    head.writeUInt16BE(0xff00 | marker, 0);
    head.writeUInt16BE(body.length + 2, 2);
    return Buffer.concat([head, body]);
  };
  const jfif = segment(0xe0, Buffer.from([0x4a, 0x46, 0x49, 0x46, 0x00, 1, 1, 0, 0, 1, 0, 1, 0, 0]));
  const quantisation = segment(0xdb, Buffer.concat([Buffer.from([0x00]), Buffer.alloc(64, 1)]));
  const frame = segment(0xc0, Buffer.from([8, height >> 8, height & 255, width >> 8, width & 255, 1, 1, 0x11, 0]));
  // DC table 0: symbols [0, category] with the 2-bit codes 00 and 01; AC table 0: only EOB, code 0.
  const dcSymbols = category === 0 ? [0] : [0, category];
  const dcCounts = Buffer.alloc(16);
  dcCounts[1] = dcSymbols.length;
  const acCounts = Buffer.alloc(16);
  acCounts[0] = 1;
  const huffman = segment(0xc4, Buffer.concat([Buffer.from([0x00]), dcCounts, Buffer.from(dcSymbols), Buffer.from([0x10]), acCounts, Buffer.from([0x00])]));
  const scanHeader = segment(0xda, Buffer.from([1, 1, 0x00, 0, 63, 0]));
  const bits: number[] = [];
  const put = (value: number, length: number) => {
    for (let bit = length - 1; bit >= 0; bit -= 1) bits.push((value >> bit) & 1);
  };
  const blocks = Math.ceil(width / 8) * Math.ceil(height / 8);
  for (let block = 0; block < blocks; block += 1) {
    const difference = block === 0 ? dc : 0;
    const size = block === 0 ? category : 0;
    put(size === 0 ? 0b00 : 0b01, 2);
    if (size > 0) put(difference >= 0 ? difference : difference + (1 << size) - 1, size);
    put(0, 1); // EOB: the 63 AC coefficients are zero
  }
  while (bits.length % 8 !== 0) bits.push(1);
  const entropy: number[] = [];
  for (let index = 0; index < bits.length; index += 8) {
    let byte = 0;
    for (let bit = 0; bit < 8; bit += 1) byte = (byte << 1) | bits[index + bit]!;
    entropy.push(byte);
    if (byte === 0xff) entropy.push(0x00); // byte stuffing
  }
  return Buffer.concat([Buffer.from([0xff, 0xd8]), jfif, quantisation, frame, huffman, scanHeader, Buffer.from(entropy), Buffer.from([0xff, 0xd9])]);
}

/** A deterministic colour for a text, so different prompts give visibly different images. */
export function colourFor(text: string): Rgb {
  const digest = createHash('sha256').update(text).digest();
  return [digest[0] ?? 0, digest[1] ?? 0, digest[2] ?? 0];
}

/**
 * The size of the bytes actually served for a nominal size: scaled so the longer side is at
 * most `maxSide`, keeping the aspect ratio, so tests stay light while metadata stays real.
 */
export function servedSize(width: number, height: number, maxSide: number | undefined): { width: number; height: number } {
  if (maxSide === undefined || Math.max(width, height) <= maxSide) return { width, height };
  const scale = maxSide / Math.max(width, height);
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

// ---------------------------------------------------------------- MPEG audio (MP3)

const MPEG1_BITRATES = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320];
const MPEG2_BITRATES = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];

interface MpegVersion {
  /** The two version bits of the header. */
  bits: number;
  sampleRateIndex: number;
  mpeg1: boolean;
}

function mpegVersion(sampleRate: number): MpegVersion {
  const table: Record<number, MpegVersion> = {
    44100: { bits: 0b11, sampleRateIndex: 0, mpeg1: true },
    48000: { bits: 0b11, sampleRateIndex: 1, mpeg1: true },
    32000: { bits: 0b11, sampleRateIndex: 2, mpeg1: true },
    22050: { bits: 0b10, sampleRateIndex: 0, mpeg1: false },
    24000: { bits: 0b10, sampleRateIndex: 1, mpeg1: false },
    16000: { bits: 0b10, sampleRateIndex: 2, mpeg1: false },
    11025: { bits: 0b00, sampleRateIndex: 0, mpeg1: false },
    12000: { bits: 0b00, sampleRateIndex: 1, mpeg1: false },
    8000: { bits: 0b00, sampleRateIndex: 2, mpeg1: false },
  };
  const version = table[sampleRate];
  if (version === undefined) throw new Error(`no MPEG audio sample rate ${sampleRate}`);
  return version;
}

export const MP3_SAMPLE_RATES = [8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000];

export interface Mp3Layout {
  header: Buffer;
  frameBytes: number;
  samplesPerFrame: number;
  /** The bitrate actually encoded (the nearest legal one not above the request). */
  kbps: number;
}

/** The 4-byte Layer III header and frame length for a sample rate and bitrate. */
export function mp3Layout(sampleRate: number, kbps: number, channels: 1 | 2 = 1): Mp3Layout {
  const version = mpegVersion(sampleRate);
  const bitrates = version.mpeg1 ? MPEG1_BITRATES : MPEG2_BITRATES;
  let index = 1;
  for (let candidate = 1; candidate < bitrates.length; candidate += 1) {
    if ((bitrates[candidate] ?? Infinity) <= kbps) index = candidate;
  }
  const encodedKbps = bitrates[index] ?? 32;
  const samplesPerFrame = version.mpeg1 ? 1152 : 576;
  const frameBytes = Math.floor(((samplesPerFrame / 8) * encodedKbps * 1000) / sampleRate);
  // 0xFFE sync, version, layer III (01), no CRC (1); bitrate, rate, no padding; channel mode,
  // "original" flag. e.g. 44.1 kHz 128 kbps stereo gives FF FB 90 64.
  const header = Buffer.from([
    0xff,
    0xe0 | (version.bits << 3) | (0b01 << 1) | 1,
    (index << 4) | (version.sampleRateIndex << 2),
    (channels === 1 ? 0b11 << 6 : 0b01 << 6) | (channels === 1 ? 0 : 0b10 << 4) | 0b0100,
  ]);
  return { header, frameBytes, samplesPerFrame, kbps: encodedKbps };
}

/**
 * Silent MP3: header + zeroed side info and main data per frame, which every decoder plays as
 * silence (part2_3_length = 0 means no Huffman data).
 */
export function silentMp3(durationMs: number, sampleRate = 44100, kbps = 128, channels: 1 | 2 = 1): Buffer {
  const layout = mp3Layout(sampleRate, kbps, channels);
  const frameMs = (layout.samplesPerFrame / sampleRate) * 1000;
  const frames = Math.max(1, Math.ceil(durationMs / frameMs));
  const frame = Buffer.alloc(layout.frameBytes);
  layout.header.copy(frame, 0);
  const out = Buffer.alloc(layout.frameBytes * frames);
  for (let index = 0; index < frames; index += 1) frame.copy(out, index * layout.frameBytes);
  return out;
}

export function mp3DurationMs(bytes: number, sampleRate: number, kbps: number): number {
  const layout = mp3Layout(sampleRate, kbps);
  const frames = Math.floor(bytes / layout.frameBytes);
  return Math.round((frames * layout.samplesPerFrame * 1000) / sampleRate);
}

// ---------------------------------------------------------------- PCM / WAV / G.711

/** Raw signed 16-bit little-endian PCM silence. */
export function silentPcm(durationMs: number, sampleRate: number, channels = 1): Buffer {
  const samples = Math.max(1, Math.round((durationMs / 1000) * sampleRate));
  return Buffer.alloc(samples * channels * 2);
}

/** A canonical 44-byte RIFF/WAVE header followed by 16-bit PCM silence. */
export function silentWav(durationMs: number, sampleRate: number, channels = 1): Buffer {
  const pcm = silentPcm(durationMs, sampleRate, channels);
  const header = Buffer.alloc(44);
  header.write('RIFF', 0, 'ascii');
  header.writeUInt32LE(36 + pcm.length, 4);
  header.write('WAVE', 8, 'ascii');
  header.write('fmt ', 12, 'ascii');
  header.writeUInt32LE(16, 16); // fmt chunk size
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(channels, 22);
  header.writeUInt32LE(sampleRate, 24);
  header.writeUInt32LE(sampleRate * channels * 2, 28); // byte rate
  header.writeUInt16LE(channels * 2, 32); // block align
  header.writeUInt16LE(16, 34); // bits per sample
  header.write('data', 36, 'ascii');
  header.writeUInt32LE(pcm.length, 40);
  return Buffer.concat([header, pcm]);
}

/** 8 kHz G.711 silence: 0xFF is µ-law zero, 0xD5 is A-law zero. */
export function silentG711(durationMs: number, law: 'ulaw' | 'alaw'): Buffer {
  return Buffer.alloc(Math.max(1, Math.round(durationMs * 8)), law === 'ulaw' ? 0xff : 0xd5);
}
