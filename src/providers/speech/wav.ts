/**
 * RIFF/WAVE for 16-bit PCM: a header for vendors that only give raw PCM (MiniMax) and joining
 * several WAV files into one (long texts spoken in parts).
 */

/** A 44-byte header; `dataBytes` undefined = unknown length (a stream), as streaming players accept. */
export function wavHeader(dataBytes: number | undefined, sampleRate: number, channels = 1): Buffer {
  const header = Buffer.alloc(44);
  const size = dataBytes ?? 0xffffffff - 36;
  header.write('RIFF', 0, 'ascii');
  header.writeUInt32LE(Math.min(0xffffffff, size + 36), 4);
  header.write('WAVE', 8, 'ascii');
  header.write('fmt ', 12, 'ascii');
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(channels, 22);
  header.writeUInt32LE(sampleRate, 24);
  header.writeUInt32LE(sampleRate * channels * 2, 28);
  header.writeUInt16LE(channels * 2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36, 'ascii');
  header.writeUInt32LE(size, 40);
  return header;
}

export interface WavParts {
  format: Buffer;
  data: Buffer;
}

/** The `fmt ` chunk and the samples of a WAV file, or undefined when it is not one. */
export function readWav(bytes: Buffer): WavParts | undefined {
  if (bytes.length < 12 || bytes.toString('ascii', 0, 4) !== 'RIFF' || bytes.toString('ascii', 8, 12) !== 'WAVE') return undefined;
  let offset = 12;
  let format: Buffer | undefined;
  while (offset + 8 <= bytes.length) {
    const id = bytes.toString('ascii', offset, offset + 4);
    const declared = bytes.readUInt32LE(offset + 4);
    const start = offset + 8;
    const end = Math.min(bytes.length, start + declared);
    if (id === 'fmt ') format = bytes.subarray(start, end);
    if (id === 'data') return format ? { format, data: bytes.subarray(start, end) } : undefined;
    offset = end + (declared % 2);
  }
  return undefined;
}

/** One WAV from several with the same format: the samples are appended under one header. */
export function joinWav(files: Buffer[]): Buffer {
  const parts = files.map(readWav);
  const first = parts[0];
  if (!first || parts.some((part) => part === undefined)) return Buffer.concat(files);
  const data = Buffer.concat(parts.map((part) => part!.data));
  const header = Buffer.alloc(12 + 8 + first.format.length + 8);
  header.write('RIFF', 0, 'ascii');
  header.writeUInt32LE(header.length - 8 + data.length, 4);
  header.write('WAVE', 8, 'ascii');
  header.write('fmt ', 12, 'ascii');
  header.writeUInt32LE(first.format.length, 16);
  first.format.copy(header, 20);
  header.write('data', 20 + first.format.length, 'ascii');
  header.writeUInt32LE(data.length, 24 + first.format.length);
  return Buffer.concat([header, data]);
}
