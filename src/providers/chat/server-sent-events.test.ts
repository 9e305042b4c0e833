import { describe, expect, it } from 'vitest';
import { readServerSentEvents } from './server-sent-events.js';

async function eventsOf(chunks: Array<string | Uint8Array>): Promise<string[]> {
  async function* body(): AsyncGenerator<Uint8Array> {
    for (const chunk of chunks) yield typeof chunk === 'string' ? new TextEncoder().encode(chunk) : chunk;
  }
  const out: string[] = [];
  for await (const data of readServerSentEvents(body())) out.push(data);
  return out;
}

describe('readServerSentEvents', () => {
  it('yields each event’s data, joining its data lines, skipping comments, other fields and events without data', async () => {
    const stream = ': OPENROUTER PROCESSING\n\nevent: message\ndata: {"a":1}\n\ndata:first\ndata: second\nid: 7\n\nretry: 10\n\ndata\n\n';
    expect(await eventsOf([stream])).toEqual(['{"a":1}', 'first\nsecond', '']);
  });

  it('accepts \\r\\n and \\r line endings, a \\r\\n split between chunks included', async () => {
    expect(await eventsOf(['data: one\r\n\r\ndata: two\r', '\n\r\ndata: three\r\r'])).toEqual(['one', 'two', 'three']);
  });

  it('reads events cut anywhere between chunks, a character cut in its bytes included', async () => {
    const text = 'data: café 🌙\n\ndata: {"delta":"é"}\n\n';
    const bytes = new TextEncoder().encode(text);
    for (let cut = 1; cut < bytes.length; cut += 1) {
      expect(await eventsOf([bytes.slice(0, cut), bytes.slice(cut)])).toEqual(['café 🌙', '{"delta":"é"}']);
    }
    const oneByteAtATime = Array.from(bytes, (byte) => Uint8Array.of(byte));
    expect(await eventsOf(oneByteAtATime)).toEqual(['café 🌙', '{"delta":"é"}']);
  });

  it('ends an event left open by the end of the stream', async () => {
    expect(await eventsOf(['data: [DONE]'])).toEqual(['[DONE]']);
    expect(await eventsOf(['data: a\ndata: b\n'])).toEqual(['a\nb']);
    expect(await eventsOf(['data: last\r'])).toEqual(['last']);
  });
});
