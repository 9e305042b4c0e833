import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeServer, startJwksFake, type FakeServer, type JwksFake } from '../fakes/index.js';
import { AppError } from '../../src/infra/http/errors.js';
import { createOidcVerifier } from '../../src/modules/identity/oidc.js';

describe('OIDC ID token verifier', () => {
  let issuer: JwksFake;
  beforeAll(async () => {
    issuer = await startJwksFake({ audience: 'anima-app' });
  });
  afterAll(async () => {
    await issuer?.close();
  });

  const rejects = async (promise: Promise<unknown>, status: number, detail: RegExp) => {
    const error = await promise.then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).status).toBe(status);
    expect((error as AppError).message).toMatch(detail);
  };

  it('accepts a token of the issuer (JWKS found by discovery) and maps sub to oidc:<sub>', async () => {
    const verify = createOidcVerifier({ issuer: issuer.issuer, audience: 'anima-app', jwksUrl: undefined });
    const result = await verify(await issuer.signToken({ sub: 'abc-123', preferred_username: 'neo' }));
    expect(result).toEqual({ externalId: 'oidc:abc-123', username: 'neo' });
    expect(issuer.requestsTo('/.well-known/openid-configuration').length).toBeGreaterThan(0);
  });

  it('checks expiry, audience, issuer and signature', async () => {
    const verify = createOidcVerifier({ issuer: issuer.issuer, audience: 'anima-app', jwksUrl: issuer.jwksUrl });
    await rejects(verify(await issuer.signToken({}, { expiresIn: -60 })), 401, /expired/);
    await rejects(verify(await issuer.signToken({}, { audience: 'someone-else' })), 401, /aud/);
    await rejects(verify(await issuer.signToken({}, { issuer: 'https://evil.example.com' })), 401, /iss/);
    await rejects(verify(await issuer.signToken({}, { untrusted: true })), 401, /not signed by the configured issuer/);
    await rejects(verify('eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.'), 401, /malformed|unsupported/);
    await rejects(verify('not.a.token'), 401, /malformed|unsupported/);
  });

  it('honours key rotation: a new kid triggers a refetch; dropped keys stop working', async () => {
    const verify = createOidcVerifier({ issuer: issuer.issuer, audience: 'anima-app', jwksUrl: undefined }, { cooldownMs: 0 });
    const oldToken = await issuer.signToken({ sub: 'rotating' });
    expect((await verify(oldToken))?.externalId).toBe('oidc:rotating');
    await issuer.rotateKeys({ dropOld: true });
    expect((await verify(await issuer.signToken({ sub: 'rotating' })))?.externalId).toBe('oidc:rotating');
    await rejects(verify(await issuer.signToken({ sub: 'rotating' }, { kid: undefined, untrusted: true })), 401, /not signed/);
  });

  it('accepts ES256 and refuses HS256', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'ec-1', alg: 'ES256', use: 'sig' };
    const ecIssuer: FakeServer = await startFakeServer((context) => context.json(200, { keys: [jwk] }), { errorBody: () => ({}) });
    try {
      const verify = createOidcVerifier({ issuer: 'https://id.example.com', audience: 'anima-app', jwksUrl: `${ecIssuer.url}/jwks.json` });
      const token = await new SignJWT({ sub: 'ec-user' })
        .setProtectedHeader({ alg: 'ES256', kid: 'ec-1' })
        .setIssuer('https://id.example.com')
        .setAudience('anima-app')
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(privateKey);
      expect((await verify(token))?.externalId).toBe('oidc:ec-user');
      const hmac = await new SignJWT({ sub: 'x' })
        .setProtectedHeader({ alg: 'HS256' })
        .setIssuer('https://id.example.com')
        .setAudience('anima-app')
        .setExpirationTime('5m')
        .sign(new TextEncoder().encode('a shared secret that is long enough'));
      await rejects(verify(hmac), 401, /malformed|unsupported/);
    } finally {
      await ecIssuer.close();
    }
  });

  it('answers 503 when the issuer cannot be reached, and retries discovery later', async () => {
    const verify = createOidcVerifier({ issuer: 'http://127.0.0.1:9', audience: 'anima-app', jwksUrl: undefined });
    await rejects(verify(await issuer.signToken()), 503, /could not be reached/);
    await rejects(verify(await issuer.signToken()), 503, /could not be reached/);
  });
});
