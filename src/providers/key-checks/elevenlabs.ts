import type { KeyCheck } from './key-check.js';

/** ElevenLabs: `GET /v1/user` with `xi-api-key`: 200 valid, 401 invalid. */
export const elevenLabsKeyCheck: KeyCheck = {
  provider: 'elevenlabs',
  request: (baseUrl, key) => ({ url: `${baseUrl}/v1/user`, init: { method: 'GET', headers: { 'xi-api-key': key } } }),
};
