import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { linkCodes } from '../../src/infra/db/schema.js';
import { LINK_CODE_REDEEMS_PER_MINUTE } from '../../src/modules/identity/link-code-routes.js';
import { normaliseLinkCode } from '../../src/modules/identity/link-codes.js';
import { backends, startTestServer, type TestServer } from '../helpers/test-server.js';

// The Discord link-code flow: the bot (a service key) asks for a code for the Discord user it names;
// that person redeems it on the dashboard, unauthenticated, for a user key bound to them.
// Redemptions from this test all come from 127.0.0.1, which may try LINK_CODE_REDEEMS_PER_MINUTE
// times a minute: the tests below stay under it until the last one, which proves the limit.
describe.each(backends())('link codes on %s storage', (backend) => {
  let server: TestServer;
  let redeems = 0;

  beforeAll(async () => {
    server = await startTestServer(backend, { SETUP_URL: 'https://anima.example/dashboard' });
  });
  afterAll(async () => {
    await server?.stop();
  });

  const issue = async (externalId: string) => {
    const response = await server.request('POST', '/v1/link-codes', { key: server.internalKey, headers: { 'x-user-id': externalId } });
    expect(response.status).toBe(201);
    return response.body as { code: string; url: string; expires_at: string };
  };
  const redeem = async (code: string, name?: string) => {
    redeems += 1;
    return server.request('POST', '/v1/link-codes/redeem', { key: null, body: name ? { code, name } : { code } });
  };

  it('GET /v1/auth/methods tells the dashboard, without credentials, which sign-ins exist', async () => {
    const methods = await server.request('GET', '/v1/auth/methods', { key: null });
    expect(methods.status).toBe(200);
    expect(methods.body).toEqual({ api_key: true, link_code: true, oidc: null });
  });

  it('issues a short code for the named user and redeems it once for a user key bound to that user', async () => {
    const issued = await issue('discord:4242');
    expect(issued.code).toMatch(/^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$/);
    expect(issued.url).toBe(`https://anima.example/dashboard?code=${issued.code}`);
    const ttl = Date.parse(issued.expires_at) - Date.now();
    expect(ttl).toBeGreaterThan(9 * 60_000);
    expect(ttl).toBeLessThanOrEqual(10 * 60_000);

    // Typed as people type it: lower case, no dash.
    const redeemed = await redeem(issued.code.toLowerCase().replace('-', ''), 'my laptop');
    expect(redeemed.status).toBe(201);
    expect(redeemed.body).toMatchObject({ name: 'my laptop', key: expect.stringMatching(/^anima_sk_/) });
    const me = await server.request('GET', '/v1/me', { key: redeemed.body.key });
    expect(me.status).toBe(200);
    expect(me.body.identities).toEqual(['discord:4242']);
    expect(me.body.id).toBe(redeemed.body.user_id);
    const keys = await server.request('GET', '/v1/keys', { key: redeemed.body.key });
    expect(keys.body.data).toEqual([expect.objectContaining({ id: redeemed.body.id, role: 'user', user_id: me.body.id })]);

    const again = await redeem(issued.code);
    expect(again.status).toBe(422);
    expect(again.body).toMatchObject({ code: 'validation_failed', field: 'code' });
  });

  it('stores only a hash; an expired code and a code replaced by a newer one are refused', async () => {
    const issued = await issue('discord:5151');
    const rows = await server.container.db.select().from(linkCodes);
    const normalised = normaliseLinkCode(issued.code)!;
    expect(JSON.stringify(rows)).not.toContain(normalised);
    expect(JSON.stringify(rows)).not.toContain(issued.code);

    await server.container.db.update(linkCodes).set({ expiresAt: sql`now() - interval '1 second'` }).where(eq(linkCodes.codeHash, rows.find((row) => row.usedAt === null && row.expiresAt.getTime() > Date.now())!.codeHash));
    expect((await redeem(issued.code)).status).toBe(422);

    const older = await issue('discord:5151');
    const newer = await issue('discord:5151');
    expect((await redeem(older.code)).status).toBe(422);
    const ok = await redeem(newer.code);
    expect(ok.status).toBe(201);
    expect((await server.request('GET', '/v1/me', { key: ok.body.key })).body.identities).toEqual(['discord:5151']);
  });

  it('only service and admin keys naming a user issue codes; a user key or no X-User-Id cannot', async () => {
    const { code } = await issue('discord:6161');
    const userKey = (await redeem(code)).body.key as string;
    const byUser = await server.request('POST', '/v1/link-codes', { key: userKey, headers: { 'x-user-id': 'discord:someone-else' } });
    expect(byUser.status).toBe(403);
    const byUserSelf = await server.request('POST', '/v1/link-codes', { key: userKey });
    expect(byUserSelf.status).toBe(403);
    const noUser = await server.request('POST', '/v1/link-codes', { key: server.internalKey });
    expect(noUser.status).toBe(422);
    expect(noUser.body.field).toBe('X-User-Id');
    expect((await server.request('POST', '/v1/link-codes', { key: null, headers: { 'x-user-id': 'discord:6161' } })).status).toBe(401);
    const byAdmin = await server.request('POST', '/v1/link-codes', { headers: { 'x-user-id': 'discord:7171' } });
    expect(byAdmin.status).toBe(201);
    const garbage = await redeem('not a code at all');
    expect(garbage.status).toBe(422);
  });

  it('concurrent redemptions of one code: exactly one key is made', async () => {
    const { code } = await issue('discord:8181');
    const before = (await server.request('GET', '/v1/keys')).body.data.length as number;
    const answers = await Promise.all([redeem(code), redeem(code), redeem(code)]);
    expect(answers.map((answer) => answer.status).sort()).toEqual([201, 422, 422]);
    expect((await server.request('GET', '/v1/keys')).body.data.length).toBe(before + 1);
  });

  it(`limits redemption to ${LINK_CODE_REDEEMS_PER_MINUTE} tries a minute per address, even with a valid code`, async () => {
    expect(redeems).toBeLessThanOrEqual(LINK_CODE_REDEEMS_PER_MINUTE);
    const { code } = await issue('discord:9191');
    while (redeems < LINK_CODE_REDEEMS_PER_MINUTE) expect((await redeem('ZZZZ-ZZZZ')).status).toBe(422);
    const limited = await redeem(code);
    expect(limited.status).toBe(429);
    expect(limited.body.code).toBe('rate_limited');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    // The code was not spent by the refused attempt.
    const [row] = await server.container.db.select().from(linkCodes).where(sql`${linkCodes.usedAt} is null and ${linkCodes.expiresAt} > now()`);
    expect(row).toBeDefined();
  });
});
