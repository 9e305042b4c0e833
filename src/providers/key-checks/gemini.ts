import { defaultInterpretation, type KeyCheck } from './key-check.js';

/** Gemini: `GET /v1beta/models` with `x-goog-api-key`; a bad key gets 400 `API_KEY_INVALID` (or 401/403). */
export const geminiKeyCheck: KeyCheck = {
  provider: 'gemini',
  request: (baseUrl, key) => ({ url: `${baseUrl}/v1beta/models?pageSize=1`, init: { method: 'GET', headers: { 'x-goog-api-key': key } } }),
  interpret(response) {
    if (response.status === 400 && JSON.stringify(response.body ?? '').includes('API_KEY_INVALID')) {
      return { status: 'invalid', detail: 'rejected by gemini: HTTP 400 (API_KEY_INVALID)' };
    }
    return defaultInterpretation('gemini', response);
  },
};
