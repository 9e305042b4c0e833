import type { Infrastructure } from '../../container.js';
import type { AppModule } from '../module.js';
import { ModerationPolicy } from './policy.js';
import { ModerationService } from './service.js';

export { ContentBlockedError, ModerationService, type ModerationSubject } from './service.js';
export { ModerationPolicy, type ModerationDirection, type ModerationMatch } from './policy.js';

export interface ModerationModule extends AppModule {
  service: ModerationService;
}

/** Loads the policy at start-up, so a broken policy file stops the server with its path named. */
export function createModerationModule(infrastructure: Infrastructure): ModerationModule {
  const policy = ModerationPolicy.load(infrastructure.config.moderationPolicyPath);
  const service = new ModerationService({ db: infrastructure.db, logger: infrastructure.logger.child({ module: 'moderation' }), policy });
  return { name: 'moderation', service };
}
