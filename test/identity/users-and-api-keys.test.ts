import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { userIdentities, users } from '../../src/infra/db/schema.js';
import { backends, startTestServer, type TestServer } from '../helpers/test-server.js';

describe.each(backends())('users and platform API keys on %s storage', (backend) => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer(backend);
  });
  afterAll(async () => {
    await server?.stop();
  });

  const userKeyFor = async (externalId: string, name = 'app'): Promise<{ key: string; id: string }> => {
    const response = await server.request('POST', '/v1/keys', { key: server.internalKey, headers: { 'x-user-id': externalId }, body: { name, role: 'user' } });
    expect(response.status).toBe(201);
    return { key: response.body.key, id: response.body.id };
  };

  it('registers users by external id: 201 when new, 200 when known; service or admin only', async () => {
    const created = await server.request('POST', '/v1/users', { key: server.internalKey, body: { external_id: 'discord:1001', username: 'ann' } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ username: 'ann', identities: ['discord:1001'], active: true, plan: { id: 'free' } });
    const again = await server.request('POST', '/v1/users', { key: server.internalKey, body: { external_id: 'discord:1001', username: 'annie' } });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ id: created.body.id, username: 'annie' });

    const bad = await server.request('POST', '/v1/users', { key: server.internalKey, body: { external_id: '', username: 'x' } });
    expect(bad.status).toBe(422);
    expect(bad.body.field).toBe('body.external_id');

    const { key } = await userKeyFor('discord:1001');
    const byUser = await server.request('POST', '/v1/users', { key, body: { external_id: 'discord:9999' } });
    expect(byUser.status).toBe(403);
  });

  it('GET /v1/me shows the acting user with plan limits, identities and activity', async () => {
    const first = await server.request('GET', '/v1/me', { key: server.internalKey, headers: { 'x-user-id': 'discord:2002', 'x-username': 'bo' } });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({
      username: 'bo',
      identities: ['discord:2002'],
      active: true,
      quotas: {},
      plan: { id: 'free', name: 'Free', allows_platform_keys: true, daily_credits: 10, requests_per_minute: 5 },
    });
    expect(Date.parse(first.body.created_at)).not.toBeNaN();
    await server.container.identity.service.flushActivity();
    const second = await server.request('GET', '/v1/me', { key: server.internalKey, headers: { 'x-user-id': 'discord:2002' } });
    expect(second.body.id).toBe(first.body.id);
    expect(Date.parse(second.body.last_active_at)).not.toBeNaN();

    const { key } = await userKeyFor('discord:2002');
    expect((await server.request('GET', '/v1/me', { key })).body.id).toBe(first.body.id);
    // Naming itself through X-User-Id is fine; naming anyone else is not.
    expect((await server.request('GET', '/v1/me', { key, headers: { 'x-user-id': 'discord:2002' } })).status).toBe(200);
    const other = await server.request('GET', '/v1/me', { key, headers: { 'x-user-id': 'discord:1001' } });
    expect(other.status).toBe(403);
    expect(other.body.code).toBe('forbidden');

    const longName = await server.request('GET', '/v1/me', { key: server.internalKey, headers: { 'x-user-id': 'discord:2003', 'x-username': 'n'.repeat(101) } });
    expect(longName.status).toBe(422);
    expect(longName.body.field).toBe('X-Username');
    const longId = await server.request('GET', '/v1/me', { key: server.internalKey, headers: { 'x-user-id': '9'.repeat(201) } });
    expect(longId.status).toBe(422);

    // Without X-User-Id a service key acts as its own user (Shapes.inc's rule), and /v1/me with the admin key answers the admin's own user.
    const serviceSelf = await server.request('GET', '/v1/me', { key: server.internalKey });
    expect(serviceSelf.status).toBe(200);
    expect(serviceSelf.body.identities).toEqual(['anima:internal']);
    const adminSelf = await server.request('GET', '/v1/me');
    expect(adminSelf.status).toBe(200);
    expect(adminSelf.body.identities).toEqual(['anima:admin']);
    expect(adminSelf.body.id).not.toBe(serviceSelf.body.id);
  });

  it('lets an admin read and change users: plan (must exist), active, quotas', async () => {
    const me = await server.request('GET', '/v1/me', { key: server.internalKey, headers: { 'x-user-id': 'discord:3003' } });
    const userId = me.body.id as string;

    const byId = await server.request('GET', `/v1/admin/users/${userId}`);
    expect(byId.status).toBe(200);
    expect(byId.body).toMatchObject({ id: userId, provider_keys: [] });
    expect((await server.request('GET', '/v1/admin/users/discord:3003')).body.id).toBe(userId);
    expect((await server.request('GET', `/v1/admin/users/${crypto.randomUUID()}`)).status).toBe(404);

    const changed = await server.request('PATCH', `/v1/admin/users/${userId}`, { body: { plan: 'premium', quotas: { images_per_day: 5 } } });
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({ plan: { id: 'premium', daily_credits: 100 }, quotas: { images_per_day: 5 } });

    const unknownPlan = await server.request('PATCH', `/v1/admin/users/${userId}`, { body: { plan: 'gold' } });
    expect(unknownPlan.status).toBe(422);
    expect(unknownPlan.body).toMatchObject({ code: 'validation_failed', field: 'plan' });
    const badQuota = await server.request('PATCH', `/v1/admin/users/${userId}`, { body: { quotas: { images_per_day: -1 } } });
    expect(badQuota.status).toBe(422);

    const deactivated = await server.request('PATCH', `/v1/admin/users/${userId}`, { body: { active: false } });
    expect(deactivated.body.active).toBe(false);
    expect((await server.request('GET', '/v1/me', { key: server.internalKey, headers: { 'x-user-id': 'discord:3003' } })).status).toBe(403);
    await server.request('PATCH', `/v1/admin/users/${userId}`, { body: { active: true } });
    expect((await server.request('GET', '/v1/me', { key: server.internalKey, headers: { 'x-user-id': 'discord:3003' } })).status).toBe(200);

    expect((await server.request('PATCH', `/v1/admin/users/${userId}`, { key: server.internalKey, body: { plan: 'vip' } })).status).toBe(403);
  });

  it('lists users for an admin: newest first, paged by cursor, searched by external id or username', async () => {
    const created: Array<{ id: string; external: string }> = [];
    for (let index = 0; index < 5; index += 1) {
      const external = `roster:${index}`;
      const response = await server.request('POST', '/v1/users', { key: server.internalKey, body: { external_id: external, username: `Roster_Member ${index}` } });
      expect(response.status).toBe(201);
      created.push({ id: response.body.id as string, external });
    }
    const newestFirst = [...created].reverse();

    // Pages of two, newest first, each user once, with the fields of the admin user view.
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = `/v1/admin/users?q=roster:&limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const page = await server.request('GET', query);
      expect(page.status, page.text).toBe(200);
      expect(page.body.data.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.data.map((user: { id: string }) => user.id));
      cursor = page.body.next_cursor as string | null;
      pages += 1;
    } while (cursor !== null && pages < 10);
    expect(seen).toEqual(newestFirst.map((user) => user.id));
    expect(pages).toBe(3);

    // Two users made within one millisecond (microseconds apart): the cursor keeps the microseconds, so neither is skipped.
    const [earlier, later] = await server.container.db
      .insert(users)
      .values([
        { username: 'same clock 1', createdAt: sql`'2001-01-01T00:00:00.000100Z'::timestamptz` },
        { username: 'same clock 2', createdAt: sql`'2001-01-01T00:00:00.000200Z'::timestamptz` },
      ])
      .returning();
    await server.container.db.insert(userIdentities).values([
      { userId: earlier!.id, externalId: 'sameclock:1' },
      { userId: later!.id, externalId: 'sameclock:2' },
    ]);
    const sameFirst = await server.request('GET', '/v1/admin/users?q=sameclock:&limit=1');
    expect(sameFirst.body.data.map((user: { id: string }) => user.id)).toEqual([later!.id]);
    const sameSecond = await server.request('GET', `/v1/admin/users?q=sameclock:&limit=1&cursor=${encodeURIComponent(sameFirst.body.next_cursor as string)}`);
    expect(sameSecond.body).toEqual({ data: [expect.objectContaining({ id: earlier!.id, identities: ['sameclock:1'] })], next_cursor: null });

    const first = await server.request('GET', '/v1/admin/users?q=roster:4');
    expect(first.body).toMatchObject({ next_cursor: null });
    expect(first.body.data).toEqual([
      {
        id: created[4]!.id,
        username: 'Roster_Member 4',
        identities: ['roster:4'],
        active: true,
        quotas: {},
        plan: expect.objectContaining({ id: 'free', name: 'Free' }),
        created_at: expect.any(String),
        last_active_at: null,
      },
    ]);

    // Without q: everyone, newest first, the five among them in order.
    const everyone: Array<{ id: string; created_at: string }> = [];
    cursor = null;
    pages = 0;
    do {
      const page = await server.request('GET', `/v1/admin/users?limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(page.status).toBe(200);
      everyone.push(...page.body.data);
      cursor = page.body.next_cursor as string | null;
      pages += 1;
    } while (cursor !== null && pages < 50);
    expect(new Set(everyone.map((user) => user.id)).size).toBe(everyone.length);
    expect(everyone.map((user) => user.id).filter((id) => created.some((user) => user.id === id))).toEqual(newestFirst.map((user) => user.id));
    const times = everyone.map((user) => Date.parse(user.created_at));
    expect(times).toEqual([...times].sort((a, b) => b - a));
    expect(everyone.length).toBeGreaterThan(5);

    // Search: by username (any case), by external id, by internal id; `%` and `_` are literal characters.
    const byName = await server.request('GET', `/v1/admin/users?q=${encodeURIComponent('roster_member 2')}`);
    expect(byName.body.data.map((user: { id: string }) => user.id)).toEqual([created[2]!.id]);
    const byExternal = await server.request('GET', '/v1/admin/users?q=ROSTER:1');
    expect(byExternal.body.data.map((user: { id: string }) => user.id)).toEqual([created[1]!.id]);
    const byId = await server.request('GET', `/v1/admin/users?q=${created[3]!.id.toUpperCase()}`);
    expect(byId.body.data.map((user: { id: string }) => user.id)).toEqual([created[3]!.id]);
    expect((await server.request('GET', `/v1/admin/users?q=${encodeURIComponent('%')}`)).body.data).toEqual([]);
    expect((await server.request('GET', `/v1/admin/users?q=${encodeURIComponent('roster_4')}`)).body.data).toEqual([]);
    expect((await server.request('GET', '/v1/admin/users?q=nobody-has-this')).body).toEqual({ data: [], next_cursor: null });
    expect((await server.request('GET', '/v1/admin/users?q=')).body.data.length).toBeGreaterThan(5);

    // Bad input is a 422 naming the field.
    for (const [query, field] of [
      ['limit=0', 'querystring.limit'],
      ['limit=101', 'querystring.limit'],
      ['cursor=not-a-cursor', 'cursor'],
      [`cursor=${Buffer.from(JSON.stringify(['2026-02-30T10:00:00.000000Z', created[0]!.id])).toString('base64url')}`, 'cursor'],
      [`q=${'x'.repeat(201)}`, 'querystring.q'],
    ] as const) {
      const response = await server.request('GET', `/v1/admin/users?${query}`);
      expect(response.status, query).toBe(422);
      expect(response.body).toMatchObject({ code: 'validation_failed', field });
    }

    // Admin only: a service key and a user key get 403.
    const { key: userKey } = await userKeyFor('roster:0');
    for (const key of [server.internalKey, userKey]) {
      const response = await server.request('GET', '/v1/admin/users', { key });
      expect(response.status).toBe(403);
      expect(response.text).not.toContain(created[0]!.id);
    }
  });

  it('creates user keys for X-User-Id, lets a user key create more for itself, never higher roles', async () => {
    const { key: userKey, id: firstId } = await userKeyFor('discord:4004', 'first');
    const more = await server.request('POST', '/v1/keys', { key: userKey, body: { name: 'second' } });
    expect(more.status).toBe(201);
    expect(more.body).toMatchObject({ role: 'user', name: 'second' });
    expect(more.body.key).toMatch(/^anima_sk_[A-Za-z0-9]{8}_[A-Za-z0-9]{40}$/);
    expect((await server.request('GET', '/v1/me', { key: more.body.key })).body.identities).toEqual(['discord:4004']);

    expect((await server.request('POST', '/v1/keys', { key: userKey, body: { name: 'x', role: 'service' } })).status).toBe(403);
    expect((await server.request('POST', '/v1/keys', { key: server.internalKey, body: { name: 'x', role: 'admin' } })).status).toBe(403);
    const noUser = await server.request('POST', '/v1/keys', { body: { name: 'no user', role: 'user' } });
    expect(noUser.status).toBe(422);
    expect(noUser.body).toMatchObject({ code: 'validation_failed', field: 'X-User-Id' });

    const listed = await server.request('GET', '/v1/keys', { key: userKey });
    expect(listed.body.data.map((key: { id: string }) => key.id).sort()).toEqual([firstId, more.body.id].sort());
    expect(listed.text).not.toContain(userKey);
    const adminList = await server.request('GET', '/v1/keys');
    expect(adminList.body.data.length).toBeGreaterThanOrEqual(2);
    expect(adminList.text).not.toMatch(/"hash"/);

    // Another user's key id is not found; a service key acting for the owner may revoke it.
    const { key: strangerKey } = await userKeyFor('discord:4005');
    expect((await server.request('DELETE', `/v1/keys/${firstId}`, { key: strangerKey })).status).toBe(404);
    expect((await server.request('DELETE', `/v1/keys/${more.body.id}`, { key: server.internalKey, headers: { 'x-user-id': 'discord:4004' } })).status).toBe(204);
    const revoked = await server.request('GET', '/v1/me', { key: more.body.key });
    expect(revoked.status).toBe(401);
    expect(revoked.body.detail).toMatch(/revoked/);
    expect((await server.request('DELETE', `/v1/keys/${more.body.id}`, { key: server.internalKey, headers: { 'x-user-id': 'discord:4004' } })).status).toBe(404);
  });

  it('honours expires_at and rejects one in the past', async () => {
    const past = await server.request('POST', '/v1/keys', {
      key: server.internalKey,
      headers: { 'x-user-id': 'discord:5005' },
      body: { name: 'old', expires_at: new Date(Date.now() - 60_000).toISOString() },
    });
    expect(past.status).toBe(422);
    expect(past.body.field).toBe('expires_at');

    const soon = await server.request('POST', '/v1/keys', {
      key: server.internalKey,
      headers: { 'x-user-id': 'discord:5005' },
      body: { name: 'short-lived', expires_at: new Date(Date.now() + 1_000).toISOString() },
    });
    expect(soon.status).toBe(201);
    expect((await server.request('GET', '/v1/me', { key: soon.body.key })).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const expired = await server.request('GET', '/v1/me', { key: soon.body.key });
    expect(expired.status).toBe(401);
    expect(expired.body).toMatchObject({ code: 'unauthorized' });
    expect(expired.body.detail).toMatch(/expired/);
  });

  it('answers missing, malformed and unknown credentials with 401', async () => {
    for (const authorization of [undefined, 'Basic abc', 'Bearer', `Bearer anima_sk_AAAAAAAA_${'B'.repeat(40)}`, 'Bearer not-a-key', 'Bearer a.b.c']) {
      const response = await server.request('GET', '/v1/me', { key: null, headers: authorization ? { authorization } : {} });
      expect(response.status, String(authorization)).toBe(401);
      expect(response.body.code).toBe('unauthorized');
      expect(response.headers.get('www-authenticate')).toBe('Bearer');
    }
  });
});
