import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ResolvedProviderKey } from '../../src/modules/identity/key-resolution.js';
import type { ChatStreamEvent } from '../../src/providers/chat/chat-model.js';
import { GeminiChatProvider } from '../../src/providers/chat/gemini.js';
import { OpenAiCompatibleChatProvider } from '../../src/providers/chat/openai-compatible.js';
import { contractErrorForProviderFailure } from '../../src/infra/http/provider-failure.js';
import { ProviderCallError } from '../../src/providers/chat/provider-error.js';
import { startGeminiFake, startOpenRouterFake, type GeminiFake, type OpenAiCompatibleFake } from '../fakes/index.js';

const key = (apiKey: string, provider: ResolvedProviderKey['provider'] = 'openrouter'): ResolvedProviderKey => ({
  provider,
  apiKey,
  source: 'platform',
  providerKeyId: null,
  masked: `${apiKey.slice(0, 3)}…`,
});

async function collect(events: AsyncIterable<ChatStreamEvent>): Promise<ChatStreamEvent[]> {
  const all: ChatStreamEvent[] = [];
  for await (const event of events) all.push(event);
  return all;
}

async function failure(promise: Promise<unknown>): Promise<ProviderCallError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(ProviderCallError);
    return error as ProviderCallError;
  }
  throw new Error('expected the call to fail');
}

describe('OpenAI-compatible chat adapter against the OpenRouter fake', () => {
  let fake: OpenAiCompatibleFake;
  let adapter: OpenAiCompatibleChatProvider;
  const request = { model: 'openai/gpt-4o-mini', messages: [{ role: 'user' as const, content: 'hello there' }] };

  beforeAll(async () => {
    fake = await startOpenRouterFake();
    adapter = new OpenAiCompatibleChatProvider({ provider: 'openrouter', baseUrl: fake.url, timeoutMs: 500 });
  });
  afterAll(async () => fake.close());
  beforeEach(() => {
    fake.faults.clear();
    fake.settings.streamError = null;
    fake.settings.errorWith200 = null;
  });

  it('completes with text, usage and the provider cost, sending Bearer auth and attribution headers', async () => {
    const result = await adapter.complete({ ...request, temperature: 0.3, maxTokens: 50 }, key('test-key'));
    expect(result.text).toBe('Echo: hello there');
    expect(result.usage.completionTokens).toBeGreaterThan(0);
    expect(result.usage.costUsd).toBeGreaterThan(0);
    const recorded = fake.lastRequest('/chat/completions')!;
    expect(recorded.headers.authorization).toBe('Bearer test-key');
    expect(recorded.headers['x-openrouter-title']).toBe('Anima');
    expect(recorded.body).toMatchObject({ temperature: 0.3, max_tokens: 50, stream: false });
  });

  it('streams deltas past the keep-alive comment and reads usage from the final chunk', async () => {
    const events = await collect(adapter.stream(request, key('test-key')));
    const text = events.flatMap((event) => (event.type === 'delta' ? [event.text] : [])).join('');
    expect(text).toBe('Echo: hello there');
    const finish = events.at(-1);
    expect(finish).toMatchObject({ type: 'finish', finishReason: 'stop' });
    expect(finish?.type === 'finish' && finish.usage?.costUsd).toBeGreaterThan(0);
  });

  it('turns a mid-stream error event into a retryable stream_error after the deltas before it', async () => {
    fake.settings.streamError = { afterDeltas: 1 };
    const seen: string[] = [];
    const error = await failure(
      (async () => {
        for await (const event of adapter.stream(request, key('test-key'))) if (event.type === 'delta') seen.push(event.text);
      })(),
    );
    expect(error.kind).toBe('stream_error');
    expect(error.retryable).toBe(true);
    expect(seen.length).toBe(1);
  });

  it("turns OpenRouter's 200-with-an-error-body into a typed error", async () => {
    fake.settings.errorWith200 = { code: 502, message: 'Provider returned error' };
    const error = await failure(adapter.complete(request, key('test-key')));
    expect(error.kind).toBe('unavailable');
    expect(contractErrorForProviderFailure(error).status).toBe(502);
  });

  it('maps statuses: 401 rejected key (not retryable), 429 rate limited with Retry-After, 500 retryable', async () => {
    const rejected = await failure(adapter.complete(request, key('wrong-key')));
    expect(rejected.kind).toBe('rejected_key');
    expect(rejected.retryable).toBe(false);

    fake.faults.failNext(1, 429, { headers: { 'retry-after': '7' } });
    const limited = await failure(adapter.complete(request, key('test-key')));
    expect(limited.kind).toBe('rate_limited');
    expect(limited.retryAfterSeconds).toBe(7);
    // The HTTP layer, not the adapter, says what the client sees.
    expect(contractErrorForProviderFailure(limited).status).toBe(429);
    expect(contractErrorForProviderFailure(limited).headers['retry-after']).toBe('7');
    expect(limited.retryable).toBe(true);

    fake.faults.failNext(1, 500);
    const broken = await failure(adapter.complete(request, key('test-key')));
    expect(contractErrorForProviderFailure(broken).status).toBe(502);
    expect(broken.retryable).toBe(true);
  });

  it('times out a hanging upstream with a 504, and a cut stream is a retryable network error', async () => {
    fake.faults.hang({ times: 1 });
    const timedOut = await failure(adapter.complete(request, key('test-key')));
    expect(contractErrorForProviderFailure(timedOut).status).toBe(504);
    expect(timedOut.kind).toBe('timeout');

    fake.faults.cutStream(2, { times: 1 });
    const cut = await failure(collect(adapter.stream(request, key('test-key'))));
    expect(cut.kind).toBe('network');
  });

  it('aborts the upstream call when the caller signal fires', async () => {
    fake.faults.hang({ times: 1 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const error = await failure(adapter.complete({ ...request, signal: controller.signal }, key('test-key')));
    expect(error.kind).toBe('aborted');
  });
});

describe('Gemini chat adapter against the Gemini fake', () => {
  let fake: GeminiFake;
  let adapter: GeminiChatProvider;
  beforeAll(async () => {
    fake = await startGeminiFake({ reply: (_body, info) => `Saw: ${info.userText}` });
    adapter = new GeminiChatProvider({ baseUrl: fake.url, timeoutMs: 1000 });
  });
  afterAll(async () => fake.close());

  it('completes and streams with a system instruction, and maps a bad key to rejected_key', async () => {
    const request = {
      model: 'gemini-2.5-flash',
      messages: [
        { role: 'system' as const, content: 'Be brief.' },
        { role: 'user' as const, content: 'a red bicycle' },
      ],
    };
    const result = await adapter.complete(request, key('test-key', 'gemini'));
    expect(result.text).toContain('a red bicycle');
    expect(result.usage.promptTokens).toBeGreaterThan(0);
    const events = await collect(adapter.stream(request, key('test-key', 'gemini')));
    expect(events.flatMap((event) => (event.type === 'delta' ? [event.text] : [])).join('')).toContain('a red bicycle');
    const rejected = await failure(adapter.complete(request, key('bad', 'gemini')));
    expect(rejected.kind).toBe('rejected_key');
  });
});

describe.each(['openai', 'xai'] as const)('OpenAI-compatible chat adapter against the %s flavour', (flavor) => {
  let fake: OpenAiCompatibleFake;
  let adapter: OpenAiCompatibleChatProvider;
  beforeAll(async () => {
    fake = await startOpenRouterFake({ flavor });
    adapter = new OpenAiCompatibleChatProvider({ provider: flavor, baseUrl: fake.url, timeoutMs: 1000 });
  });
  afterAll(async () => fake.close());

  it('asks for streamed usage (these vendors send it only when asked) and maps their bad-key error', async () => {
    const request = { model: flavor === 'openai' ? 'gpt-4o-mini' : 'grok-3-mini', messages: [{ role: 'user' as const, content: 'usage please' }] };
    const events = await collect(adapter.stream(request, key('test-key', flavor)));
    const finish = events.at(-1);
    expect(finish?.type === 'finish' && finish.usage?.completionTokens).toBeGreaterThan(0);
    expect(fake.lastRequest('/chat/completions')?.body).toMatchObject({ stream_options: { include_usage: true } });
    expect(fake.lastRequest('/chat/completions')?.headers['x-openrouter-title']).toBeUndefined();
    const rejected = await failure(adapter.complete(request, key('sk-wrong-key-123456789', flavor)));
    expect(rejected.kind).toBe('rejected_key');
    expect(rejected.message).not.toContain('sk-wrong-key-123456789');
  });
});
