import { randomUUID } from 'node:crypto';
import type { Infrastructure } from '../../container.js';
import type { IdentityService } from '../identity/service.js';
import type { AppModule } from '../module.js';
import { registerCharacterRoutes } from './routes.js';
import { CharactersService } from './service.js';
import * as store from './store.js';

export { CharactersService } from './service.js';
export type { Character, CharacterBook, CharacterBookEntry, CharacterInput, CharacterPatch, CharacterViewer, InteractionStyle } from './types.js';
export { activateLorebook, type ActivatedEntry, type LorebookActivation } from './lorebook.js';
export { buildSystemPrompt, defaultTemperature, resolveModelSettings, substituteMacros, type ResolvedModelSettings } from './system-prompt.js';
export { countTokens, warmTokenCounter } from './token-counter.js';

export interface CharactersModule extends AppModule {
  service: CharactersService;
}

/**
 * The HTTP routes need the identity service (to resolve the acting user); without it the module
 * still serves the other modules through `service` but registers no routes.
 */
export function createCharactersModule(infrastructure: Infrastructure, modules: { identity?: IdentityService } = {}): CharactersModule {
  const service = new CharactersService({
    db: infrastructure.db,
    cache: infrastructure.keyValue.cache,
    events: infrastructure.keyValue.events,
    logger: infrastructure.logger.child({ module: 'characters' }),
  });
  const { identity } = modules;
  return {
    name: 'characters',
    service,
    registerRoutes: identity
      ? (app) => registerCharacterRoutes(app, { characters: service, identity, config: infrastructure.config })
      : undefined,
    // The character reads of a turn (by slug, by id) and a throwaway character for the later modules.
    warmUp: async ({ db, userId }) => {
      const slug = `warm-up-${randomUUID()}`;
      const characterId = await store.insertCharacter(db, { slug, name: 'Warm-up', ownerUserId: userId ?? null });
      await store.findCharacterBySlug(db, slug);
      await store.findCharacterById(db, characterId);
      return { characterId };
    },
    start: () => service.start(),
    close: () => service.close(),
  };
}
