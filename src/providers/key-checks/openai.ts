import type { KeyCheck } from './key-check.js';

/** OpenAI: `GET /models` needs a key and costs nothing. */
export const openAiKeyCheck: KeyCheck = {
  provider: 'openai',
  request: (baseUrl, key) => ({ url: `${baseUrl}/models`, init: { method: 'GET', headers: { authorization: `Bearer ${key}` } } }),
};
