import { and, eq } from 'drizzle-orm';
import { parseBuffer } from 'music-metadata';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { usageEvents, voiceRequests } from '../../src/infra/db/schema.js';
import { startElevenLabsFake, startMiniMaxFake, type ElevenLabsFake, type MiniMaxFake } from '../fakes/index.js';
import { backends, startTestServer, type TestServer } from '../helpers/test-server.js';

async function mp3Seconds(bytes: Buffer): Promise<number> {
  const metadata = await parseBuffer(bytes, { mimeType: 'audio/mpeg', size: bytes.length }, { duration: true });
  return metadata.format.duration ?? 0;
}

async function raw(server: TestServer, path: string, body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${server.internalKey}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: response.status, headers: response.headers, bytes: Buffer.from(await response.arrayBuffer()) };
}

/**
 * POST /v1/tts and /v1/characters/{id}/voice against the ElevenLabs and MiniMax fakes (real MP3
 * bytes, MiniMax hex and SSE, ElevenLabs chunked streams), the voice registry, metering, bad input.
 */
describe.each(backends())('text to speech (%s)', (backend) => {
  let server: TestServer;
  let elevenlabs: ElevenLabsFake;
  let minimax: MiniMaxFake;
  const as = (externalId: string) => ({ 'x-user-id': externalId });

  beforeAll(async () => {
    elevenlabs = await startElevenLabsFake({ validKeys: ['test-key', 'user-eleven-key'] });
    minimax = await startMiniMaxFake();
    server = await startTestServer(backend, {
      ELEVENLABS_API_KEY: 'test-key',
      ELEVENLABS_BASE_URL: elevenlabs.url,
      MINIMAX_API_KEY: 'test-key',
      MINIMAX_BASE_URL: minimax.url,
      TTS_MAX_CHARACTERS: '4000',
    });
  }, 180_000);
  afterAll(async () => {
    await server?.stop();
    await elevenlabs?.close();
    await minimax?.close();
  });
  beforeEach(() => {
    elevenlabs.faults.clear();
    minimax.faults.clear();
  });

  async function userId(externalId: string): Promise<string> {
    return (await server.container.identity.service.registerUser(externalId, undefined)).user.id;
  }

  async function usageOf(externalId: string) {
    return server.container.db.select().from(usageEvents).where(eq(usageEvents.userId, await userId(externalId)));
  }

  async function logOf(externalId: string) {
    return server.container.db.select().from(voiceRequests).where(eq(voiceRequests.userId, await userId(externalId)));
  }

  it('lists the seeded registry with filters; admins add and change voices', async () => {
    const all = await server.request('GET', '/v1/voices');
    expect(all.status).toBe(200);
    const names = all.body.data.map((voice: { name: string }) => voice.name);
    expect(names).toEqual(expect.arrayContaining(['nigerian-male', 'american-male', 'british-female', 'rachel']));
    const british = await server.request('GET', '/v1/voices?provider=minimax&gender=female');
    expect(british.body.data.map((voice: { name: string }) => voice.name)).toEqual(['british-female']);
    expect(british.body.data[0].provider_voice_id).toBe('English_compelling_lady1');

    const created = await server.request('POST', '/v1/admin/voices', { body: { name: 'graceful-lady', provider: 'minimax', provider_voice_id: 'English_Graceful_Lady', language: 'en', gender: 'female' } });
    expect(created.status).toBe(201);
    expect((await server.request('POST', '/v1/admin/voices', { body: { name: 'graceful-lady', provider: 'minimax', provider_voice_id: 'x' } })).status).toBe(409);
    expect((await server.request('POST', '/v1/admin/voices', { key: server.internalKey, body: { name: 'nope', provider: 'minimax', provider_voice_id: 'x' } })).status).toBe(403);
    const patched = await server.request('PATCH', `/v1/admin/voices/${created.body.id}`, { body: { active: false } });
    expect(patched.body.active).toBe(false);
    expect((await server.request('GET', '/v1/voices?provider=minimax&gender=female')).body.data).toHaveLength(1);
    // The admin's list keeps the deactivated voice (to turn it back on); it is the admin's only.
    const registry = await server.request('GET', '/v1/admin/voices?provider=minimax&gender=female');
    expect(registry.body.data.map((voice: { name: string; active: boolean }) => [voice.name, voice.active])).toEqual([['british-female', true], ['graceful-lady', false]]);
    expect((await server.request('GET', '/v1/admin/voices', { key: server.internalKey })).status).toBe(403);
    const userKey = (await server.request('POST', '/v1/keys', { key: server.internalKey, headers: { 'x-user-id': 'voices-user' }, body: { name: 'voices', role: 'user' } })).body.key as string;
    expect((await server.request('GET', '/v1/admin/voices', { key: userKey })).status).toBe(403);
    expect((await server.request('PATCH', `/v1/admin/voices/${created.body.id}`, { body: { active: true } })).body.active).toBe(true);
    expect((await server.request('GET', '/v1/voices?provider=minimax&gender=female')).body.data).toHaveLength(2);
  });

  it('ElevenLabs, whole: real MP3 of the right length, billed characters and measured seconds recorded', async () => {
    const text = 'Hello from Anima. This is a test of the voice.';
    const answer = await raw(server, '/v1/tts', { text, voice: 'rachel' }, as('tts-eleven'));
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toBe('audio/mpeg');
    expect(await mp3Seconds(answer.bytes)).toBeCloseTo((text.length * 60) / 1000, 0);
    const call = elevenlabs.lastRequest('/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM');
    expect(call?.query.output_format).toBe('mp3_44100_128');
    expect(call?.headers['xi-api-key']).toBe('test-key');
    expect(call?.body).toMatchObject({ text, model_id: 'eleven_multilingual_v2' });
    const [usage] = await usageOf('tts-eleven');
    expect(usage).toMatchObject({ service: 'speech', provider: 'elevenlabs', characters: text.length, paidBy: 'platform' });
    expect(usage!.seconds).toBeCloseTo((text.length * 60) / 1000, 0);
    const [logged] = await logOf('tts-eleven');
    expect(logged).toMatchObject({ status: 'success', voice: 'rachel', provider: 'elevenlabs', model: 'eleven_multilingual_v2', characters: text.length, source: 'tts' });
  });

  it('ElevenLabs, streamed: chunked bytes from /stream, the same audio', async () => {
    elevenlabs.settings.streamChunkBytes = 1024;
    const text = 'Streaming speech arrives in pieces, as it is produced by the vendor.';
    const answer = await raw(server, '/v1/tts', { text, voice: 'rachel', stream: true }, as('tts-eleven-stream'));
    expect(answer.status).toBe(200);
    expect(answer.headers.get('transfer-encoding')).toBe('chunked');
    expect(elevenlabs.lastRequest()?.path).toBe('/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM/stream');
    expect(await mp3Seconds(answer.bytes)).toBeCloseTo((text.length * 60) / 1000, 0);
    const [usage] = await usageOf('tts-eleven-stream');
    expect(usage?.seconds).toBeGreaterThan(3);
  });

  it('MiniMax, whole: hex decoded to MP3, the vendor-reported length settled', async () => {
    const text = 'Good evening. The weather in London is grey again.';
    const answer = await raw(server, '/v1/tts', { text, voice: 'british-female', speed: 1.25 }, as('tts-minimax'));
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toBe('audio/mpeg');
    expect(await mp3Seconds(answer.bytes)).toBeCloseTo((text.length * 60) / 1000, 0);
    const call = minimax.lastRequest('/v1/t2a_v2');
    expect(call?.body).toMatchObject({ model: 'speech-02-hd', stream: false, voice_setting: { voice_id: 'English_compelling_lady1', speed: 1.25 } });
    const [usage] = await usageOf('tts-minimax');
    expect(usage).toMatchObject({ provider: 'minimax', characters: text.length });
    expect(usage!.seconds).toBeCloseTo((text.length * 60) / 1000, 3);
  });

  it('MiniMax, streamed: SSE hex chunks, the repeated final audio dropped', async () => {
    minimax.settings.streamEvents = 5;
    const text = 'A streamed answer from MiniMax, in several events.';
    const whole = await raw(server, '/v1/tts', { text, voice: 'british-female' }, as('tts-minimax-stream'));
    // Ask the fake to repeat the aggregate despite our opt-out: the client must still drop it.
    const answer = await raw(server, '/v1/tts', { text, voice: 'british-female', stream: true }, as('tts-minimax-stream'));
    expect(answer.status).toBe(200);
    expect(minimax.lastRequest('/v1/t2a_v2')?.body).toMatchObject({ stream: true, stream_options: { exclude_aggregated_audio: true } });
    expect(answer.bytes.length).toBe(whole.bytes.length);
    expect(await mp3Seconds(answer.bytes)).toBeCloseTo((text.length * 60) / 1000, 0);
  });

  it('WAV and JSON answers; a long text is split at sentence ends and joined', async () => {
    await server.request('PATCH', `/v1/admin/users/${await userId('tts-formats')}`, { body: { plan: 'enterprise' } });
    const wav = await raw(server, '/v1/tts', { text: 'Wave form.', voice: 'british-female', format: 'wav' }, as('tts-formats'));
    expect(wav.headers.get('content-type'), wav.bytes.toString('utf8').slice(0, 300)).toBe('audio/wav');
    expect(wav.bytes.toString('ascii', 0, 4)).toBe('RIFF');
    expect(minimax.lastRequest('/v1/t2a_v2')?.body).toMatchObject({ audio_setting: { format: 'pcm' } });

    const json = await server.request('POST', '/v1/tts', { key: server.internalKey, headers: { ...as('tts-formats'), accept: 'application/json' }, body: { text: 'In JSON please.', voice: 'adam' } });
    expect(json.status).toBe(200);
    expect(json.body).toMatchObject({ content_type: 'audio/mpeg', provider: 'elevenlabs', voice: 'adam', characters: 15 });
    expect(await mp3Seconds(Buffer.from(json.body.audio_base64, 'base64'))).toBeCloseTo(0.9, 0);

    const sentence = 'This sentence is exactly fifty characters long ok. ';
    const long = sentence.repeat(70).trim(); // 3,569 characters: over eleven_v3's 3,000
    const before = elevenlabs.requestsTo('/v1/text-to-speech/').length;
    const joined = await raw(server, '/v1/tts', { text: long, voice: 'george', model: 'eleven_v3' }, as('tts-formats'));
    expect(joined.status).toBe(200);
    const parts = elevenlabs.requestsTo('/v1/text-to-speech/').slice(before);
    expect(parts).toHaveLength(2);
    for (const part of parts) {
      const partText = (part.body as { text: string }).text;
      expect(partText.length).toBeLessThanOrEqual(3000);
      expect(partText.endsWith('ok.')).toBe(true);
    }
    expect(await mp3Seconds(joined.bytes)).toBeCloseTo((long.length * 60) / 1000, 0);
  });

  it("speaks in a character's voice and settings", async () => {
    const created = await server.request('POST', '/v1/characters', {
      body: { name: 'Narrator Nell', slug: 'narrator-nell', voice_id: 'british-female', voice_settings: { speed: 0.9, emotion: 'happy' } },
    });
    expect(created.status).toBe(201);
    expect(created.body.voice_settings).toEqual({ speed: 0.9, emotion: 'happy' });
    const answer = await raw(server, '/v1/characters/narrator-nell/voice', { text: 'Once upon a time.' }, as('tts-character'));
    expect(answer.status).toBe(200);
    expect(minimax.lastRequest('/v1/t2a_v2')?.body).toMatchObject({ voice_setting: { voice_id: 'English_compelling_lady1', speed: 0.9, emotion: 'happy' } });
    const [usage] = await usageOf('tts-character');
    expect(usage?.characterId).toBe(created.body.id);
    await server.request('POST', '/v1/characters', { body: { name: 'Silent Sam', slug: 'silent-sam' } });
    const silent = await server.request('POST', '/v1/characters/silent-sam/voice', { key: server.internalKey, headers: as('tts-character'), body: { text: 'Hi' } });
    expect(silent.status).toBe(422);
  });

  it("a user's own key pays for their speech; the platform's otherwise", async () => {
    const added = await server.request('POST', '/v1/me/provider-keys', { key: server.internalKey, headers: as('tts-byok'), body: { provider: 'elevenlabs', key: 'user-eleven-key' } });
    expect(added.status).toBe(201);
    expect((await raw(server, '/v1/tts', { text: 'My own key.', voice: 'rachel' }, as('tts-byok'))).status).toBe(200);
    expect(elevenlabs.lastRequest()?.headers['xi-api-key']).toBe('user-eleven-key');
    const [usage] = await usageOf('tts-byok');
    expect(usage?.paidBy).toBe('user');
    expect(usage?.creditsMicro).toBe(0);
    const [platform] = await usageOf('tts-eleven');
    expect(platform?.creditsMicro).toBeGreaterThan(0);
  });

  it('bad input is a clear 4xx; vendor failures a 502/429, never charged', async () => {
    await server.request('PATCH', `/v1/admin/users/${await userId('tts-bad')}`, { body: { plan: 'enterprise' } });
    const post = (body: unknown) => server.request('POST', '/v1/tts', { key: server.internalKey, headers: as('tts-bad'), body });
    const empty = await post({ text: '   ', voice: 'rachel' });
    expect(empty.status).toBe(422);
    expect(empty.body.field).toBe('text');
    const oversized = await post({ text: 'x'.repeat(4001), voice: 'rachel' });
    expect(oversized.status).toBe(413);
    const unknown = await post({ text: 'Hi', voice: 'no-such-voice' });
    expect(unknown.status).toBe(422);
    expect(unknown.body.field).toBe('voice');
    expect((await post({ text: 'Hi', voice: 'rachel', format: 'opus' })).status).toBe(422);
    expect((await post({ text: 'Hi', voice: 'rachel', provider: 'openai' })).status).toBe(422);

    minimax.failWithCode(1008);
    const broke = await post({ text: 'No balance.', voice: 'british-female' });
    expect(broke.status).toBe(502);
    expect(broke.body.detail).toMatch(/insufficient balance/);
    minimax.failWithCode(1002);
    const limited = await post({ text: 'Slow down.', voice: 'british-female' });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBeTruthy();
    minimax.failWithCode(1002);
    const limitedStream = await post({ text: 'Slow down.', voice: 'british-female', stream: true });
    expect(limitedStream.status).toBe(429);

    elevenlabs.faults.cutStream(1, { route: '/v1/text-to-speech/' });
    expect((await post({ text: 'Cut short.', voice: 'rachel' })).status).toBe(502);
    elevenlabs.faults.clear();
    elevenlabs.faults.once({ route: '/v1/text-to-speech/', status: 200, body: { detail: 'not audio at all' } });
    expect((await post({ text: 'JSON, not audio.', voice: 'rachel' })).status).toBe(502);

    expect(await usageOf('tts-bad')).toEqual([]);
    const log = await logOf('tts-bad');
    expect(log.map((row) => row.status).sort()).toEqual(['error', 'error', 'error', 'rate_limited', 'rate_limited']);
    expect(log.every((row) => row.seconds === 0)).toBe(true);
    const listed = await server.request('GET', '/v1/me/voice-requests', { key: server.internalKey, headers: as('tts-bad') });
    expect(listed.body.data).toHaveLength(5);
  });

  it('a stream the vendor breaks ends the answer abruptly and charges nothing', async () => {
    elevenlabs.settings.streamChunkBytes = 512;
    elevenlabs.faults.cutStream(2, { route: '/stream' });
    const response = await fetch(`${server.url}/v1/tts`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.internalKey}`, 'content-type': 'application/json', ...as('tts-broken-stream') },
      body: JSON.stringify({ text: 'A long streamed answer that the vendor will cut in the middle of it.', voice: 'rachel', stream: true }),
    });
    expect(response.status).toBe(200);
    await expect(response.arrayBuffer()).rejects.toThrow();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await usageOf('tts-broken-stream')).toEqual([]);
    const log = await server.container.db
      .select()
      .from(voiceRequests)
      .where(and(eq(voiceRequests.userId, await userId('tts-broken-stream')), eq(voiceRequests.status, 'error')));
    expect(log).toHaveLength(1);
  });
});
