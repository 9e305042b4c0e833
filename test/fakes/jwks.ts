/**
 * Loopback OpenID provider for OIDC tests: serves the discovery document and a JWKS of RSA
 * public keys, and signs RS256 ID tokens with the matching private keys. The issuer is the
 * fake's own URL unless told otherwise, so `OIDC_ISSUER=fake.issuer` discovers the JWKS.
 */
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload } from 'jose';
import { startFakeServer, type FakeServer } from './fake-server.js';

export interface JwksFakeOptions {
  /** `iss` of the tokens and the discovery document; default: the fake's URL. */
  issuer?: string;
  /** Default `aud` of signed tokens. */
  audience?: string;
  /** Path of the key set; default `/jwks.json`. */
  jwksPath?: string;
}

export interface SignTokenOptions {
  kid?: string;
  /** Seconds from now (negative for an already expired token) or a jose span like `'1h'`. Default 1 hour. */
  expiresIn?: number | string;
  issuer?: string;
  audience?: string | string[];
  /** Sign with a fresh key that is not in the JWKS (the token must be rejected). */
  untrusted?: boolean;
}

export interface JwksKey {
  kid: string;
  publicJwk: JWK;
  privateKey: CryptoKey;
}

export interface JwksFake extends FakeServer {
  issuer: string;
  audience: string;
  jwksUrl: string;
  discoveryUrl: string;
  /** Published keys, oldest first; the last one signs by default. */
  keys: JwksKey[];
  readonly currentKid: string;
  /** Signs an RS256 ID token; `sub` defaults to `user-1`, `iat` to now. */
  signToken(claims?: JWTPayload & Record<string, unknown>, options?: SignTokenOptions): Promise<string>;
  /** Adds a new key and makes it the signing key; `dropOld` removes the previous ones. Returns its kid. */
  rotateKeys(options?: { dropOld?: boolean }): Promise<string>;
  removeKey(kid: string): void;
}

async function createKey(): Promise<JwksKey> {
  const { publicKey, privateKey } = await generateKeyPair('RS256', { modulusLength: 2048 });
  const kid = randomUUID();
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  return { kid, publicJwk, privateKey };
}

export async function startJwksFake(options: JwksFakeOptions = {}): Promise<JwksFake> {
  const jwksPath = options.jwksPath ?? '/jwks.json';
  const audience = options.audience ?? 'anima-test';
  const keys: JwksKey[] = [await createKey()];
  let issuer = options.issuer ?? '';

  const server = await startFakeServer(
    async (context) => {
      const { method, path } = context.request;
      if (method === 'GET' && path === '/.well-known/openid-configuration') {
        await context.json(200, {
          issuer,
          jwks_uri: `${context.baseUrl}${jwksPath}`,
          authorization_endpoint: `${context.baseUrl}/authorize`,
          token_endpoint: `${context.baseUrl}/token`,
          response_types_supported: ['code', 'id_token'],
          subject_types_supported: ['public'],
          id_token_signing_alg_values_supported: ['RS256'],
        });
        return;
      }
      if (method === 'GET' && path === jwksPath) {
        await context.json(200, { keys: keys.map((key) => key.publicJwk) }, { 'cache-control': 'public, max-age=60' });
        return;
      }
      await context.json(404, { error: 'not_found' });
    },
    { errorBody: (status) => ({ error: status >= 500 ? 'server_error' : 'invalid_request' }) },
  );
  if (issuer === '') issuer = server.url;

  const signToken: JwksFake['signToken'] = async (claims = {}, signOptions = {}) => {
    let key = keys.at(-1);
    if (signOptions.untrusted === true) key = await createKey();
    else if (signOptions.kid !== undefined) key = keys.find((candidate) => candidate.kid === signOptions.kid);
    if (key === undefined) throw new Error(`no signing key ${signOptions.kid ?? ''}`);
    const now = Math.floor(Date.now() / 1000);
    const expiresIn = signOptions.expiresIn ?? 3600;
    const jwt = new SignJWT({ sub: 'user-1', ...claims })
      .setProtectedHeader({ alg: 'RS256', kid: key.kid, typ: 'JWT' })
      .setIssuer(signOptions.issuer ?? issuer)
      .setAudience(signOptions.audience ?? audience);
    if (claims.iat === undefined) jwt.setIssuedAt(now);
    // jose reads a number as an absolute time, so relative seconds are converted here.
    if (claims.exp === undefined) jwt.setExpirationTime(typeof expiresIn === 'number' ? now + expiresIn : expiresIn);
    return jwt.sign(key.privateKey);
  };

  return {
    ...server,
    issuer,
    audience,
    jwksUrl: `${server.url}${jwksPath}`,
    discoveryUrl: `${server.url}/.well-known/openid-configuration`,
    keys,
    get currentKid() {
      return keys.at(-1)?.kid ?? '';
    },
    signToken,
    async rotateKeys(rotateOptions = {}) {
      const key = await createKey();
      if (rotateOptions.dropOld === true) keys.splice(0, keys.length);
      keys.push(key);
      return key.kid;
    },
    removeKey(kid) {
      const index = keys.findIndex((key) => key.kid === kid);
      if (index >= 0) keys.splice(index, 1);
    },
  };
}
