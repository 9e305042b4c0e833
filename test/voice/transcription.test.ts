import OpenAI, { toFile } from 'openai';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { usageEvents, voiceRequests } from '../../src/infra/db/schema.js';
import { silentMp3, silentWav, solidPng, startElevenLabsFake, startOpenAiFake, type ElevenLabsFake, type OpenAiCompatibleFake } from '../fakes/index.js';
import { backends, startTestServer, type TestServer } from '../helpers/test-server.js';

/** POST /v1/audio/transcriptions through the real `openai` SDK; provider choice by key availability; audio that is not audio. */
describe.each(backends())('speech to text (%s)', (backend) => {
  let server: TestServer;
  let openai: OpenAiCompatibleFake;
  let elevenlabs: ElevenLabsFake;

  beforeAll(async () => {
    openai = await startOpenAiFake({ transcript: 'Hello Anima, this is my voice message.' });
    elevenlabs = await startElevenLabsFake({ transcript: 'Scribe heard this.', validKeys: ['test-key', 'user-eleven-key'] });
    server = await startTestServer(backend, { OPENAI_API_KEY: 'test-key', OPENAI_BASE_URL: openai.url, ELEVENLABS_BASE_URL: elevenlabs.url });
  }, 180_000);
  afterAll(async () => {
    await server?.stop();
    await openai?.close();
    await elevenlabs?.close();
  });

  const client = (externalId: string) =>
    new OpenAI({ apiKey: server.internalKey, baseURL: `${server.url}/v1`, defaultHeaders: { 'x-user-id': externalId }, maxRetries: 0 });

  async function userId(externalId: string): Promise<string> {
    return (await server.container.identity.service.registerUser(externalId, undefined)).user.id;
  }

  it("the OpenAI SDK's audio.transcriptions.create works against Anima, metered in seconds", async () => {
    const transcript = await client('stt-sdk').audio.transcriptions.create({ file: await toFile(silentMp3(3000), 'note.mp3', { type: 'audio/mpeg' }), model: 'whisper-1' });
    expect(transcript.text).toBe('Hello Anima, this is my voice message.');
    const upstream = openai.lastRequest('/audio/transcriptions');
    expect(upstream?.meta).toMatchObject({ model: 'whisper-1', mimeType: 'audio/mpeg' });
    const text = await client('stt-sdk').audio.transcriptions.create({ file: await toFile(silentWav(1000, 16000), 'note.wav'), model: 'whisper-1', response_format: 'text' });
    expect(String(text).trim()).toBe('Hello Anima, this is my voice message.');
    const usage = await server.container.db.select().from(usageEvents).where(eq(usageEvents.userId, await userId('stt-sdk')));
    expect(usage.map((row) => row.service)).toEqual(['transcription', 'transcription']);
    expect(usage[0]!.seconds).toBeGreaterThanOrEqual(3);
  });

  it('a file that is not audio is a 400-class error in the OpenAI envelope, and nothing is charged', async () => {
    const before = openai.requestsTo('/audio/transcriptions').length;
    const error = await client('stt-bad')
      .audio.transcriptions.create({ file: await toFile(solidPng(8, 8), 'photo.mp3', { type: 'audio/mpeg' }), model: 'whisper-1' })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(422);
    expect((error as InstanceType<typeof OpenAI.APIError>).message).toMatch(/not audio/);
    expect(openai.requestsTo('/audio/transcriptions').length).toBe(before);
    expect(await server.container.db.select().from(usageEvents).where(eq(usageEvents.userId, await userId('stt-bad')))).toEqual([]);
  });

  it("a user's own ElevenLabs key is used when the model names Scribe; errors are logged", async () => {
    const added = await server.request('POST', '/v1/me/provider-keys', { key: server.internalKey, headers: { 'x-user-id': 'stt-scribe' }, body: { provider: 'elevenlabs', key: 'user-eleven-key' } });
    expect(added.status).toBe(201);
    const transcript = await client('stt-scribe').audio.transcriptions.create({ file: await toFile(silentMp3(1500), 'voice.mp3'), model: 'scribe_v1' });
    expect(transcript.text).toBe('Scribe heard this.');
    expect(elevenlabs.lastRequest('/v1/speech-to-text')?.headers['xi-api-key']).toBe('user-eleven-key');
    const log = await server.container.db.select().from(voiceRequests).where(eq(voiceRequests.userId, await userId('stt-scribe')));
    expect(log).toHaveLength(1);
    expect(log[0]).toMatchObject({ kind: 'transcription', provider: 'elevenlabs', status: 'success' });
    const [usage] = await server.container.db.select().from(usageEvents).where(eq(usageEvents.userId, await userId('stt-scribe')));
    expect(usage).toMatchObject({ paidBy: 'user', creditsMicro: 0 });
  });
});
