import type { KeyCheck } from './key-check.js';

/** Stability: `GET /v1/user/balance` with Bearer auth: 200 valid, 401 invalid. */
export const stabilityKeyCheck: KeyCheck = {
  provider: 'stability',
  request: (baseUrl, key) => ({ url: `${baseUrl}/v1/user/balance`, init: { method: 'GET', headers: { authorization: `Bearer ${key}` } } }),
};
