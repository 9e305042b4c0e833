import type { Infrastructure } from '../../container.js';
import type { AppModule } from '../module.js';
import { registerIdentityRoutes } from './routes.js';
import { IdentityService } from './service.js';

export interface IdentityModule extends AppModule {
  service: IdentityService;
}

export function createIdentityModule(infrastructure: Infrastructure): IdentityModule {
  const service = new IdentityService({ config: infrastructure.config, db: infrastructure.db, logger: infrastructure.logger });
  return {
    name: 'identity',
    service,
    registerRoutes: (app) => registerIdentityRoutes(app, { identity: service }),
    start: async () => {
      service.startBackgroundFlush();
      await service.bootstrapAdminKey((message) => {
        // Printed to stdout, not the log stream: it must be seen once, not shipped to log storage.
        process.stdout.write(`${message}\n`);
      });
    },
    close: () => service.close(),
  };
}
