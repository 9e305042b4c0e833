import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROVIDERS, type ProviderName } from '../../src/config.js';
import { VaultCipher } from '../../src/infra/crypto/vault-cipher.js';
import { plans, providerKeys } from '../../src/infra/db/schema.js';
import { AppError } from '../../src/infra/http/errors.js';
import { rejectedKeyError, VaultKeyResolver } from '../../src/modules/identity/key-resolution.js';
import * as store from '../../src/modules/identity/store.js';
import { rotateVaultKeys } from '../../src/modules/identity/vault-rotation.js';
import {
  startElevenLabsFake,
  startFalFake,
  startGeminiFake,
  startMiniMaxFake,
  startOpenAiFake,
  startOpenRouterFake,
  startStabilityFake,
  startXaiFake,
  type FakeServer,
  type MiniMaxFake,
} from '../fakes/index.js';
import { backends, startTestServer, type RequestOptions, type TestResponse, type TestServer } from '../helpers/test-server.js';

/** Realistic keys, long enough that the masked form shows the vendor prefix and last four characters. */
function makeKey(prefix: string): string {
  return `${prefix}${randomBytes(24).toString('hex')}`;
}

const USER_KEYS: Record<Exclude<ProviderName, 'kie'>, string> = {
  openrouter: makeKey('sk-or-v1-'),
  openai: makeKey('sk-proj-'),
  xai: makeKey('xai-'),
  gemini: makeKey('AIza'),
  elevenlabs: makeKey('sk_'),
  minimax: makeKey('eyJ'),
  fal: `${randomBytes(8).toString('hex')}:${randomBytes(16).toString('hex')}`,
  stability: makeKey('sk-'),
};
const SECOND_OPENROUTER_KEY = makeKey('sk-or-v1-');
const KIE_KEY = makeKey('kie-');
const PLATFORM_OPENAI_KEY = makeKey('sk-platform-');
const REJECTED_KEY = makeKey('sk-or-v1-');
const RECHECKED_KEY = makeKey('sk-or-v1-');

describe.each(backends())('BYOK vault and key resolution on %s storage', (backend) => {
  let server: TestServer;
  const fakes: Partial<Record<ProviderName, FakeServer & { settings: { validKeys: string[] } }>> = {};
  /** Every response body this file saw, except one-time API key creations, for the leak check. */
  const responseTexts: string[] = [];

  const call = async (method: string, path: string, options?: RequestOptions): Promise<TestResponse> => {
    const response = await server.request(method, path, options);
    responseTexts.push(response.text);
    return response;
  };
  const asUser = (externalId: string) => ({ 'x-user-id': externalId });
  const userByExternalId = async (externalId: string) => (await store.findUserByExternalId(server.container.db, externalId))!;

  beforeAll(async () => {
    const [openrouter, openai, xai, gemini, elevenlabs, minimax, fal, stability] = await Promise.all([
      startOpenRouterFake({ validKeys: [USER_KEYS.openrouter, SECOND_OPENROUTER_KEY] }),
      startOpenAiFake({ validKeys: [USER_KEYS.openai, PLATFORM_OPENAI_KEY] }),
      startXaiFake({ validKeys: [USER_KEYS.xai] }),
      startGeminiFake({ validKeys: [USER_KEYS.gemini] }),
      startElevenLabsFake({ validKeys: [USER_KEYS.elevenlabs] }),
      startMiniMaxFake({ validKeys: [USER_KEYS.minimax] }),
      startFalFake({ validKeys: [USER_KEYS.fal] }),
      startStabilityFake({ validKeys: [USER_KEYS.stability] }),
    ]);
    Object.assign(fakes, { openrouter, openai, xai, gemini, elevenlabs, minimax, fal, stability });
    server = await startTestServer(backend, {
      OPENROUTER_BASE_URL: openrouter.url,
      OPENAI_BASE_URL: openai.url,
      OPENAI_API_KEY: PLATFORM_OPENAI_KEY,
      XAI_BASE_URL: xai.url,
      GEMINI_BASE_URL: gemini.url,
      ELEVENLABS_BASE_URL: elevenlabs.url,
      MINIMAX_BASE_URL: minimax.url,
      FAL_BASE_URL: fal.url,
      STABILITY_BASE_URL: stability.url,
      KIE_BASE_URL: 'http://127.0.0.1:9',
      KEY_CHECK_TIMEOUT_MS: '1500',
      SETUP_URL: 'https://anima.example.com/settings/keys',
    });
    await server.container.db.insert(plans).values({ id: 'byok-only', name: 'Bring your own keys', allowsPlatformKeys: false });
  });

  afterAll(async () => {
    await server?.stop();
    await Promise.all(Object.values(fakes).map((fake) => fake.close()));
  });

  it('checks each provider key with the provider, stores it encrypted and shows it only masked', async () => {
    const user = asUser('discord:alice');
    for (const [provider, key] of Object.entries(USER_KEYS)) {
      const response = await call('POST', '/v1/me/provider-keys', { key: server.internalKey, headers: user, body: { provider, key, name: `${provider} main` } });
      expect(response.status, `${provider}: ${response.text}`).toBe(201);
      expect(response.body).toMatchObject({ provider, name: `${provider} main`, status: 'valid', active: true });
      expect(response.text).not.toContain(key);
      expect(response.body.masked).toContain('…');
      expect(response.body.masked.slice(-4)).toBe(key.slice(-4));
    }
    expect(fakes.openrouter!.lastRequest('/key')?.headers.authorization).toBe(`Bearer ${USER_KEYS.openrouter}`);
    expect(fakes.xai!.lastRequest('/api-key')).toBeDefined();
    expect(fakes.gemini!.lastRequest('/v1beta/models')?.headers['x-goog-api-key']).toBe(USER_KEYS.gemini);
    expect(fakes.elevenlabs!.lastRequest('/v1/user')?.headers['xi-api-key']).toBe(USER_KEYS.elevenlabs);
    expect(fakes.minimax!.lastRequest('/v1/get_voice')?.body).toEqual({ voice_type: 'system' });
    expect(fakes.fal!.lastRequest('/v1/models')?.headers.authorization).toBe(`Key ${USER_KEYS.fal}`);
    expect(fakes.stability!.lastRequest('/v1/user/balance')).toBeDefined();

    const kie = await call('POST', '/v1/me/provider-keys', { key: server.internalKey, headers: user, body: { provider: 'kie', key: KIE_KEY } });
    expect(kie.status).toBe(201);
    expect(kie.body).toMatchObject({ provider: 'kie', status: 'unchecked', name: 'kie key' });
    expect(kie.body.status_detail).toMatch(/no documented key-check/);

    const listed = await call('GET', '/v1/me/provider-keys', { key: server.internalKey, headers: user });
    expect(listed.status).toBe(200);
    expect(listed.body.data).toHaveLength(9);
    for (const key of [...Object.values(USER_KEYS), KIE_KEY]) expect(listed.text).not.toContain(key);

    // At rest: sealed under the configured vault key, never the key or its base64.
    const rows = await server.container.db.select().from(providerKeys);
    expect(rows).toHaveLength(9);
    for (const row of rows) {
      expect(row.encryptionKeyId).toBe(server.container.identity.cipher.currentKeyId);
      for (const key of [...Object.values(USER_KEYS), KIE_KEY]) {
        expect(row.ciphertext).not.toContain(key);
        expect(Buffer.from(row.ciphertext, 'base64').toString('latin1')).not.toContain(key);
      }
    }
  });

  it('refuses a key the provider rejects with 422 naming the field, and stores nothing', async () => {
    const user = asUser('discord:rejected');
    const attempts: Array<[ProviderName, string]> = [
      ['openrouter', REJECTED_KEY],
      ['openai', makeKey('sk-proj-')],
      ['xai', makeKey('xai-')],
      ['gemini', makeKey('AIza')],
      ['elevenlabs', makeKey('sk_')],
      ['minimax', makeKey('eyJ')],
      ['fal', 'wrong-id:wrong-secret-0123456789'],
      ['stability', makeKey('sk-')],
    ];
    for (const [provider, key] of attempts) {
      const response = await call('POST', '/v1/me/provider-keys', { key: server.internalKey, headers: user, body: { provider, key } });
      expect(response.status, `${provider}: ${response.text}`).toBe(422);
      expect(response.body).toMatchObject({ code: 'validation_failed', field: 'key', provider, reason: 'provider_key_invalid' });
      expect(response.text).not.toContain(key);
    }
    const listed = await call('GET', '/v1/me/provider-keys', { key: server.internalKey, headers: user });
    expect(listed.body.data).toEqual([]);
  });

  it('stores a key as unreachable when the provider errors or does not answer in time', async () => {
    const user = asUser('discord:unreachable');
    fakes.stability!.faults.failNext(1, 503, { route: '/v1/user/balance' });
    const failed = await call('POST', '/v1/me/provider-keys', { key: server.internalKey, headers: user, body: { provider: 'stability', key: makeKey('sk-') } });
    expect(failed.status).toBe(201);
    expect(failed.body).toMatchObject({ status: 'unreachable' });
    expect(failed.body.status_detail).toContain('503');

    // MiniMax answers HTTP 200 with a base_resp code: only 1004 means a bad key; 1002 (rate limit) gives no verdict.
    (fakes.minimax as MiniMaxFake).failWithCode(1002);
    const limited = await call('POST', '/v1/me/provider-keys', { key: server.internalKey, headers: user, body: { provider: 'minimax', key: USER_KEYS.minimax } });
    expect(limited.status).toBe(201);
    expect(limited.body).toMatchObject({ status: 'unreachable' });
    expect(limited.body.status_detail).toContain('1002');

    const removeHang = fakes.elevenlabs!.faults.hang({ route: '/v1/user' });
    const started = Date.now();
    const hung = await call('POST', '/v1/me/provider-keys', { key: server.internalKey, headers: user, body: { provider: 'elevenlabs', key: makeKey('sk_') } });
    removeHang();
    expect(hung.status).toBe(201);
    expect(hung.body).toMatchObject({ status: 'unreachable' });
    expect(hung.body.status_detail).toContain('1500 ms');
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('answers bad input with a clear 4xx', async () => {
    const headers = asUser('discord:bad-input');
    const cases: Array<[unknown, string]> = [
      [{ provider: 'acme', key: makeKey('sk-') }, 'body.provider'],
      [{ provider: 'openai', key: '' }, 'body.key'],
      [{ provider: 'openai', key: '   ' }, 'body.key'],
      [{ provider: 'openai', key: 'x'.repeat(1025) }, 'body.key'],
      [{ provider: 'openai', key: 'has a space inside' }, 'body.key'],
      [{ provider: 'openai' }, 'body.key'],
      [{ provider: 'openai', key: makeKey('sk-'), name: '' }, 'body.name'],
    ];
    for (const [body, field] of cases) {
      const response = await call('POST', '/v1/me/provider-keys', { key: server.internalKey, headers, body });
      expect(response.status, JSON.stringify(body).slice(0, 80)).toBe(422);
      expect(response.body).toMatchObject({ code: 'validation_failed', field });
    }
    const notUuid = await call('PATCH', '/v1/me/provider-keys/not-a-uuid', { key: server.internalKey, headers, body: { active: false } });
    expect(notUuid.status).toBe(422);
    const missing = await call('DELETE', `/v1/me/provider-keys/${crypto.randomUUID()}`, { key: server.internalKey, headers });
    expect(missing.status).toBe(404);
  });

  it("keeps each user's keys to that user: another user gets 404, a service key without X-User-Id sees only its own user's, an admin sees all", async () => {
    const alice = asUser('discord:alice');
    const listed = await call('GET', '/v1/me/provider-keys', { key: server.internalKey, headers: alice });
    const aliceKeyId = listed.body.data[0].id as string;

    const bob = asUser('discord:bob');
    expect((await call('GET', `/v1/me/provider-keys/${aliceKeyId}`, { key: server.internalKey, headers: bob })).status).toBe(404);
    expect((await call('PATCH', `/v1/me/provider-keys/${aliceKeyId}`, { key: server.internalKey, headers: bob, body: { active: false } })).status).toBe(404);
    expect((await call('DELETE', `/v1/me/provider-keys/${aliceKeyId}`, { key: server.internalKey, headers: bob })).status).toBe(404);
    expect((await call('GET', `/v1/me/provider-keys/${aliceKeyId}`, { key: server.internalKey, headers: alice })).body).toMatchObject({ id: aliceKeyId, active: true });

    // Bob's own user key cannot reach Alice's keys, by id or by naming her.
    const bobKey = await server.request('POST', '/v1/keys', { key: server.internalKey, headers: bob, body: { name: 'bob cli', role: 'user' } });
    expect(bobKey.status).toBe(201);
    expect((await call('GET', `/v1/me/provider-keys/${aliceKeyId}`, { key: bobKey.body.key })).status).toBe(404);
    const impersonation = await call('GET', '/v1/me/provider-keys', { key: bobKey.body.key, headers: alice });
    expect(impersonation.status).toBe(403);
    expect(impersonation.text).not.toContain(aliceKeyId);

    // Without X-User-Id a service key acts as its own user (as Shapes.inc does): it sees its own (no) keys, never Alice's.
    for (const path of ['/v1/me', '/v1/me/provider-keys', '/v1/me/provider-keys/status']) {
      const response = await call('GET', path, { key: server.internalKey });
      expect(response.status, path).toBe(200);
      expect(response.text).not.toContain(aliceKeyId);
    }
    expect((await call('GET', '/v1/me/provider-keys', { key: server.internalKey })).body.data).toEqual([]);

    const aliceUser = await userByExternalId('discord:alice');
    const adminView = await call('GET', `/v1/admin/users/${aliceUser.id}`);
    expect(adminView.status).toBe(200);
    expect(adminView.body.provider_keys.map((key: { id: string }) => key.id)).toContain(aliceKeyId);
    const notAdmin = await call('GET', `/v1/admin/users/${aliceUser.id}`, { key: server.internalKey });
    expect(notAdmin.status).toBe(403);
  });

  it('reports per provider whether calls can go ahead, honouring plans that forbid platform keys', async () => {
    const carol = asUser('discord:carol');
    const fresh = await call('GET', '/v1/me/provider-keys/status', { key: server.internalKey, headers: carol });
    expect(fresh.status).toBe(200);
    expect(Object.keys(fresh.body).sort()).toEqual([...PROVIDERS].sort());
    expect(fresh.body).toMatchObject({ openai: true, openrouter: false, elevenlabs: false, kie: false });

    const added = await call('POST', '/v1/me/provider-keys', { key: server.internalKey, headers: carol, body: { provider: 'openrouter', key: SECOND_OPENROUTER_KEY } });
    expect(added.status).toBe(201);
    expect((await call('GET', '/v1/me/provider-keys/status', { key: server.internalKey, headers: carol })).body).toMatchObject({ openrouter: true });

    const deactivated = await call('PATCH', `/v1/me/provider-keys/${added.body.id}`, { key: server.internalKey, headers: carol, body: { active: false, name: 'spare' } });
    expect(deactivated.status).toBe(200);
    expect(deactivated.body).toMatchObject({ active: false, name: 'spare' });
    expect((await call('GET', '/v1/me/provider-keys/status', { key: server.internalKey, headers: carol })).body).toMatchObject({ openrouter: false });

    const carolUser = await userByExternalId('discord:carol');
    expect((await call('PATCH', `/v1/admin/users/${carolUser.id}`, { body: { plan: 'byok-only' } })).status).toBe(200);
    expect((await call('GET', '/v1/me/provider-keys/status', { key: server.internalKey, headers: carol })).body).toMatchObject({ openai: false });
  });

  it('resolves the user key first, then the platform key the plan allows, else 402; a rejected user key is marked invalid', async () => {
    const keys = server.container.identity.keys;
    const alice = await userByExternalId('discord:alice');
    const own = await keys.resolve(alice, 'openrouter');
    expect(own).toMatchObject({ source: 'user', apiKey: USER_KEYS.openrouter, provider: 'openrouter', name: 'openrouter main' });
    expect(own.providerKeyId).toBeTruthy();

    await keys.flush();
    const afterUse = await call('GET', `/v1/me/provider-keys/${own.providerKeyId}`, { key: server.internalKey, headers: asUser('discord:alice') });
    expect(afterUse.body.last_used_at).not.toBeNull();

    // A newer validated key for the same provider is preferred.
    const second = await call('POST', '/v1/me/provider-keys', {
      key: server.internalKey,
      headers: asUser('discord:alice'),
      body: { provider: 'openrouter', key: SECOND_OPENROUTER_KEY, name: 'second' },
    });
    expect(second.status).toBe(201);
    const preferred = await keys.resolve(alice, 'openrouter');
    expect(preferred).toMatchObject({ providerKeyId: second.body.id, apiKey: SECOND_OPENROUTER_KEY });

    // The provider rejects it during a call: it is marked invalid and the next key is used.
    await keys.reportRejected(preferred, `401 Incorrect API key provided: ${SECOND_OPENROUTER_KEY}`);
    const marked = await call('GET', `/v1/me/provider-keys/${second.body.id}`, { key: server.internalKey, headers: asUser('discord:alice') });
    expect(marked.body.status).toBe('invalid');
    expect(marked.body.status_detail).toContain('rejected during a call');
    expect(marked.text).not.toContain(SECOND_OPENROUTER_KEY);
    const error = rejectedKeyError(preferred, server.container.config.setupUrl);
    expect(error).toBeInstanceOf(AppError);
    expect(error).toMatchObject({ status: 402, code: 'provider_key_required', extra: { reason: 'provider_key_invalid', provider: 'openrouter' } });
    expect(error.message).toContain('"second"');
    expect(error.message).toContain(preferred.masked);
    expect(error.message).not.toContain(SECOND_OPENROUTER_KEY);
    expect((await keys.resolve(alice, 'openrouter')).apiKey).toBe(USER_KEYS.openrouter);

    // No user key for openai → the platform key (plan free allows it); none for a provider without one → 402.
    const dave = (await server.container.identity.service.registerUser('discord:dave', 'dave')).user;
    expect(await keys.resolve(dave, 'openai')).toMatchObject({ source: 'platform', apiKey: PLATFORM_OPENAI_KEY, providerKeyId: null });
    await expect(keys.resolve(dave, 'elevenlabs')).rejects.toMatchObject({
      status: 402,
      code: 'provider_key_required',
      extra: { provider: 'elevenlabs', setup_url: 'https://anima.example.com/settings/keys' },
    });
    // A plan without platform keys → 402 even though the platform has one.
    const carol = await userByExternalId('discord:carol');
    await expect(keys.resolve(carol, 'openai')).rejects.toMatchObject({ status: 402, code: 'provider_key_required' });
  });

  it('rotates the vault key: every row re-encrypted under the new key, idempotently, and still readable', async () => {
    const { cipher } = server.container.identity;
    const newKey = randomBytes(32);
    const oldKey = Buffer.from(server.container.config.encryptionKey!, 'base64');
    const rotatedCipher = new VaultCipher(newKey, [oldKey]);
    const container = { ...server.container, identity: { ...server.container.identity, cipher: rotatedCipher } };
    const messages: string[] = [];

    const first = await rotateVaultKeys(container, (message) => messages.push(message));
    expect(first.total).toBeGreaterThan(5);
    expect(first).toMatchObject({ currentKeyId: rotatedCipher.currentKeyId, reencrypted: first.total, alreadyCurrent: 0, failed: 0 });
    const second = await rotateVaultKeys(container, () => {});
    expect(second).toMatchObject({ reencrypted: 0, alreadyCurrent: first.total, failed: 0 });

    // Only the new key is needed now.
    const resolver = new VaultKeyResolver({ ...server.container, plans: server.container.billing.service.plans, cipher: new VaultCipher(newKey) });
    const alice = await userByExternalId('discord:alice');
    expect((await resolver.resolve(alice, 'gemini')).apiKey).toBe(USER_KEYS.gemini);
    // The running server's resolver (old key only) skips rows it cannot decrypt, falling back without leaking.
    await expect(server.container.identity.keys.resolve(alice, 'gemini')).rejects.toMatchObject({ status: 402 });
    expect(cipher.canDecrypt(rotatedCipher.currentKeyId)).toBe(false);
    for (const message of messages) for (const key of Object.values(USER_KEYS)) expect(message).not.toContain(key);

    // Rotate back so later tests in this file keep working with the server's own cipher.
    const back = await rotateVaultKeys(
      { ...server.container, identity: { ...server.container.identity, cipher: new VaultCipher(oldKey, [newKey]) } },
      () => {},
    );
    expect(back.failed).toBe(0);
    expect((await server.container.identity.keys.resolve(alice, 'gemini')).apiKey).toBe(USER_KEYS.gemini);
  });

  it('re-checks a stored key with the provider: the new status is stored and answered (masked), and key resolution follows it', async () => {
    const frank = asUser('discord:frank');
    const openrouter = fakes.openrouter!;
    openrouter.settings.validKeys.push(RECHECKED_KEY);
    const added = await call('POST', '/v1/me/provider-keys', { key: server.internalKey, headers: frank, body: { provider: 'openrouter', key: RECHECKED_KEY, name: 'frank' } });
    expect(added.status).toBe(201);
    expect(added.body.status).toBe('valid');
    const keyId = added.body.id as string;
    const frankUser = await userByExternalId('discord:frank');
    const keys = server.container.identity.keys;
    // Resolved once, so the resolver holds the row in its cache.
    expect(await keys.resolve(frankUser, 'openrouter')).toMatchObject({ source: 'user', providerKeyId: keyId });

    // Still valid: re-checked with the provider (the check request carries the stored key) and stamped.
    const checksBefore = openrouter.requestsTo('/key').length;
    const again = await call('POST', `/v1/me/provider-keys/${keyId}/check`, { key: server.internalKey, headers: frank });
    expect(again.status, again.text).toBe(200);
    expect(again.body).toMatchObject({ id: keyId, status: 'valid', name: 'frank', masked: added.body.masked });
    expect(openrouter.requestsTo('/key')).toHaveLength(checksBefore + 1);
    expect(openrouter.lastRequest('/key')?.headers.authorization).toBe(`Bearer ${RECHECKED_KEY}`);
    expect(Date.parse(again.body.last_checked_at)).toBeGreaterThanOrEqual(Date.parse(added.body.last_checked_at));

    // The provider stops accepting it: the re-check stores `invalid` and calls stop using it at once.
    openrouter.settings.validKeys.splice(openrouter.settings.validKeys.indexOf(RECHECKED_KEY), 1);
    const revoked = await call('POST', `/v1/me/provider-keys/${keyId}/check`, { key: server.internalKey, headers: frank });
    expect(revoked.status, revoked.text).toBe(200);
    expect(revoked.body).toMatchObject({ id: keyId, status: 'invalid', active: true });
    expect(revoked.body.status_detail).toMatch(/^rejected by openrouter: openrouter answered HTTP 40[13]/);
    expect(revoked.text).not.toContain(RECHECKED_KEY);
    expect((await call('GET', `/v1/me/provider-keys/${keyId}`, { key: server.internalKey, headers: frank })).body.status).toBe('invalid');
    expect((await call('GET', '/v1/me/provider-keys/status', { key: server.internalKey, headers: frank })).body).toMatchObject({ openrouter: false });
    await expect(keys.resolve(frankUser, 'openrouter')).rejects.toMatchObject({ status: 402, code: 'provider_key_required' });

    // Accepted again, then the provider does not answer in time: no verdict, stored `unreachable` (and usable again).
    openrouter.settings.validKeys.push(RECHECKED_KEY);
    expect((await call('POST', `/v1/me/provider-keys/${keyId}/check`, { key: server.internalKey, headers: frank })).body.status).toBe('valid');
    const removeHang = openrouter.faults.hang({ route: '/key' });
    const unreachable = await call('POST', `/v1/me/provider-keys/${keyId}/check`, { key: server.internalKey, headers: frank });
    removeHang();
    expect(unreachable.status, unreachable.text).toBe(200);
    expect(unreachable.body).toMatchObject({ id: keyId, status: 'unreachable' });
    expect(unreachable.body.status_detail).toContain('1500 ms');
    fakes.openrouter!.faults.failNext(1, 503, { route: '/key' });
    const failing = await call('POST', `/v1/me/provider-keys/${keyId}/check`, { key: server.internalKey, headers: frank });
    expect(failing.body).toMatchObject({ status: 'unreachable' });
    expect(failing.body.status_detail).toContain('503');
    expect(await keys.resolve(frankUser, 'openrouter')).toMatchObject({ source: 'user', providerKeyId: keyId });

    // kie has no key check: `unchecked`, and nothing is called.
    const kie = await call('POST', '/v1/me/provider-keys', { key: server.internalKey, headers: frank, body: { provider: 'kie', key: makeKey('kie-') } });
    const kieChecked = await call('POST', `/v1/me/provider-keys/${kie.body.id}/check`, { key: server.internalKey, headers: frank });
    expect(kieChecked.body).toMatchObject({ status: 'unchecked', last_checked_at: null });

    // Someone else's key, an unknown id, or a malformed one: 404, 404, 422; the status stays as it was.
    const checksNow = openrouter.requestsTo('/key').length;
    const bob = await call('POST', `/v1/me/provider-keys/${keyId}/check`, { key: server.internalKey, headers: asUser('discord:bob') });
    expect(bob.status).toBe(404);
    expect(bob.text).not.toContain(added.body.masked);
    expect((await call('POST', `/v1/me/provider-keys/${crypto.randomUUID()}/check`, { key: server.internalKey, headers: frank })).status).toBe(404);
    expect((await call('POST', '/v1/me/provider-keys/not-a-uuid/check', { key: server.internalKey, headers: frank })).status).toBe(422);
    expect(openrouter.requestsTo('/key')).toHaveLength(checksNow);
    expect((await call('GET', `/v1/me/provider-keys/${keyId}`, { key: server.internalKey, headers: frank })).body.status).toBe('unreachable');
  });

  it('full flow leaks no key material into logs or responses', async () => {
    const registered = await call('POST', '/v1/users', { key: server.internalKey, body: { external_id: 'discord:erin', username: 'erin' } });
    expect(registered.status).toBe(201);
    // The one response allowed to carry a secret: the API key's creation.
    const created = await server.request('POST', '/v1/keys', { key: server.internalKey, headers: asUser('discord:erin'), body: { name: 'erin app', role: 'user' } });
    expect(created.status).toBe(201);
    const userApiKey = created.body.key as string;

    const erinKeys: Array<[ProviderName, string]> = [
      ['openrouter', USER_KEYS.openrouter],
      ['elevenlabs', USER_KEYS.elevenlabs],
      ['fal', USER_KEYS.fal],
      ['minimax', USER_KEYS.minimax],
    ];
    const ids: string[] = [];
    for (const [provider, key] of erinKeys) {
      const response = await call('POST', '/v1/me/provider-keys', { key: userApiKey, body: { provider, key } });
      expect(response.status).toBe(201);
      ids.push(response.body.id);
    }
    const erin = await userByExternalId('discord:erin');
    for (const [provider, key] of erinKeys) expect((await server.container.identity.keys.resolve(erin, provider)).apiKey).toBe(key);
    expect((await server.container.identity.keys.resolve(erin, 'openai')).source).toBe('platform');
    expect((await call('GET', '/v1/me/provider-keys', { key: userApiKey })).body.data).toHaveLength(4);
    expect((await call('GET', '/v1/me/provider-keys/status', { key: userApiKey })).body).toMatchObject({ openrouter: true, fal: true, stability: false });
    expect((await call('GET', '/v1/me', { key: userApiKey })).body).toMatchObject({ username: 'erin', identities: ['discord:erin'] });
    for (const id of ids) expect((await call('DELETE', `/v1/me/provider-keys/${id}`, { key: userApiKey })).status).toBe(204);
    expect((await call('GET', '/v1/me/provider-keys', { key: userApiKey })).body.data).toEqual([]);
    await server.container.identity.keys.flush();
    await server.container.identity.service.flushActivity();

    const secrets = [
      ...Object.values(USER_KEYS),
      SECOND_OPENROUTER_KEY,
      KIE_KEY,
      REJECTED_KEY,
      RECHECKED_KEY,
      PLATFORM_OPENAI_KEY,
      userApiKey,
      server.adminKey,
      server.internalKey,
      server.container.config.encryptionKey!,
    ];
    expect(server.logs.length).toBeGreaterThan(20);
    const allLogs = server.logs.join('\n');
    for (const secret of secrets) {
      expect(allLogs.includes(secret), `a secret ending …${secret.slice(-4)} is in the logs`).toBe(false);
      for (const text of responseTexts) expect(text.includes(secret), `a secret ending …${secret.slice(-4)} is in a response`).toBe(false);
    }
  });
});
