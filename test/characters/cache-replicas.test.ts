import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { characters } from '../../src/infra/db/schema.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

/**
 * Two replicas on one PostgreSQL database and one Redis: a change made through one must be seen
 * by the other at once, although the other keeps characters in its own memory.
 */
describe.skipIf(!process.env.TEST_DATABASE_URL)('character cache across two replicas (PostgreSQL + Redis)', () => {
  let first: TestServer;
  let second: TestServer;

  beforeAll(async () => {
    first = await startTestServer('postgres');
    const { databaseUrl, redisUrl, redisKeyPrefix } = first.container.config;
    // The second replica joins the first one's database and Redis namespace instead of making its own.
    second = await startTestServer('embedded', { DATABASE_URL: databaseUrl, REDIS_URL: redisUrl, REDIS_KEY_PREFIX: redisKeyPrefix });
  });
  afterAll(async () => {
    await second?.stop();
    await first?.stop();
  });

  it('serves a PATCH made on one replica from the other', async () => {
    expect(second.container.keyValue.kind).toBe('redis');
    const created = await first.request('POST', '/v1/characters', { body: { name: 'Shared Sage', backstory: 'Version one.' } });
    expect(created.status).toBe(201);

    expect((await second.request('GET', '/v1/characters/shared-sage')).body.backstory).toBe('Version one.');

    // A change behind the service's back is not seen: the second replica really reads from its cache.
    await first.container.db.update(characters).set({ backstory: 'Written directly.' }).where(eq(characters.id, created.body.id));
    expect((await second.request('GET', '/v1/characters/shared-sage')).body.backstory).toBe('Version one.');
    expect((await second.request('GET', `/v1/characters/${created.body.id}`)).body.backstory).toBe('Version one.');

    const patched = await first.request('PATCH', '/v1/characters/shared-sage', { body: { backstory: 'Version two.' } });
    expect(patched.status).toBe(200);

    // Pub/sub delivery is asynchronous; it normally takes a millisecond or two.
    await expect.poll(async () => (await second.request('GET', '/v1/characters/shared-sage')).body.backstory, { timeout: 2000, interval: 20 }).toBe('Version two.');
    expect((await second.request('GET', `/v1/characters/${created.body.id}`)).body.backstory).toBe('Version two.');
    expect((await second.container.characters.service.get(created.body.id)).backstory).toBe('Version two.');

    // A slug change on one replica frees the old slug on the other, and a delete removes it everywhere.
    await first.request('PATCH', '/v1/characters/shared-sage', { body: { slug: 'wandering-sage' } });
    await expect.poll(async () => (await second.request('GET', '/v1/characters/shared-sage')).status, { timeout: 2000, interval: 20 }).toBe(404);
    expect((await second.request('GET', '/v1/characters/wandering-sage')).status).toBe(200);
    await first.request('DELETE', '/v1/characters/wandering-sage');
    await expect.poll(async () => (await second.request('GET', `/v1/characters/${created.body.id}`)).status, { timeout: 2000, interval: 20 }).toBe(404);
  });
});
