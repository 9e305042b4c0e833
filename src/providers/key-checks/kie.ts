import type { KeyCheck } from './key-check.js';

/** kie.ai documents no key-check endpoint, so its keys are stored `unchecked`. */
export const kieKeyCheck: KeyCheck = {
  provider: 'kie',
  request: () => undefined,
};
