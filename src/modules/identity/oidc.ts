import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { ServiceUnavailableError, UnauthorizedError } from '../../infra/http/errors.js';
import type { TokenVerifier } from './service.js';

export interface OidcSettings {
  issuer: string;
  audience: string;
  /** Unset: read `jwks_uri` from `<issuer>/.well-known/openid-configuration` on first use. */
  jwksUrl: string | undefined;
}

/** The external id of an OIDC user. One issuer is configured at a time, so the bare `sub` is unique. */
export function oidcExternalId(subject: string): string {
  return `oidc:${subject}`;
}

const DISCOVERY_TIMEOUT_MS = 5_000;

/**
 * Verifies OpenID Connect ID tokens (Firebase, Supabase, Auth0…): signature against the issuer's
 * JWKS (RS256 or ES256), issuer, audience and expiry. `createRemoteJWKSet` caches the key set and
 * refetches it when a token names an unknown `kid`, so the issuer's key rotation is honoured.
 * Discovery happens lazily, so start-up never waits on the identity provider.
 */
export function createOidcVerifier(
  settings: OidcSettings,
  options: {
    fetch?: typeof fetch;
    /** Minimum time between JWKS refetches (jose's default 30 s guards the issuer against unknown-kid floods). */
    cooldownMs?: number;
  } = {},
): TokenVerifier {
  const fetchFunction = options.fetch ?? fetch;
  const remoteOptions = options.cooldownMs === undefined ? {} : { cooldownDuration: options.cooldownMs };
  let keySet: Promise<JWTVerifyGetKey> | undefined;

  const loadKeySet = async (): Promise<JWTVerifyGetKey> => {
    if (settings.jwksUrl) return createRemoteJWKSet(new URL(settings.jwksUrl), remoteOptions);
    const discoveryUrl = `${settings.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
    const response = await fetchFunction(discoveryUrl, { signal: AbortSignal.timeout(DISCOVERY_TIMEOUT_MS) });
    if (!response.ok) throw new Error(`OIDC discovery answered HTTP ${response.status}`);
    const document = (await response.json()) as { jwks_uri?: unknown };
    if (typeof document.jwks_uri !== 'string') throw new Error('OIDC discovery document has no jwks_uri');
    return createRemoteJWKSet(new URL(document.jwks_uri), remoteOptions);
  };

  return async (token) => {
    keySet ??= loadKeySet().catch((error: unknown) => {
      keySet = undefined; // try discovery again on the next token
      throw error;
    });
    let getKey: JWTVerifyGetKey;
    try {
      getKey = await keySet;
    } catch (error) {
      throw new ServiceUnavailableError('The identity provider could not be reached to verify the token.', { cause: error });
    }
    try {
      const { payload } = await jwtVerify(token, getKey, {
        issuer: settings.issuer,
        audience: settings.audience,
        algorithms: ['RS256', 'ES256'],
        requiredClaims: ['sub', 'exp'],
      });
      const username =
        typeof payload.preferred_username === 'string' ? payload.preferred_username : typeof payload.name === 'string' ? payload.name : undefined;
      return { externalId: oidcExternalId(payload.sub!), username };
    } catch (error) {
      throw tokenError(error);
    }
  };
}

function tokenError(error: unknown): Error {
  if (error instanceof joseErrors.JWTExpired) return new UnauthorizedError('The token has expired.');
  if (error instanceof joseErrors.JWTClaimValidationFailed) return new UnauthorizedError(`The token was not accepted: claim ${error.claim} is not valid.`);
  if (error instanceof joseErrors.JWKSNoMatchingKey || error instanceof joseErrors.JWSSignatureVerificationFailed) {
    return new UnauthorizedError('The token was not signed by the configured issuer.');
  }
  if (error instanceof joseErrors.JWKSTimeout || (error instanceof joseErrors.JOSEError && error.code === 'ERR_JWKS_INVALID')) {
    return new ServiceUnavailableError('The identity provider could not be reached to verify the token.', { cause: error });
  }
  if (error instanceof joseErrors.JOSEError) return new UnauthorizedError('The token is malformed or uses an unsupported algorithm.');
  // Network failures fetching the JWKS surface as plain errors.
  return new ServiceUnavailableError('The identity provider could not be reached to verify the token.', { cause: error });
}
