import type { KeyCheck } from './key-check.js';

/** fal: `GET /v1/models?limit=1` with `Authorization: Key <id:secret>` (fal documents no dedicated check). */
export const falKeyCheck: KeyCheck = {
  provider: 'fal',
  request: (baseUrl, key) => ({ url: `${baseUrl}/v1/models?limit=1`, init: { method: 'GET', headers: { authorization: `Key ${key}` } } }),
};
