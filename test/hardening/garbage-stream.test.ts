import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contractErrorForProviderFailure } from '../../src/infra/http/provider-failure.js';
import type { ResolvedProviderKey } from '../../src/modules/identity/key-resolution.js';
import { GeminiChatProvider } from '../../src/providers/chat/gemini.js';
import { OpenAiCompatibleChatProvider } from '../../src/providers/chat/openai-compatible.js';
import { ProviderCallError } from '../../src/providers/chat/provider-error.js';

const key: ResolvedProviderKey = { provider: 'openrouter', apiKey: 'sk-test', source: 'platform', providerKeyId: null, masked: 'sk-…' };

/** An upstream that streams unparseable data lines and then ends cleanly ([DONE] for OpenAI's format). */
function garbageUpstream(): Promise<{ server: Server; url: string }> {
  const server = createServer((request, response) => {
    request.resume();
    response.writeHead(200, { 'content-type': 'text/event-stream' });
    response.write('data: <html>502 Bad Gateway</html>\n\n');
    response.write('data: {"choices":[{"delta":{"content"\n\n');
    response.end(request.url?.includes('gemini') || request.url?.includes('models/') ? '' : 'data: [DONE]\n\n');
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` })));
}

describe('a stream of garbage ending cleanly', () => {
  let upstream: { server: Server; url: string };
  beforeAll(async () => {
    upstream = await garbageUpstream();
  });
  afterAll(() => upstream.server.close());

  it('is a stream_error (502, retryable) from the OpenAI-compatible adapter, not an empty success', async () => {
    const adapter = new OpenAiCompatibleChatProvider({ provider: 'openrouter', baseUrl: upstream.url, timeoutMs: 5_000 });
    const events: unknown[] = [];
    const consume = async () => {
      for await (const event of adapter.stream({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }, key)) events.push(event);
    };
    const error = await consume().then(() => undefined, (caught: unknown) => caught);
    expect(error).toBeInstanceOf(ProviderCallError);
    expect(error).toMatchObject({ kind: 'stream_error', retryable: true });
    // The HTTP edge's one mapping makes it a 502 upstream_error.
    expect(contractErrorForProviderFailure(error as ProviderCallError)).toMatchObject({ status: 502, code: 'upstream_error' });
    expect(events).toEqual([]);
  });

  it('is a stream_error from the Gemini adapter too', async () => {
    const adapter = new GeminiChatProvider({ baseUrl: upstream.url, timeoutMs: 5_000 });
    const consume = async () => {
      for await (const event of adapter.stream({ model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'hi' }] }, { ...key, provider: 'gemini' })) void event;
    };
    const error = await consume().then(() => undefined, (caught: unknown) => caught);
    expect(error).toMatchObject({ kind: 'stream_error', retryable: true });
    expect(contractErrorForProviderFailure(error as ProviderCallError)).toMatchObject({ status: 502, code: 'upstream_error' });
  });
});
