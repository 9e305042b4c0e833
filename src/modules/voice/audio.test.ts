import { describe, expect, it } from 'vitest';
import { silentMp3, silentPcm, silentWav, solidPng } from '../../../test/fakes/media.js';
import { joinAudio, measureSeconds, sniffAudio, splitText } from './audio.js';

describe('splitText', () => {
  it('keeps short texts whole and splits long ones at sentence ends within the limit', () => {
    expect(splitText('Hello there.', 100)).toEqual(['Hello there.']);
    const text = 'One fish swims. Two fish swim fast! Are there three fish? Yes, four.';
    const parts = splitText(text, 40);
    expect(parts.every((part) => part.length <= 40)).toBe(true);
    expect(parts).toEqual(['One fish swims. Two fish swim fast!', 'Are there three fish? Yes, four.']);
    expect(parts.join(' ')).toBe(text);
  });

  it('falls back to words, and to characters for a word longer than the limit', () => {
    const parts = splitText('a '.repeat(30) + 'x'.repeat(25), 10);
    expect(parts.every((part) => part.length <= 10)).toBe(true);
    expect(parts.join('').replace(/\s/g, '')).toBe('a'.repeat(30) + 'x'.repeat(25));
  });
});

describe('audio measurement', () => {
  it('reads the duration of MP3, WAV and PCM, and refuses what is not audio', async () => {
    expect(await measureSeconds('mp3', silentMp3(2000, 44100, 128))).toBeCloseTo(2, 1);
    expect(await measureSeconds('wav', silentWav(1500, 24000))).toBeCloseTo(1.5, 2);
    expect(await measureSeconds('pcm', silentPcm(1000, 24000))).toBeCloseTo(1, 3);
    expect(await measureSeconds('mp3', Buffer.from('{"error":"not audio"}'))).toBeUndefined();
    expect(await sniffAudio(solidPng(4, 4), 'audio/mpeg')).toBeUndefined();
    expect(await sniffAudio(Buffer.from('hello world, this is text'), 'audio/ogg')).toBeUndefined();
    expect((await sniffAudio(silentMp3(1000), undefined))?.mimeType).toBe('audio/mpeg');
    expect((await sniffAudio(silentWav(1000, 16000), 'application/octet-stream'))?.mimeType).toBe('audio/wav');
    // A wrong hint (MP3 bytes labelled audio/ogg, as a CDN may) still finds the audio the bytes are.
    expect((await sniffAudio(silentMp3(1000), 'audio/ogg'))?.mimeType).toBe('audio/mpeg');
  });

  it('joins parts: MP3 frames concatenate, WAV samples go under one header', async () => {
    const mp3 = joinAudio('mp3', [silentMp3(1000), silentMp3(1000)]);
    expect(await measureSeconds('mp3', mp3)).toBeCloseTo(2, 1);
    const wav = joinAudio('wav', [silentWav(1000, 24000), silentWav(500, 24000)]);
    expect(await measureSeconds('wav', wav)).toBeCloseTo(1.5, 2);
    expect(wav.toString('ascii', 0, 4)).toBe('RIFF');
  });
});
