import type { KeyCheck } from './key-check.js';

/** OpenRouter: `GET /key` (its `/models` is public, so it proves nothing about a key). */
export const openRouterKeyCheck: KeyCheck = {
  provider: 'openrouter',
  request: (baseUrl, key) => ({ url: `${baseUrl}/key`, init: { method: 'GET', headers: { authorization: `Bearer ${key}` } } }),
};
