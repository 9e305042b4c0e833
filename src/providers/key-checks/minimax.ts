import { defaultInterpretation, type KeyCheck } from './key-check.js';

/**
 * MiniMax: `POST /v1/get_voice {"voice_type":"system"}`. It answers most errors as HTTP 200 with
 * `base_resp.status_code`: 0 valid, 1004 invalid (bad key or key/group mismatch); others give no verdict.
 */
export const miniMaxKeyCheck: KeyCheck = {
  provider: 'minimax',
  request: (baseUrl, key) => ({
    url: `${baseUrl}/v1/get_voice`,
    init: { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify({ voice_type: 'system' }) },
  }),
  interpret(response) {
    if (response.status < 200 || response.status >= 300) return defaultInterpretation('minimax', response);
    const base = (response.body as { base_resp?: { status_code?: unknown } } | undefined)?.base_resp;
    const code = typeof base?.status_code === 'number' ? base.status_code : undefined;
    if (code === 0) return { status: 'valid', detail: 'accepted by minimax' };
    if (code === 1004) return { status: 'invalid', detail: 'rejected by minimax: base_resp 1004 (authentication failed)' };
    return { status: 'unreachable', detail: `no verdict: minimax answered base_resp ${code ?? 'missing'}` };
  },
};
