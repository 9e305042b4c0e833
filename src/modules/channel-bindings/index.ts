import type { Infrastructure } from '../../container.js';
import type { CharactersModule } from '../characters/index.js';
import type { IdentityModule } from '../identity/index.js';
import type { AppModule } from '../module.js';
import { registerChannelBindingRoutes } from './routes.js';
import { ChannelBindingsService } from './service.js';

export { ChannelBindingsService, type ChannelBinding, type BindingScope } from './service.js';

export interface ChannelBindingsModule extends AppModule {
  service: ChannelBindingsService;
}

export function createChannelBindingsModule(infrastructure: Infrastructure & { identity: IdentityModule; characters: CharactersModule }): ChannelBindingsModule {
  const service = new ChannelBindingsService({ db: infrastructure.db, characters: infrastructure.characters.service });
  return {
    name: 'channel-bindings',
    service,
    registerRoutes: (app) => registerChannelBindingRoutes(app, { bindings: service, identity: infrastructure.identity.service }),
  };
}
