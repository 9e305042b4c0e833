import { describe, it, expect, afterEach } from 'vitest';
import OpenAI from 'openai';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import {
  PNG_SIGNATURE,
  cosineSimilarity,
  mp3Layout,
  pngDimensions,
  startElevenLabsFake,
  startFakeServer,
  startFalFake,
  startGeminiFake,
  startJwksFake,
  startMiniMaxFake,
  startOpenAiFake,
  startOpenRouterFake,
  startStabilityFake,
  startXaiFake,
  type FakeServer,
} from './index.js';

const running: FakeServer[] = [];
async function track<T extends FakeServer>(fake: Promise<T>): Promise<T> {
  const started = await fake;
  running.push(started);
  return started;
}
afterEach(async () => {
  await Promise.all(running.splice(0).map((fake) => fake.close()));
});

const bearer = (key: string): Record<string, string> => ({ authorization: `Bearer ${key}`, 'content-type': 'application/json' });

function expectMp3(bytes: Buffer): void {
  expect(bytes.length).toBeGreaterThan(100);
  expect(bytes[0]).toBe(0xff);
  expect((bytes[1] ?? 0) & 0xe0).toBe(0xe0);
}

/** Splits an SSE body into its non-empty lines. */
const sseLines = (text: string): string[] => text.split('\n').filter((line) => line.length > 0);

describe('media helpers', () => {
  it('builds the classic 128 kbps 44.1 kHz stereo header', () => {
    const layout = mp3Layout(44100, 128, 2);
    expect(layout.header.toString('hex')).toBe('fffb9064');
    expect(layout.frameBytes).toBe(417);
  });
});

describe('OpenRouter fake', () => {
  it('rejects missing and wrong keys with OpenRouter bodies', async () => {
    const fake = await track(startOpenRouterFake());
    const missing = await fetch(`${fake.url}/chat/completions`, { method: 'POST', body: '{}' });
    expect(missing.status).toBe(401);
    expect(await missing.json()).toEqual({ error: { code: 401, message: 'Missing Authentication header' } });
    const wrong = await fetch(`${fake.url}/key`, { headers: bearer('nope') });
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as { error: { code: number } }).error.code).toBe(401);
  });

  it('answers non-stream completions with usage and cost', async () => {
    const fake = await track(startOpenRouterFake({ promptPrice: 0.001, completionPrice: 0.002 }));
    const response = await fetch(`${fake.url}/chat/completions`, {
      method: 'POST',
      headers: bearer('test-key'),
      body: JSON.stringify({ model: 'openai/gpt-4o', messages: [{ role: 'system', content: 'Be terse.' }, { role: 'user', content: 'hello there' }] }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('x-generation-id')).toMatch(/^gen-/);
    const body = (await response.json());
    expect(body.choices[0].message.content).toBe('Echo: hello there');
    expect(body.provider).toBe('OpenAI');
    expect(body.usage.prompt_tokens).toBe(Math.ceil('Be terse.hello there'.length / 4));
    expect(body.usage.completion_tokens).toBe(Math.ceil('Echo: hello there'.length / 4));
    expect(body.usage.cost).toBeCloseTo(body.usage.prompt_tokens * 0.001 + body.usage.completion_tokens * 0.002);
  });

  it('streams SSE: keep-alive comment, word deltas, finish chunk, usage chunk, [DONE]', async () => {
    const fake = await track(startOpenRouterFake({ reply: 'one two three four' }));
    const response = await fetch(`${fake.url}/chat/completions`, {
      method: 'POST',
      headers: bearer('test-key'),
      body: JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    const lines = sseLines(await response.text());
    expect(lines[0]).toBe(': OPENROUTER PROCESSING');
    expect(lines.at(-1)).toBe('data: [DONE]');
    const events = lines.slice(1, -1).map((line) => {
      expect(line.startsWith('data: ')).toBe(true);
      return JSON.parse(line.slice(6));
    });
    const text = events.map((event) => event.choices[0]?.delta?.content ?? '').join('');
    expect(text).toBe('one two three four');
    expect(events.filter((event) => event.choices[0]?.delta?.content !== undefined).length).toBe(4);
    expect(events[0].choices[0].delta.role).toBe('assistant');
    const usageEvent = events.at(-1);
    expect(usageEvent.choices).toEqual([]);
    expect(usageEvent.usage.cost).toBeGreaterThan(0);
    expect(events.at(-2).choices[0].finish_reason).toBe('stop');
  });

  it('works with the openai SDK, stream and non-stream, and sees the prompt', async () => {
    const fake = await track(startOpenRouterFake({ reply: (body) => `You said ${body.messages?.length} messages` }));
    const client = new OpenAI({ apiKey: 'test-key', baseURL: fake.url, maxRetries: 0 });
    const completion = await client.chat.completions.create({ model: 'openai/gpt-4o', messages: [{ role: 'user', content: 'x' }] });
    expect(completion.choices[0]?.message.content).toBe('You said 1 messages');
    const stream = await client.chat.completions.create({ model: 'openai/gpt-4o', stream: true, messages: [{ role: 'user', content: 'x' }] });
    let text = '';
    let usage: unknown;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      usage ??= chunk.usage ?? undefined;
    }
    expect(text).toBe('You said 1 messages');
    expect(usage).toMatchObject({ completion_tokens: 5 });
    expect(fake.requests.at(-1)?.body).toMatchObject({ stream: true, model: 'openai/gpt-4o' });
  });

  it('sends a mid-stream error event that the SDK throws on', async () => {
    const fake = await track(startOpenRouterFake({ reply: 'a b c d', streamError: { afterDeltas: 2 } }));
    const client = new OpenAI({ apiKey: 'test-key', baseURL: fake.url, maxRetries: 0 });
    const stream = await client.chat.completions.create({ model: 'm', stream: true, messages: [{ role: 'user', content: 'x' }] });
    const seen: string[] = [];
    await expect(
      (async () => {
        for await (const chunk of stream) seen.push(chunk.choices[0]?.delta.content ?? '');
      })(),
    ).rejects.toThrow(/Provider disconnected/);
    expect(seen.join('')).toBe('a b ');
  });

  it('can answer 200 with an error body and no choices', async () => {
    const fake = await track(startOpenRouterFake({ errorWith200: { code: 502, message: 'upstream died' } }));
    const response = await fetch(`${fake.url}/chat/completions`, { method: 'POST', headers: bearer('test-key'), body: JSON.stringify({ messages: [{ role: 'user', content: 'x' }] }) });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ error: { code: 502, message: 'upstream died' } });
  });

  it('serves /key, public /models and deterministic embeddings', async () => {
    const fake = await track(startOpenRouterFake());
    const key = (await (await fetch(`${fake.url}/key`, { headers: bearer('test-key') })).json());
    expect(key.data.is_free_tier).toBe(false);
    const models = (await (await fetch(`${fake.url}/models`)).json());
    expect(models.data[0].pricing.prompt).toBe('0.000001');

    const embed = async (input: unknown, extra: object = {}) =>
      (await fetch(`${fake.url}/embeddings`, { method: 'POST', headers: bearer('test-key'), body: JSON.stringify({ model: 'e', input, ...extra }) })).json();
    const single = await embed('the cat sat');
    expect(single.data[0].embedding).toHaveLength(1536);
    const batch = await embed(['the cat sat', 'the cat ran', 'quantum finance'], { dimensions: 64 });
    const [a, b, c] = batch.data.map((item: { embedding: number[] }) => item.embedding);
    expect(a).toHaveLength(64);
    expect(cosineSimilarity(a, b)).toBeGreaterThan(cosineSimilarity(a, c));
    const encoded = await embed('the cat sat', { dimensions: 64, encoding_format: 'base64' });
    const floats = new Float32Array(Uint8Array.from(Buffer.from(encoded.data[0].embedding, 'base64')).buffer);
    expect(floats.length).toBe(64);
    expect(floats[0]).toBeCloseTo(a?.[0] ?? NaN, 5);
  });
});

describe('OpenAI and xAI flavours', () => {
  it('uses the OpenAI error shape and streams usage only on request', async () => {
    const fake = await track(startOpenAiFake());
    const wrong = await fetch(`${fake.url}/models`, { headers: bearer('bad-key-123456789') });
    expect(wrong.status).toBe(401);
    const body = (await wrong.json());
    expect(body.error).toMatchObject({ type: 'invalid_request_error', param: null, code: 'invalid_api_key' });
    const models = (await (await fetch(`${fake.url}/models`, { headers: bearer('test-key') })).json());
    expect(models.object).toBe('list');

    const client = new OpenAI({ apiKey: 'test-key', baseURL: fake.url, maxRetries: 0 });
    const chunks = [];
    for await (const chunk of await client.chat.completions.create({ model: 'gpt-4o-mini', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'x' }] })) {
      chunks.push(chunk);
    }
    expect(chunks.at(-1)?.usage?.total_tokens).toBeGreaterThan(0);
    expect(chunks.at(-1)?.usage).not.toHaveProperty('cost');
  });

  it('generates images: dall-e-3 URLs with real PNGs, gpt-image-1 base64, validation errors', async () => {
    const fake = await track(startOpenAiFake());
    const client = new OpenAI({ apiKey: 'test-key', baseURL: fake.url, maxRetries: 0 });
    const dalle = await client.images.generate({ model: 'dall-e-3', prompt: 'a lighthouse', size: '1792x1024' });
    const url = dalle.data?.[0]?.url ?? '';
    expect(dalle.data?.[0]?.revised_prompt).toContain('lighthouse');
    const png = Buffer.from(await (await fetch(url)).arrayBuffer());
    expect(png.subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);
    expect(pngDimensions(png)).toEqual({ width: 64, height: 37 });

    const gpt = await client.images.generate({ model: 'gpt-image-1', prompt: 'a fox', quality: 'low' });
    expect(Buffer.from(gpt.data?.[0]?.b64_json ?? '', 'base64').subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);
    expect(gpt.usage?.output_tokens).toBe(272);

    await expect(client.images.generate({ model: 'dall-e-3', prompt: 'x', n: 2 })).rejects.toMatchObject({ status: 400, param: 'n' });
  });

  it('xAI serves /api-key and rejects bad keys there with 400', async () => {
    const fake = await track(startXaiFake());
    const ok = (await (await fetch(`${fake.url}/api-key`, { headers: bearer('test-key') })).json());
    expect(ok.api_key_blocked).toBe(false);
    const bad = await fetch(`${fake.url}/api-key`, { headers: bearer('x') });
    expect(bad.status).toBe(400);
  });
});

describe('fault injection', () => {
  it('fails the next N requests with the vendor body, then succeeds', async () => {
    const fake = await track(startOpenRouterFake());
    fake.faults.failNext(2, 503, { route: '/chat/completions', headers: { 'retry-after': '1' } });
    const call = () => fetch(`${fake.url}/chat/completions`, { method: 'POST', headers: bearer('test-key'), body: JSON.stringify({ messages: [{ role: 'user', content: 'x' }] }) });
    const first = await call();
    expect(first.status).toBe(503);
    expect(first.headers.get('retry-after')).toBe('1');
    expect((await first.json()).error.code).toBe(503);
    expect((await call()).status).toBe(503);
    expect((await call()).status).toBe(200);
  });

  it('delays the first byte', async () => {
    const fake = await track(startFakeServer(async (context) => context.json(200, { ok: true })));
    fake.faults.delay(150);
    const started = Date.now();
    await (await fetch(fake.url)).json();
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
  });

  it('cuts a stream after N chunks', async () => {
    const fake = await track(startOpenRouterFake({ reply: 'a b c d e f' }));
    fake.faults.cutStream(3);
    const response = await fetch(`${fake.url}/chat/completions`, { method: 'POST', headers: bearer('test-key'), body: JSON.stringify({ stream: true, messages: [{ role: 'user', content: 'x' }] }) });
    expect(response.status).toBe(200);
    await expect(response.text()).rejects.toThrow();
  });

  it('hangs until close() destroys the socket', async () => {
    const fake = await startFakeServer(async (context) => context.json(200, {}), { errorBody: () => ({}) });
    fake.faults.hang();
    const pending = fetch(fake.url).then(
      () => 'answered',
      () => 'failed',
    );
    // Wait for the request to arrive (a fixed 50 ms was too short on a loaded machine), then hold it.
    const deadline = Date.now() + 10_000;
    while (fake.requests.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(fake.requests).toHaveLength(1);
    const started = Date.now();
    await fake.close();
    expect(await pending).toBe('failed');
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('applies a fault once to one route only', async () => {
    const fake = await track(startGeminiFake());
    fake.faults.once({ route: ':generateContent', status: 429 });
    const models = await fetch(`${fake.url}/v1beta/models?key=test-key`);
    expect(models.status).toBe(200);
    const limited = await fetch(`${fake.url}/v1beta/models/gemini-2.5-flash:generateContent?key=test-key`, { method: 'POST', body: '{}' });
    expect(limited.status).toBe(429);
    expect((await limited.json()).error.status).toBe('RESOURCE_EXHAUSTED');
  });
});

describe('Gemini fake', () => {
  const url = (fake: FakeServer, action: string, query = ''): string => `${fake.url}/v1beta/models/gemini-2.5-flash:${action}${query}`;

  it('rejects a bad key with 400 API_KEY_INVALID', async () => {
    const fake = await track(startGeminiFake());
    const response = await fetch(url(fake, 'generateContent'), { method: 'POST', headers: { 'x-goog-api-key': 'bad' }, body: '{}' });
    expect(response.status).toBe(400);
    const body = (await response.json());
    expect(body.error.status).toBe('INVALID_ARGUMENT');
    expect(body.error.details[0].reason).toBe('API_KEY_INVALID');
  });

  it('accepts snake_case with an inline image and records it', async () => {
    const fake = await track(startGeminiFake());
    const response = await fetch(url(fake, 'generateContent', '?key=test-key'), {
      method: 'POST',
      body: JSON.stringify({
        system_instruction: { parts: [{ text: 'Be brief.' }] },
        contents: [{ role: 'user', parts: [{ text: 'Describe this' }, { inline_data: { mime_type: 'image/jpeg', data: Buffer.from('jpeg!').toString('base64') } }] }],
      }),
    });
    const body = (await response.json());
    expect(body.candidates[0].content.parts[0].text).toBe('I see an image (image/jpeg). Echo: Describe this');
    expect(body.candidates[0].finishReason).toBe('STOP');
    expect(fake.lastRequest()?.meta).toMatchObject({ hasImage: true, imageMimeType: 'image/jpeg', snakeCase: true, systemText: 'Be brief.' });
  });

  it('streams SSE without [DONE] and embeds', async () => {
    const fake = await track(startGeminiFake({ reply: 'red blue green' }));
    const response = await fetch(url(fake, 'streamGenerateContent', '?alt=sse'), {
      method: 'POST',
      headers: { 'x-goog-api-key': 'test-key' },
      body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'colours' }] }] }),
    });
    const lines = sseLines(await response.text());
    expect(lines.every((line) => line.startsWith('data: {'))).toBe(true);
    const chunks = lines.map((line) => JSON.parse(line.slice(6)));
    expect(chunks.map((chunk) => chunk.candidates[0].content.parts[0].text).join('')).toBe('red blue green');
    expect(chunks.at(-1).candidates[0].finishReason).toBe('STOP');

    const embedUrl = `${fake.url}/v1beta/models/gemini-embedding-001`;
    const single = (await (await fetch(`${embedUrl}:embedContent?key=test-key`, { method: 'POST', body: JSON.stringify({ content: { parts: [{ text: 'hi' }] }, outputDimensionality: 8 }) })).json());
    expect(single.embedding.values).toHaveLength(8);
    const batch = (await (
      await fetch(`${embedUrl}:batchEmbedContents?key=test-key`, {
        method: 'POST',
        body: JSON.stringify({ requests: [{ model: 'models/gemini-embedding-001', content: { parts: [{ text: 'hi' }] }, outputDimensionality: 8 }, { model: 'models/gemini-embedding-001', content: { parts: [{ text: 'yo' }] } }] }),
      })
    ).json());
    expect(batch.embeddings[0].values).toEqual(single.embedding.values);
    expect(batch.embeddings[1].values).toHaveLength(3072);
  });
});

describe('ElevenLabs fake', () => {
  it('checks xi-api-key with the vendor body', async () => {
    const fake = await track(startElevenLabsFake());
    const response = await fetch(`${fake.url}/v1/user`, { headers: { 'xi-api-key': 'bad' } });
    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({ detail: { status: 'invalid_api_key', message: 'Invalid API key' } });
    const user = (await (await fetch(`${fake.url}/v1/user`, { headers: { 'xi-api-key': 'test-key' } })).json());
    expect(user.subscription.character_limit).toBe(10000);
    const voices = (await (await fetch(`${fake.url}/v1/voices`, { headers: { 'xi-api-key': 'test-key' } })).json());
    expect(voices.voices[0]).toMatchObject({ voice_id: '21m00Tcm4TlvDq8ikWAM', category: 'premade' });
  });

  it('returns real MP3 frames proportional to the text, and WAV/PCM on request', async () => {
    const fake = await track(startElevenLabsFake());
    const speak = async (text: string, query = '', stream = false): Promise<Response> =>
      fetch(`${fake.url}/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM${stream ? '/stream' : ''}${query}`, {
        method: 'POST',
        headers: { 'xi-api-key': 'test-key', 'content-type': 'application/json' },
        body: JSON.stringify({ text, model_id: 'eleven_multilingual_v2' }),
      });
    const short = await speak('Hello');
    expect(short.headers.get('content-type')).toBe('audio/mpeg');
    const shortBytes = Buffer.from(await short.arrayBuffer());
    expectMp3(shortBytes);
    const longBytes = Buffer.from(await (await speak('Hello '.repeat(20))).arrayBuffer());
    expect(longBytes.length).toBeGreaterThan(shortBytes.length * 10);
    const frame = mp3Layout(44100, 128).frameBytes;
    expect(longBytes.length % frame).toBe(0);
    expect(longBytes[frame]).toBe(0xff); // the next frame starts right after

    const streamed = await speak('Hello '.repeat(20), '', true);
    expect(Buffer.from(await streamed.arrayBuffer()).equals(longBytes)).toBe(true);

    const wav = Buffer.from(await (await speak('Hello', '?output_format=wav_16000')).arrayBuffer());
    expect(wav.toString('ascii', 0, 4)).toBe('RIFF');
    expect(wav.toString('ascii', 8, 12)).toBe('WAVE');
    expect(wav.readUInt32LE(24)).toBe(16000);
    const pcm = Buffer.from(await (await speak('Hello', '?output_format=pcm_16000')).arrayBuffer());
    expect(pcm.length).toBe(16000 * 0.3 * 2);
  });

  it('answers 422 with an array detail and 401 quota_exceeded', async () => {
    const fake = await track(startElevenLabsFake({ remainingCharacters: 3 }));
    const post = (body: object) =>
      fetch(`${fake.url}/v1/text-to-speech/x`, { method: 'POST', headers: { 'xi-api-key': 'test-key', 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const invalid = await post({});
    expect(invalid.status).toBe(422);
    expect((await invalid.json()).detail[0].loc).toEqual(['body', 'text']);
    const quota = await post({ text: 'too long' });
    expect(quota.status).toBe(401);
    expect((await quota.json()).detail.status).toBe('quota_exceeded');
  });
});

describe('MiniMax fake', () => {
  const post = (fake: FakeServer, body: object, key = 'test-key') =>
    fetch(`${fake.url}/v1/t2a_v2?GroupId=123`, { method: 'POST', headers: bearer(key), body: JSON.stringify(body) });

  it('returns hex MP3 with extra_info and a Trace-Id; bad keys get 200 + 1004', async () => {
    const fake = await track(startMiniMaxFake());
    const response = await post(fake, { model: 'speech-02-hd', text: 'Hello world', voice_setting: { voice_id: 'male-qn-qingse' } });
    expect(response.status).toBe(200);
    expect(response.headers.get('trace-id')).toBeTruthy();
    const body = (await response.json());
    expect(body.base_resp).toEqual({ status_code: 0, status_msg: 'success' });
    const audio = Buffer.from(body.data.audio, 'hex');
    expectMp3(audio);
    expect(body.extra_info).toMatchObject({ audio_size: audio.length, usage_characters: 11, audio_sample_rate: 32000, audio_format: 'mp3' });

    const bad = await post(fake, { model: 'speech-02-hd', text: 'x' }, 'wrong');
    expect(bad.status).toBe(200);
    expect((await bad.json()).base_resp.status_code).toBe(1004);

    fake.failWithCode(1002);
    expect((await (await post(fake, { model: 'speech-02-hd', text: 'x' })).json()).base_resp.status_code).toBe(1002);
    const voices = (await (await fetch(`${fake.url}/v1/get_voice`, { method: 'POST', headers: bearer('test-key'), body: '{"voice_type":"system"}' })).json());
    expect(voices.base_resp.status_code).toBe(0);
  });

  it('streams SSE whose final status-2 event repeats the audio unless excluded', async () => {
    const fake = await track(startMiniMaxFake());
    const events = async (extra: object) => {
      const text = await (await post(fake, { model: 'speech-02-turbo', text: 'Hello there friend', stream: true, ...extra })).text();
      return sseLines(text).map((line) => JSON.parse(line.slice(6)));
    };
    const full = await events({});
    const last = full.at(-1);
    expect(last.data.status).toBe(2);
    const joined = full.slice(0, -1).map((event) => event.data.audio as string).join('');
    expect(last.data.audio).toBe(joined);
    expectMp3(Buffer.from(joined, 'hex'));
    const excluded = await events({ stream_options: { exclude_aggregated_audio: true } });
    expect(excluded.at(-1).data.audio).toBe('');
  });
});

describe('fal fake', () => {
  it('checks Key auth: missing format and unknown key', async () => {
    const fake = await track(startFalFake());
    const malformed = await fetch(`${fake.url}/fal-ai/flux/dev`, { method: 'POST', headers: { authorization: 'Key nocolon' }, body: '{}' });
    expect(malformed.status).toBe(401);
    expect((await malformed.json()).detail).toContain("Expected '<key_id>:<key_secret>'");
    const unknown = await fetch(`${fake.url}/v1/models?limit=1`, { headers: { authorization: 'Key a:b' } });
    expect(await unknown.json()).toEqual({ detail: 'No user found for Key ID and Secret' });
  });

  it('runs synchronously, validates, and runs the queue end to end', async () => {
    const fake = await track(startFalFake({ queuePolls: 2, progressPolls: 1 }));
    const headers = { authorization: 'Key test-key-id:test-key-secret', 'content-type': 'application/json' };
    const invalid = await fetch(`${fake.url}/fal-ai/flux/dev`, { method: 'POST', headers, body: '{}' });
    expect(invalid.status).toBe(422);
    expect((await invalid.json()).detail[0].loc).toEqual(['body', 'prompt']);

    const sync = (await (await fetch(`${fake.url}/fal-ai/flux/dev`, { method: 'POST', headers, body: JSON.stringify({ prompt: 'fox', image_size: 'portrait_16_9' }) })).json());
    expect(sync.images[0]).toMatchObject({ width: 576, height: 1024 });

    const submitted = (await (await fetch(`${fake.queueUrl}/fal-ai/flux/dev`, { method: 'POST', headers, body: JSON.stringify({ prompt: 'a watercolor fox', num_images: 2 }) })).json());
    expect(submitted.status).toBe('IN_QUEUE');
    expect(submitted.status_url).toBe(`${fake.queueUrl}/fal-ai/flux/requests/${submitted.request_id}/status`);
    const statuses: Array<[number, string]> = [];
    for (;;) {
      const poll = await fetch(submitted.status_url, { headers });
      const body = (await poll.json());
      statuses.push([poll.status, body.status]);
      if (poll.status === 200) break;
    }
    expect(statuses).toEqual([
      [202, 'IN_QUEUE'],
      [202, 'IN_QUEUE'],
      [202, 'IN_PROGRESS'],
      [200, 'COMPLETED'],
    ]);
    const result = (await (await fetch(submitted.response_url, { headers })).json());
    expect(result.images).toHaveLength(2);
    expect(result.images[0]).toMatchObject({ width: 1024, height: 768, content_type: 'image/png' });
    const png = Buffer.from(await (await fetch(result.images[0].url)).arrayBuffer());
    expect(png.subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);
    expect(pngDimensions(png)).toEqual({ width: 64, height: 48 });
  });
});

describe('Stability fake', () => {
  const form = (fields: Record<string, string>): FormData => {
    const data = new FormData();
    for (const [name, value] of Object.entries(fields)) data.append(name, value);
    return data;
  };
  const generate = (fake: FakeServer, fields: Record<string, string>, accept: string) =>
    fetch(`${fake.url}/v2beta/stable-image/generate/core`, { method: 'POST', headers: { authorization: 'Bearer test-key', accept }, body: form(fields) });

  it('parses multipart and answers raw bytes or JSON', async () => {
    const fake = await track(startStabilityFake());
    const image = await generate(fake, { prompt: 'a lighthouse', aspect_ratio: '16:9', seed: '42' }, 'image/*');
    expect(image.headers.get('content-type')).toBe('image/png');
    expect(image.headers.get('finish-reason')).toBe('SUCCESS');
    expect(image.headers.get('seed')).toBe('42');
    const bytes = Buffer.from(await image.arrayBuffer());
    expect(pngDimensions(bytes)).toEqual({ width: 64, height: 37 });
    expect(fake.lastRequest()?.meta.form).toEqual({ prompt: 'a lighthouse', aspect_ratio: '16:9', seed: '42' });

    const json = (await (await generate(fake, { prompt: 'a lighthouse' }, 'application/json')).json());
    expect(json.finish_reason).toBe('SUCCESS');
    expect(Buffer.from(json.image, 'base64').subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);
    const balance = (await (await fetch(`${fake.url}/v1/user/balance`, { headers: { authorization: 'Bearer test-key' } })).json());
    expect(balance.credits).toBe(94);
  });

  it('answers errors in its own shape, with 403 content_moderation', async () => {
    const fake = await track(startStabilityFake({ blockedWords: ['forbidden'] }));
    const empty = await generate(fake, { prompt: '' }, 'image/*');
    expect(empty.status).toBe(400);
    expect((await empty.json()).errors).toEqual(['prompt: cannot be empty']);
    const blocked = await generate(fake, { prompt: 'something forbidden' }, 'image/*');
    expect(blocked.status).toBe(403);
    expect((await blocked.json()).name).toBe('content_moderation');
    const unauthorized = await fetch(`${fake.url}/v1/user/balance`);
    expect(unauthorized.status).toBe(401);
  });
});

describe('JWKS fake', () => {
  it('signs tokens that verify against its JWKS, and rotates keys', async () => {
    const fake = await track(startJwksFake({ audience: 'anima' }));
    const discovery = (await (await fetch(fake.discoveryUrl)).json());
    expect(discovery.jwks_uri).toBe(fake.jwksUrl);
    const jwks = createRemoteJWKSet(new URL(fake.jwksUrl));
    const token = await fake.signToken({ sub: 'alice' });
    const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer: fake.issuer, audience: 'anima' });
    expect(payload.sub).toBe('alice');
    expect(protectedHeader.kid).toBe(fake.currentKid);

    const oldKid = fake.currentKid;
    const newKid = await fake.rotateKeys();
    expect(newKid).not.toBe(oldKid);
    const rotated = await fake.signToken({ sub: 'bob' });
    const fresh = createRemoteJWKSet(new URL(fake.jwksUrl));
    expect((await jwtVerify(rotated, fresh, { issuer: fake.issuer })).protectedHeader.kid).toBe(newKid);

    await expect(jwtVerify(await fake.signToken({}, { expiresIn: -60 }), fresh)).rejects.toThrow(/exp/);
    await expect(jwtVerify(await fake.signToken({}, { untrusted: true }), fresh)).rejects.toThrow();
  });
});
