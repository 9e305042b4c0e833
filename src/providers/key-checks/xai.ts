import { defaultInterpretation, type KeyCheck } from './key-check.js';

/** xAI: `GET /api-key` (relative to the base URL, which ends in /v1); a bad key gets 400, not 401. */
export const xaiKeyCheck: KeyCheck = {
  provider: 'xai',
  request: (baseUrl, key) => ({ url: `${baseUrl}/api-key`, init: { method: 'GET', headers: { authorization: `Bearer ${key}` } } }),
  interpret(response) {
    if (response.status === 400) return { status: 'invalid', detail: 'rejected by xai: HTTP 400' };
    if (response.status >= 200 && response.status < 300 && response.body && typeof response.body === 'object') {
      const info = response.body as Record<string, unknown>;
      if (info.api_key_blocked === true || info.api_key_disabled === true || info.team_blocked === true) {
        return { status: 'invalid', detail: 'xai reports this key as blocked or disabled' };
      }
    }
    return defaultInterpretation('xai', response);
  },
};
