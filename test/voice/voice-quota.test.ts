import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { usageEvents, voiceRequests } from '../../src/infra/db/schema.js';
import { startElevenLabsFake, type ElevenLabsFake } from '../fakes/index.js';
import { backends, startTestServer, type TestServer } from '../helpers/test-server.js';

/** The plan's monthly voice seconds and concurrent streams, enforced through the gateway's billing. */
describe.each(backends())('voice quotas (%s)', (backend) => {
  let server: TestServer;
  let elevenlabs: ElevenLabsFake;
  const as = (externalId: string) => ({ 'x-user-id': externalId });

  beforeAll(async () => {
    elevenlabs = await startElevenLabsFake();
    server = await startTestServer(backend, { ELEVENLABS_API_KEY: 'test-key', ELEVENLABS_BASE_URL: elevenlabs.url, RATE_LIMITS_ENABLED: 'true' });
  }, 180_000);
  afterAll(async () => {
    await server?.stop();
    await elevenlabs?.close();
  });

  async function userId(externalId: string): Promise<string> {
    return (await server.container.identity.service.registerUser(externalId, undefined)).user.id;
  }
  async function usageOf(externalId: string) {
    return server.container.db.select().from(usageEvents).where(eq(usageEvents.userId, await userId(externalId)));
  }
  async function raw(path: string, body: unknown, headers: Record<string, string> = {}) {
    const response = await fetch(`${server.url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.internalKey}`, 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
    return { status: response.status, headers: response.headers, bytes: Buffer.from(await response.arrayBuffer()) };
  }

  it('a plan out of voice seconds gets 429 with the seconds left, logged as quota_exceeded', async () => {
    const id = await userId('tts-quota');
    await server.request('PATCH', `/v1/admin/plans/free`, { body: { voice_seconds_per_month: 10 } });
    try {
      const first = await raw('/v1/tts', { text: 'Five seconds or so of speech, maybe.', voice: 'rachel' }, as('tts-quota'));
      expect(first.status).toBe(200);
      const refused = await server.request('POST', '/v1/tts', { key: server.internalKey, headers: as('tts-quota'), body: { text: 'This longer text would need far more seconds than the plan has left this month. '.repeat(3), voice: 'rachel' } });
      expect(refused.status).toBe(429);
      expect(refused.body.detail).toMatch(/\d+ left this month/);
      expect(refused.headers.get('retry-after')).toBeTruthy();
      const log = await server.container.db.select().from(voiceRequests).where(eq(voiceRequests.userId, id));
      expect(log.map((row) => row.status).sort()).toEqual(['quota_exceeded', 'success']);
      const usage = await usageOf('tts-quota');
      expect(usage).toHaveLength(1);
      expect(usage[0]!.creditsMicro).toBeGreaterThan(0);
    } finally {
      await server.request('PATCH', `/v1/admin/plans/free`, { body: { voice_seconds_per_month: 600 } });
    }
  });

  it('holds one of the plan\'s concurrent streams while audio streams', async () => {
    elevenlabs.settings.chunkDelayMs = 300;
    elevenlabs.settings.streamChunkBytes = 8192;
    try {
      const slow = fetch(`${server.url}/v1/tts`, {
        method: 'POST',
        headers: { authorization: `Bearer ${server.internalKey}`, 'content-type': 'application/json', ...as('tts-streams') },
        body: JSON.stringify({ text: 'A slow stream that holds the only slot of the free plan for a while.', voice: 'rachel', stream: true }),
      });
      const first = await slow;
      expect(first.status).toBe(200);
      const second = await server.request('POST', '/v1/tts', { key: server.internalKey, headers: as('tts-streams'), body: { text: 'Me too.', voice: 'rachel', stream: true } });
      expect(second.status).toBe(429);
      expect(second.body.limit_name).toBe('concurrent_streams');
      await first.arrayBuffer();
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect((await raw('/v1/tts', { text: 'Now it is free.', voice: 'rachel', stream: true }, as('tts-streams'))).status).toBe(200);
    } finally {
      elevenlabs.settings.chunkDelayMs = 0;
    }
  });
});
