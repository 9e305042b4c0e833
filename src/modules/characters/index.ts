import type { Infrastructure } from '../../container.js';
import type { AppModule } from '../module.js';
import { CharactersService } from './service.js';

export { CharactersService } from './service.js';
export type { Character, CharacterBook, CharacterBookEntry, CharacterInput, CharacterPatch, CharacterViewer, InteractionStyle } from './types.js';
export { activateLorebook, type ActivatedEntry, type LorebookActivation } from './lorebook.js';
export { buildSystemPrompt, defaultTemperature, resolveModelSettings, substituteMacros, type ResolvedModelSettings } from './system-prompt.js';
export { countTokens } from './token-counter.js';

export interface CharactersModule extends AppModule {
  service: CharactersService;
}

export function createCharactersModule(infrastructure: Infrastructure): CharactersModule {
  const service = new CharactersService({
    db: infrastructure.db,
    cache: infrastructure.keyValue.cache,
    events: infrastructure.keyValue.events,
    logger: infrastructure.logger.child({ module: 'characters' }),
  });
  return {
    name: 'characters',
    service,
    start: () => service.start(),
    close: () => service.close(),
  };
}
