import { randomUUID } from 'node:crypto';
import type { Infrastructure } from '../../container.js';
import type { VaultCipher } from '../../infra/crypto/vault-cipher.js';
import { loadVaultCipher } from '../../infra/crypto/vault-key-file.js';
import type { PlanReader } from '../billing/plan-catalog.js';
import type { AppModule } from '../module.js';
import { VaultKeyResolver } from './key-resolution.js';
import { registerLinkCodeRoutes } from './link-code-routes.js';
import { createOidcVerifier } from './oidc.js';
import { registerSignInRoutes } from './sign-in-routes.js';
import { registerProviderKeyRoutes } from './provider-key-routes.js';
import { ProviderKeyVault } from './provider-keys.js';
import * as keyStore from './provider-key-store.js';
import { registerIdentityRoutes } from './routes.js';
import * as store from './store.js';
import { IdentityService, RESERVED_EXTERNAL_ID_PREFIX } from './service.js';
import { registerUserRoutes } from './user-routes.js';

export { describeResolvedKey, rejectedKeyError, VaultKeyResolver } from './key-resolution.js';
export type { ProviderKeyResolver, ResolvedProviderKey } from './key-resolution.js';
export { ProviderKeyVault } from './provider-keys.js';

export interface IdentityModule extends AppModule {
  service: IdentityService;
  /** The one way every provider call gets its key (user's vault key → platform key → 402). */
  keys: VaultKeyResolver;
  vault: ProviderKeyVault;
  cipher: VaultCipher;
}

export function createIdentityModule(infrastructure: Infrastructure, dependencies: { plans: PlanReader }): IdentityModule {
  const { config, db, logger, keyValue } = infrastructure;
  const { plans } = dependencies;
  const events = keyValue.events;
  const service = new IdentityService({ config, db, logger, events, plans });
  if (config.oidc) service.setTokenVerifier(createOidcVerifier(config.oidc, { cooldownMs: config.oidc.jwksCooldownMs }));
  const cipher = loadVaultCipher(config, logger);
  const keys = new VaultKeyResolver({ config, db, cipher, logger, events, plans });
  const vault = new ProviderKeyVault({ config, db, cipher, logger, plans, onChange: (userId) => keys.forgetUser(userId) });
  return {
    name: 'identity',
    service,
    keys,
    vault,
    cipher,
    registerRoutes: (app) => {
      registerIdentityRoutes(app, { identity: service });
      registerUserRoutes(app, { identity: service, vault });
      registerProviderKeyRoutes(app, { identity: service, vault });
      registerSignInRoutes(app, { oidc: config.oidc });
      registerLinkCodeRoutes(app, { identity: service, counters: keyValue.counters, setupUrl: config.setupUrl, publicBaseUrl: config.publicBaseUrl });
    },
    // A turn's reads of this module (the user by external id and by id, the user's own provider
    // keys), and a throwaway user the later modules' rows can belong to (billing reads its plan).
    warmUp: async ({ db }) => {
      const { user } = await store.findOrCreateUserByExternalId(db, `${RESERVED_EXTERNAL_ID_PREFIX}warm-up:${randomUUID()}`, undefined);
      await store.findUserById(db, user.id);
      await keyStore.usableProviderKeys(db, user.id, 'openrouter');
      return { userId: user.id, planId: user.planId };
    },
    start: async () => {
      await service.startCaches();
      await keys.startCache();
      service.startBackgroundFlush();
      keys.startBackgroundFlush();
      await service.bootstrapAdminKey((message) => {
        // Printed to stdout, not the log stream: it must be seen once, not shipped to log storage.
        process.stdout.write(`${message}\n`);
      });
    },
    close: async () => {
      await keys.close();
      await service.close();
      await service.closeCaches();
    },
  };
}
