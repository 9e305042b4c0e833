import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { and, eq } from 'drizzle-orm';
import { parseBuffer } from 'music-metadata';
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { messages, usageEvents, voiceRequests } from '../../src/infra/db/schema.js';
import { silentMp3, silentWav, solidPng, startElevenLabsFake, startOpenAiFake, startOpenRouterFake, type ElevenLabsFake, type OpenAiCompatibleFake } from '../fakes/index.js';
import { backends, startTestServer, type TestServer } from '../helpers/test-server.js';

/** A loopback host for voice messages sent by URL (the test server allows private fetches). */
async function startAudioHost(): Promise<{ url: string; files: Map<string, { bytes: Buffer; contentType: string }>; hits: () => number; close: () => Promise<void> }> {
  const files = new Map<string, { bytes: Buffer; contentType: string }>();
  let hits = 0;
  const server: Server = createServer((request, response) => {
    hits += 1;
    const file = files.get(new URL(request.url ?? '/', 'http://host.invalid').pathname);
    if (!file) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { 'content-type': file.contentType, 'content-length': String(file.bytes.length) }).end(file.bytes);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, files, hits: () => hits, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

async function mp3Seconds(bytes: Buffer): Promise<number> {
  const metadata = await parseBuffer(bytes, { mimeType: 'audio/mpeg', size: bytes.length }, { duration: true });
  return metadata.format.duration ?? 0;
}

/**
 * Voice in chat: `voice: true` and `!voice` give a spoken answer (a signed audio_url of real MP3
 * from the ElevenLabs fake), `audio_url` and OpenAI `input_audio` are transcribed into the user's
 * message, speech failures keep the text answer, and who pays for speech.
 */
describe.each(backends())('voice in chat (%s)', (backend) => {
  let server: TestServer;
  let openrouter: OpenAiCompatibleFake;
  let openai: OpenAiCompatibleFake;
  let elevenlabs: ElevenLabsFake;
  let host: Awaited<ReturnType<typeof startAudioHost>>;
  const as = (externalId: string) => ({ key: server.internalKey, headers: { 'x-user-id': externalId } });

  beforeAll(async () => {
    openrouter = await startOpenRouterFake();
    openai = await startOpenAiFake({ transcript: 'What is the weather like on the moon?' });
    elevenlabs = await startElevenLabsFake({ validKeys: ['test-key', 'user-eleven-key'] });
    host = await startAudioHost();
    server = await startTestServer(backend, {
      OPENROUTER_BASE_URL: openrouter.url,
      OPENROUTER_API_KEY: 'test-key',
      OPENAI_BASE_URL: openai.url,
      OPENAI_API_KEY: 'test-key',
      ELEVENLABS_BASE_URL: elevenlabs.url,
      ELEVENLABS_API_KEY: 'test-key',
      MEMORY_FORMATION_DELAY_MS: '600000',
      AUDIO_INPUT_MAX_BYTES: '200000',
      // The plan's monthly voice seconds are enforced with the limits on; requests per minute are raised below.
      RATE_LIMITS_ENABLED: 'true',
    });
    expect((await server.request('PATCH', '/v1/admin/plans/free', { body: { requests_per_minute: 10_000 } })).status).toBe(200);
    expect((await server.request('POST', '/v1/characters', { body: { name: 'Nova', slug: 'nova', voice_id: 'rachel' } })).status).toBe(201);
    expect((await server.request('POST', '/v1/characters', { body: { name: 'Mute', slug: 'mute' } })).status).toBe(201);
  }, 180_000);
  afterAll(async () => {
    await server?.stop();
    await openrouter?.close();
    await openai?.close();
    await elevenlabs?.close();
    await host?.close();
  });
  beforeEach(() => {
    elevenlabs.faults.clear();
    openai.faults.clear();
  });

  async function userId(externalId: string): Promise<string> {
    return (await server.container.identity.service.registerUser(externalId, undefined)).user.id;
  }
  async function usageOf(externalId: string, service?: 'speech' | 'transcription' | 'chat') {
    const id = await userId(externalId);
    return server.container.db.select().from(usageEvents).where(service ? and(eq(usageEvents.userId, id), eq(usageEvents.service, service)) : eq(usageEvents.userId, id));
  }
  const chat = (externalId: string, body: Record<string, unknown>, character = 'nova') => server.request('POST', `/v1/characters/${character}/chat`, { ...as(externalId), body });

  it('voice: true answers with a signed audio_url of real MP3 from the fake, metered as chat speech', async () => {
    const answer = await chat('vc-speak', { content: 'Sing me something' , voice: true });
    expect(answer.status, answer.text).toBe(200);
    expect(answer.body.response).toBe('Echo: Sing me something');
    expect(answer.body.audio_error).toBeNull();
    expect(answer.body.audio_url).toMatch(/\/v1\/media\/[0-9a-f-]{36}\?expires=\d+&signature=/);
    expect(Date.parse(answer.body.audio_expires_at)).toBeGreaterThan(Date.now());
    // The spoken text is the answer, in the character's voice (rachel → its ElevenLabs id).
    expect(elevenlabs.lastRequest('/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM')?.body).toMatchObject({ text: 'Echo: Sing me something' });
    // No bearer token: the signed URL alone serves the bytes.
    const audio = await fetch(answer.body.audio_url);
    expect(audio.status).toBe(200);
    expect(audio.headers.get('content-type')).toBe('audio/mpeg');
    const bytes = Buffer.from(await audio.arrayBuffer());
    expect(await mp3Seconds(bytes)).toBeCloseTo(('Echo: Sing me something'.length * 60) / 1000, 0);
    expect(answer.body.audio_seconds).toBeCloseTo(('Echo: Sing me something'.length * 60) / 1000, 0);
    const [speech] = await usageOf('vc-speak', 'speech');
    expect(speech).toMatchObject({ provider: 'elevenlabs', paidBy: 'platform', characters: 'Echo: Sing me something'.length });
    expect(speech!.creditsMicro).toBeGreaterThan(0);
    const log = await server.container.db.select().from(voiceRequests).where(eq(voiceRequests.userId, await userId('vc-speak')));
    expect(log).toMatchObject([{ kind: 'speech', source: 'chat', status: 'success', voice: 'rachel' }]);
    // Without voice the answer has no audio fields at all.
    const plain = await chat('vc-speak', { content: 'And now quietly' });
    expect(plain.body.audio_url).toBeUndefined();
  }, 90_000);

  it('!voice toggles spoken answers for the conversation; voice: false overrides it once', async () => {
    const on = await chat('vc-toggle', { content: '!voice' });
    expect(on.body).toMatchObject({ command: 'voice' });
    expect(on.body.response).toMatch(/Voice replies are on/);
    const spoken = await chat('vc-toggle', { content: 'Hello there' });
    expect(spoken.body.audio_url).toMatch(/\/v1\/media\//);
    const once = await chat('vc-toggle', { content: 'Text this time', voice: false });
    expect(once.body.audio_url).toBeUndefined();
    // Another user's conversation with the same character is not affected.
    expect((await chat('vc-toggle-other', { content: 'Hi' })).body.audio_url).toBeUndefined();
    const off = await chat('vc-toggle', { content: '!VOICE' });
    expect(off.body.response).toMatch(/Voice replies are off/);
    expect((await chat('vc-toggle', { content: 'Quiet now' })).body.audio_url).toBeUndefined();
    expect(await usageOf('vc-toggle', 'speech')).toHaveLength(1);
  });

  it('streams the text, then the done event carries the audio_url', async () => {
    const response = await fetch(`${server.url}/v1/characters/nova/chat`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.internalKey}`, 'x-user-id': 'vc-stream', 'content-type': 'application/json' },
      body: JSON.stringify({ content: 'Stream and speak', stream: true, voice: true }),
    });
    const events = (await response.text()).split('\n').filter((line) => line.startsWith('data: ')).map((line) => JSON.parse(line.slice(6)) as Record<string, unknown>);
    const done = events.at(-1)!;
    expect(done.type).toBe('done');
    expect(done.response).toBe('Echo: Stream and speak');
    expect(done.audio_url).toMatch(/\/v1\/media\//);
  });

  it('a speech failure after the text answer keeps the text, reports audio_error, and charges no speech', async () => {
    elevenlabs.faults.failNext(10, 500, { route: '/v1/text-to-speech' });
    const answer = await chat('vc-broken', { content: 'Say it anyway', voice: true });
    expect(answer.status).toBe(200);
    expect(answer.body.response).toBe('Echo: Say it anyway');
    expect(answer.body.audio_url).toBeNull();
    expect(answer.body.audio_error).toMatchObject({ status: 502 });
    expect(await usageOf('vc-broken', 'speech')).toEqual([]);
    expect((await usageOf('vc-broken', 'chat')).length).toBe(1);
    // The answer is stored (not lost).
    const stored = await server.container.db.select().from(messages).where(eq(messages.content, 'Echo: Say it anyway'));
    expect(stored).toHaveLength(1);

    const mute = await chat('vc-broken', { content: 'Speak?', voice: true }, 'mute');
    expect(mute.body.response).toBe('Echo: Speak?');
    expect(mute.body.audio_error).toMatchObject({ status: 422, code: 'voice_not_configured' });
  });

  it('quota exhaustion in chat: the text answer stands, audio_error is the 429 with the seconds left', async () => {
    await server.request('PATCH', '/v1/admin/plans/free', { body: { voice_seconds_per_month: 2 } });
    try {
      const answer = await chat('vc-quota', { content: 'A fairly long question that needs a fairly long spoken answer', voice: true });
      expect(answer.status).toBe(200);
      expect(answer.body.response).toMatch(/^Echo: /);
      expect(answer.body.audio_url).toBeNull();
      expect(answer.body.audio_error).toMatchObject({ status: 429 });
      expect(answer.body.audio_error.message).toMatch(/left this month/);
      expect(await usageOf('vc-quota', 'speech')).toEqual([]);
      const log = await server.container.db.select().from(voiceRequests).where(eq(voiceRequests.userId, await userId('vc-quota')));
      expect(log.map((row) => row.status)).toEqual(['quota_exceeded']);
    } finally {
      await server.request('PATCH', '/v1/admin/plans/free', { body: { voice_seconds_per_month: 600 } });
    }
  });

  it("platform-paid speech costs credits; with the user's own ElevenLabs key nothing is charged", async () => {
    const added = await server.request('POST', '/v1/me/provider-keys', { ...as('vc-own-key'), body: { provider: 'elevenlabs', key: 'user-eleven-key' } });
    expect(added.status).toBe(201);
    const own = await chat('vc-own-key', { content: 'My key, my voice', voice: true });
    expect(own.body.audio_url).toMatch(/\/v1\/media\//);
    expect(elevenlabs.lastRequest('/v1/text-to-speech')?.headers['xi-api-key']).toBe('user-eleven-key');
    const [ownSpeech] = await usageOf('vc-own-key', 'speech');
    expect(ownSpeech).toMatchObject({ paidBy: 'user', creditsMicro: 0 });

    const platform = await chat('vc-platform', { content: 'My key, my voice', voice: true });
    expect(elevenlabs.lastRequest('/v1/text-to-speech')?.headers['xi-api-key']).toBe('test-key');
    expect(platform.body.audio_url).toMatch(/\/v1\/media\//);
    const [platformSpeech] = await usageOf('vc-platform', 'speech');
    expect(platformSpeech).toMatchObject({ paidBy: 'platform' });
    expect(platformSpeech!.creditsMicro).toBeGreaterThan(0);
  });

  it('audio_url is fetched, transcribed, and the transcript is the message, stored with a reference to the audio', async () => {
    const note = silentMp3(2500);
    host.files.set('/note.mp3', { bytes: note, contentType: 'audio/mpeg' });
    const answer = await chat('vc-hear', { audio_url: `${host.url}/note.mp3?token=secret` });
    expect(answer.status, answer.text).toBe(200);
    expect(answer.body.transcript).toBe('What is the weather like on the moon?');
    expect(answer.body.response).toBe('Echo: What is the weather like on the moon?');
    expect(openai.lastRequest('/audio/transcriptions')?.meta).toMatchObject({ mimeType: 'audio/mpeg' });
    const [stored] = await server.container.db.select().from(messages).where(and(eq(messages.speakerUserId, await userId('vc-hear')), eq(messages.role, 'user')));
    expect(stored!.content).toBe('What is the weather like on the moon?');
    const audio = stored!.metadata.audio as Record<string, unknown>;
    expect(audio).toMatchObject({ content_type: 'audio/mpeg', bytes: note.length, source_url: `${host.url}/note.mp3`, transcribed_by: { provider: 'openai' } });
    expect(audio.seconds).toBeGreaterThanOrEqual(2);
    // The voice message itself is kept in the media store under the user.
    const kept = await server.container.media.service.read(String(audio.media_id), { user: undefined, admin: true });
    expect(kept.bytes.equals(note)).toBe(true);
    const [transcription] = await usageOf('vc-hear', 'transcription');
    expect(transcription).toMatchObject({ provider: 'openai' });

    // Typed text and a voice message together: the text, then what was said.
    const both = await chat('vc-hear', { content: 'Listen:', audio_url: `${host.url}/note.mp3` });
    expect(both.body.response).toBe('Echo: Listen:\n\nWhat is the weather like on the moon?');
  });

  it('bad voice messages are clear 4xx, before anything is charged', async () => {
    host.files.set('/photo.mp3', { bytes: solidPng(8, 8), contentType: 'audio/mpeg' });
    host.files.set('/page.html', { bytes: Buffer.from('<html></html>'), contentType: 'text/html' });
    host.files.set('/big.wav', { bytes: silentWav(10_000, 16_000), contentType: 'audio/wav' });
    const before = openai.requestsTo('/audio/transcriptions').length;
    const notAudio = await chat('vc-bad', { audio_url: `${host.url}/photo.mp3` });
    expect(notAudio.status).toBe(422);
    expect(notAudio.body.detail).toMatch(/not audio/);
    const html = await chat('vc-bad', { audio_url: `${host.url}/page.html` });
    expect(html.status).toBe(422);
    const missing = await chat('vc-bad', { audio_url: `${host.url}/missing.mp3` });
    expect([422, 502]).toContain(missing.status);
    const big = await chat('vc-bad', { audio_url: `${host.url}/big.wav` });
    expect(big.status).toBe(413);
    const unknownCharacter = await chat('vc-bad', { audio_url: `${host.url}/note.mp3` }, 'nobody-here');
    expect(unknownCharacter.status).toBe(404);
    const empty = await chat('vc-bad', {});
    expect(empty.status).toBe(422);
    expect(openai.requestsTo('/audio/transcriptions').length).toBe(before);
    expect(await usageOf('vc-bad')).toEqual([]);

    // The transcription vendor fails: 502, and no chat turn or charge follows.
    openai.faults.failNext(10, 500, { route: '/audio/transcriptions' });
    const broken = await chat('vc-bad', { audio_url: `${host.url}/note.mp3` });
    expect(broken.status).toBe(502);
    expect(await usageOf('vc-bad')).toEqual([]);
  });

  it('OpenAI input_audio content parts through the real openai client are transcribed into the message', async () => {
    const client = new OpenAI({ apiKey: server.internalKey, baseURL: `${server.url}/v1`, maxRetries: 0, defaultHeaders: { 'x-user-id': 'vc-openai' } });
    const wav = silentWav(1500, 16_000);
    const completion = await client.chat.completions.create({
      model: 'character/nova',
      messages: [
        { role: 'user', content: [{ type: 'input_audio', input_audio: { data: silentWav(500, 16_000).toString('base64'), format: 'wav' } }] },
        { role: 'assistant', content: 'Earlier answer.' },
        { role: 'user', content: [{ type: 'text', text: 'Hear this.' }, { type: 'input_audio', input_audio: { data: wav.toString('base64'), format: 'wav' } }] },
      ],
    });
    expect(completion.choices[0]?.message.content).toBe('Echo: Hear this.\n\nWhat is the weather like on the moon?');
    // Only the last message's audio was transcribed.
    const upstream = openai.lastRequest('/audio/transcriptions');
    expect(upstream?.meta).toMatchObject({ mimeType: 'audio/wav' });
    expect(await usageOf('vc-openai', 'transcription')).toHaveLength(1);

    const error = await client.chat.completions
      .create({ model: 'character/nova', messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: { data: solidPng(4, 4).toString('base64'), format: 'mp3' } }] }] })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(422);
  });
});
