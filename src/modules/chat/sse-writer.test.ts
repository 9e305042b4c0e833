import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { FastifyReply } from 'fastify';
import { SseWriter } from './sse-writer.js';

/** A reply whose raw response records what is written, and when (in fake-timer milliseconds). */
function recordingReply() {
  const written: Array<{ at: number; text: string }> = [];
  const raw = {
    destroyed: false,
    writableEnded: false,
    writeHead: vi.fn(),
    flushHeaders: vi.fn(),
    write: (text: string) => written.push({ at: Date.now(), text }),
    end: () => (raw.writableEnded = true),
  };
  const reply = { raw, hijack: vi.fn(), getHeaders: () => ({ 'x-request-id': 'r1' }) } as unknown as FastifyReply;
  return { reply, written };
}

describe('SseWriter keep-alives', () => {
  beforeEach(() => vi.useFakeTimers({ now: 0 }));
  afterEach(() => vi.useRealTimers());

  it('sends keep-alives only while nothing else is sent, each a whole interval after the last write', () => {
    const { reply, written } = recordingReply();
    const writer = new SseWriter(reply, 1000);
    writer.startKeepAlive();
    vi.advanceTimersByTime(1000); // a slow upstream: the first keep-alive opens the stream
    expect(written.map((entry) => entry.text)).toEqual([': keep-alive\n\n']);
    // Events every 600 ms for 6 s: never a whole interval of silence, so no keep-alive among them.
    for (let index = 0; index < 10; index += 1) {
      vi.advanceTimersByTime(600);
      writer.data({ n: index });
    }
    expect(written.slice(1).every((entry) => entry.text.startsWith('data: '))).toBe(true);
    const lastData = written.at(-1)!.at;
    // Then silence: the next keep-alive comes one interval after the last event, and every interval after that.
    vi.advanceTimersByTime(2500);
    const after = written.filter((entry) => entry.at > lastData);
    expect(after).toEqual([
      { at: lastData + 1000, text: ': keep-alive\n\n' },
      { at: lastData + 2000, text: ': keep-alive\n\n' },
    ]);
    writer.end();
    vi.advanceTimersByTime(5000);
    expect(written.filter((entry) => entry.at > lastData)).toHaveLength(2);
  });
});
