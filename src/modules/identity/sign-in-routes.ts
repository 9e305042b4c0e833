import { z } from 'zod';
import type { AppInstance } from '../../app-types.js';
import type { Config } from '../../config.js';

const DISCOVERY_TIMEOUT_MS = 5_000;

/**
 * GET /v1/auth/methods (public): how a person may sign in on the dashboard. With OIDC configured it
 * names the issuer, the client id (OIDC_AUDIENCE) and the issuer's authorization endpoint (from its
 * discovery document, cached once found), so the page can offer the implicit flow.
 */
export function registerSignInRoutes(app: AppInstance, deps: { oidc: Config['oidc']; fetch?: typeof fetch }): void {
  const fetchFunction = deps.fetch ?? fetch;
  let authorizationEndpoint: string | undefined;

  const discover = async (issuer: string): Promise<string | null> => {
    if (authorizationEndpoint) return authorizationEndpoint;
    try {
      const response = await fetchFunction(`${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(DISCOVERY_TIMEOUT_MS) });
      if (!response.ok) return null;
      const document = (await response.json()) as { authorization_endpoint?: unknown };
      if (typeof document.authorization_endpoint !== 'string' || !/^https?:\/\//.test(document.authorization_endpoint)) return null;
      authorizationEndpoint = document.authorization_endpoint;
      return authorizationEndpoint;
    } catch {
      return null;
    }
  };

  app.get(
    '/v1/auth/methods',
    {
      config: { auth: 'public' },
      schema: {
        tags: ['identity'],
        summary: 'How to sign in here: API key, Discord link code, and OIDC ID tokens when configured (public)',
        security: [],
        response: {
          200: z.object({
            api_key: z.boolean(),
            link_code: z.boolean(),
            oidc: z
              .object({
                issuer: z.string(),
                client_id: z.string().describe('OIDC_AUDIENCE: the client id ID tokens are issued for'),
                authorization_endpoint: z.string().nullable().describe('For the implicit flow (response_type=id_token); null when discovery failed'),
              })
              .nullable(),
          }),
        },
      },
    },
    async () => ({
      api_key: true,
      link_code: true,
      oidc: deps.oidc ? { issuer: deps.oidc.issuer, client_id: deps.oidc.audience, authorization_endpoint: await discover(deps.oidc.issuer) } : null,
    }),
  );
}
