import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startJwksFake, type JwksFake } from '../fakes/index.js';
import { backends, startTestServer, type TestServer } from '../helpers/test-server.js';

describe.each(backends())('OIDC ID tokens as bearer tokens on %s storage', (backend) => {
  let issuer: JwksFake;
  let server: TestServer;

  beforeAll(async () => {
    issuer = await startJwksFake({ audience: 'anima-web' });
    // No OIDC_JWKS_URL: the key set is discovered from the issuer.
    server = await startTestServer(backend, { OIDC_ISSUER: issuer.issuer, OIDC_AUDIENCE: 'anima-web', OIDC_JWKS_COOLDOWN_MS: '0' });
  });
  afterAll(async () => {
    await server?.stop();
    await issuer?.close();
  });

  it('signs the user in as oidc:<sub>, created on first sight, the same user afterwards', async () => {
    const token = await issuer.signToken({ sub: 'firebase-uid-1', preferred_username: 'mia' });
    const first = await server.request('GET', '/v1/me', { key: token });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ username: 'mia', identities: ['oidc:firebase-uid-1'], plan: { id: 'free' } });
    const again = await server.request('GET', '/v1/me', { key: await issuer.signToken({ sub: 'firebase-uid-1' }) });
    expect(again.body.id).toBe(first.body.id);

    // A token user acts only as itself and may hold ordinary user keys.
    expect((await server.request('GET', '/v1/me', { key: token, headers: { 'x-user-id': 'discord:someone' } })).status).toBe(403);
    expect((await server.request('POST', '/v1/keys', { key: token, body: { name: 'x', role: 'service' } })).status).toBe(403);
    const userKey = await server.request('POST', '/v1/keys', { key: token, body: { name: 'cli' } });
    expect(userKey.status).toBe(201);
    expect((await server.request('GET', '/v1/me', { key: userKey.body.key })).body.id).toBe(first.body.id);
    expect((await server.request('GET', '/v1/admin/users/oidc:firebase-uid-1', { key: token })).status).toBe(403);
  });

  it('refuses expired, foreign, untrusted and malformed tokens with 401', async () => {
    const cases: Array<[string, RegExp]> = [
      [await issuer.signToken({}, { expiresIn: -30 }), /expired/],
      [await issuer.signToken({}, { audience: 'another-app' }), /aud/],
      [await issuer.signToken({}, { issuer: 'https://accounts.example.com' }), /iss/],
      [await issuer.signToken({}, { untrusted: true }), /not signed/],
      ['abc.def.ghi', /malformed|unsupported/],
    ];
    for (const [token, detail] of cases) {
      const response = await server.request('GET', '/v1/me', { key: token });
      expect(response.status).toBe(401);
      expect(response.body).toMatchObject({ code: 'unauthorized' });
      expect(response.body.detail).toMatch(detail);
    }
    expect(server.logs.join('\n')).not.toContain((await issuer.signToken({}, { expiresIn: -30 })).split('.')[2]);
  });

  it('honours a rotated signing key: the new kid is fetched, dropped keys stop working', async () => {
    const before = await issuer.signToken({ sub: 'rotated-user' });
    expect((await server.request('GET', '/v1/me', { key: before })).status).toBe(200);
    const fetchesBefore = issuer.requestsTo('/jwks.json').length;
    await issuer.rotateKeys({ dropOld: true });
    const after = await server.request('GET', '/v1/me', { key: await issuer.signToken({ sub: 'rotated-user' }) });
    expect(after.status).toBe(200);
    expect(issuer.requestsTo('/jwks.json').length).toBeGreaterThan(fetchesBefore);
    // The refetched set no longer has the dropped key: a token it signed earlier is now refused.
    const dropped = await server.request('GET', '/v1/me', { key: before });
    expect(dropped.status).toBe(401);
    expect(dropped.body.detail).toMatch(/not signed/);
  });
});
