import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../config.js';
import { VaultCipher } from '../../infra/crypto/vault-cipher.js';
import { openDatabase, type DatabaseHandle } from '../../infra/db/database.js';
import { providerKeys, usageEvents, users } from '../../infra/db/schema.js';
import { AppError, InsufficientCreditsError } from '../../infra/http/errors.js';
import { contractErrorForProviderFailure } from '../../infra/http/provider-failure.js';
import type { ChatModelProvider, ChatRequest } from '../../providers/chat/chat-model.js';
import { ProviderCallError } from '../../providers/chat/provider-error.js';
import { PlanCatalog } from '../billing/plan-catalog.js';
import { VaultKeyResolver } from '../identity/key-resolution.js';
import { providerKeyAssociatedData } from '../identity/provider-keys.js';
import type { UserRow } from '../identity/store.js';
import { UsageRecorder } from '../usage/usage-recorder.js';
import type { Authorization, AuthorizationRequest, BillingPort } from './billing-port.js';
import { ProviderGateway } from './gateway.js';
import { ProviderRegistry } from './registry.js';

/** Billing that records what it was asked, charges a fixed amount, and can refuse. */
class FakeBilling implements BillingPort {
  readonly requests: AuthorizationRequest[] = [];
  readonly settled: Array<{ costUsd: number; promptTokens?: number }> = [];
  readonly released: string[] = [];
  refuseWith: Error | undefined;
  creditsPerSettle = 1_234;

  async authorize(request: AuthorizationRequest): Promise<Authorization> {
    this.requests.push(request);
    if (this.refuseWith) throw this.refuseWith;
    return {
      settle: async (usage) => {
        this.settled.push(usage);
        return { creditsMicro: this.creditsPerSettle };
      },
      release: async (reason) => {
        this.released.push(reason);
      },
    };
  }
}

/** A chat adapter that answers or fails as told, and remembers the keys it was given. */
class FakeChat implements ChatModelProvider {
  readonly keysSeen: string[] = [];
  failWith: Error | undefined;

  async complete(request: ChatRequest, key: { apiKey: string }) {
    this.keysSeen.push(key.apiKey);
    if (this.failWith) throw this.failWith;
    return { text: 'hello', finishReason: 'stop', model: request.model, usage: { promptTokens: 12, completionTokens: 3 } };
  }

  // eslint-disable-next-line require-yield -- not used by these tests
  async *stream(): AsyncIterable<never> {
    throw new Error('not used');
  }
}

describe('ProviderGateway', () => {
  let dataDir: string;
  let database: DatabaseHandle;
  let billing: FakeBilling;
  let chat: FakeChat;
  let gateway: ProviderGateway;
  let cipher: VaultCipher;
  let user: UserRow;

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'anima-gateway-'));
    const logger = pino({ level: 'silent' });
    database = await openDatabase({ databaseUrl: undefined, dataDir, logger });
    const config = loadConfig({ NODE_ENV: 'test', DATA_DIR: dataDir, OPENROUTER_API_KEY: 'platform-openrouter-key' });
    cipher = new VaultCipher(randomBytes(32));
    const keys = new VaultKeyResolver({ config, db: database.db, cipher, logger, plans: new PlanCatalog({ db: database.db }) });
    billing = new FakeBilling();
    chat = new FakeChat();
    const registry = new ProviderRegistry().register('chat', 'openrouter', chat);
    gateway = new ProviderGateway({ config, logger, keys, registry, billing, usage: new UsageRecorder({ db: database.db, logger }) });
    [user] = (await database.db.insert(users).values({ username: 'gateway-test' }).returning()) as [UserRow];
  }, 120_000);

  afterAll(async () => {
    await database?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  beforeEach(() => {
    billing.requests.length = 0;
    billing.settled.length = 0;
    billing.released.length = 0;
    billing.refuseWith = undefined;
    chat.failWith = undefined;
  });

  const usageRows = (requestId: string) => database.db.select().from(usageEvents).where(eq(usageEvents.requestId, requestId));

  async function addUserKey(secret: string): Promise<string> {
    const id = randomUUID();
    const sealed = cipher.encrypt(secret, providerKeyAssociatedData(id));
    await database.db.insert(providerKeys).values({ id, userId: user.id, provider: 'openrouter', name: 'mine', ciphertext: sealed.ciphertext, encryptionKeyId: sealed.keyId, masked: 'sk-…mine', status: 'valid' });
    return id;
  }

  it('authorizes with the estimate, hands out the adapter bound to the key, and settle records usage once with the credits charged', async () => {
    const requestId = `req-${randomUUID()}`;
    const answer = await gateway.call(
      { modality: 'chat', provider: 'openrouter', service: 'chat', user: undefined, model: 'm', estimate: { promptTokens: 12, maxCompletionTokens: 100 }, requestId, concurrent: true },
      async (adapter, key) => {
        const result = await adapter.complete({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }, key);
        return { result: result.text, usage: { model: result.model, promptTokens: result.usage.promptTokens, completionTokens: result.usage.completionTokens } };
      },
    );
    expect(answer).toBe('hello');
    expect(chat.keysSeen.at(-1)).toBe('platform-openrouter-key');
    expect(billing.requests).toHaveLength(1);
    expect(billing.requests[0]).toMatchObject({ service: 'chat', provider: 'openrouter', paidBy: 'platform', concurrent: true, estimate: { promptTokens: 12, maxCompletionTokens: 100 } });
    expect(billing.settled).toHaveLength(1);
    expect(billing.settled[0]).toMatchObject({ promptTokens: 12, completionTokens: 3 });
    const rows = await usageRows(requestId);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ service: 'chat', provider: 'openrouter', promptTokens: 12, completionTokens: 3, creditsMicro: 1_234, paidBy: 'platform' });
  });

  it('makes a second settle or fail of a lease a no-op: one charge, one usage row', async () => {
    const requestId = `req-${randomUUID()}`;
    const lease = await gateway.begin({ modality: 'chat', provider: 'openrouter', service: 'memory', user: undefined, estimate: {}, requestId });
    expect(await lease.settle({ model: 'm', promptTokens: 5, completionTokens: 5 })).toEqual({ creditsMicro: 1_234 });
    expect(await lease.settle({ model: 'm', promptTokens: 5, completionTokens: 5 })).toEqual({ creditsMicro: 0 });
    const late = new Error('late');
    expect(await lease.fail(late)).toBe(late);
    expect(billing.settled).toHaveLength(1);
    expect(billing.released).toHaveLength(0);
    expect(await usageRows(requestId)).toHaveLength(1);
  });

  it('fail releases the reservation, reports a rejected user key (marked invalid) and answers 402 provider_key_invalid; nothing is recorded', async () => {
    const keyId = await addUserKey('sk-or-user-secret-0001');
    const requestId = `req-${randomUUID()}`;
    chat.failWith = new ProviderCallError('openrouter', 'rejected_key', 'openrouter rejected sk-or-user-secret-0001', { upstreamStatus: 401 });
    const failure = await gateway
      .call({ modality: 'chat', provider: 'openrouter', service: 'chat', user, estimate: { promptTokens: 1 }, requestId }, async (adapter, key) => {
        await adapter.complete({ model: 'm', messages: [] }, key);
        return { result: undefined, usage: {} };
      })
      .catch((error: unknown) => error);
    expect(chat.keysSeen.at(-1)).toBe('sk-or-user-secret-0001');
    expect(billing.requests.at(-1)).toMatchObject({ paidBy: 'user' });
    expect(failure).toBeInstanceOf(AppError);
    expect(failure).toMatchObject({ status: 402, code: 'provider_key_required', extra: { reason: 'provider_key_invalid', provider_key_id: keyId } });
    expect(billing.released).toHaveLength(1);
    expect(billing.settled).toHaveLength(0);
    const [row] = await database.db.select().from(providerKeys).where(eq(providerKeys.id, keyId));
    expect(row?.status).toBe('invalid');
    // The vendor's message quoted the key: what is stored names it masked only.
    expect(row?.statusDetail).not.toContain('sk-or-user-secret-0001');
    expect(await usageRows(requestId)).toHaveLength(0);
    await database.db.delete(providerKeys).where(eq(providerKeys.id, keyId));
  });

  it('fail passes other provider failures through unchanged (the HTTP layer maps their kind), after releasing', async () => {
    const lease = await gateway.begin({ modality: 'chat', provider: 'openrouter', service: 'chat', user: undefined, estimate: {} });
    const upstream = new ProviderCallError('openrouter', 'timeout', 'too slow');
    const returned = await lease.fail(upstream);
    expect(returned).toBe(upstream);
    expect(contractErrorForProviderFailure(upstream)).toMatchObject({ status: 504, code: 'upstream_timeout' });
    expect(billing.released).toEqual(['too slow']);
    expect(await lease.fail(new Error('again'))).toBeInstanceOf(Error);
    expect(billing.released).toHaveLength(1);
  });

  it('answers 422 for a modality or provider with no adapter, before any key or billing question', async () => {
    const noProvider = await gateway.begin({ modality: 'chat', provider: 'xai', service: 'chat', user, estimate: {} }).catch((error: unknown) => error);
    expect(noProvider).toMatchObject({ status: 422, code: 'validation_failed' });
    const noModality = await gateway.begin({ modality: 'vision', provider: 'openrouter', service: 'vision', user, estimate: {} }).catch((error: unknown) => error);
    expect(noModality).toMatchObject({ status: 422, code: 'validation_failed' });
    expect(billing.requests).toHaveLength(0);
  });

  it('never calls the adapter when billing refuses, and records nothing', async () => {
    const requestId = `req-${randomUUID()}`;
    billing.refuseWith = new InsufficientCreditsError();
    const calls = chat.keysSeen.length;
    const refused = await gateway
      .call({ modality: 'chat', provider: 'openrouter', service: 'chat', user: undefined, estimate: { promptTokens: 10 }, requestId }, async (adapter, key) => {
        await adapter.complete({ model: 'm', messages: [] }, key);
        return { result: undefined, usage: {} };
      })
      .catch((error: unknown) => error);
    expect(refused).toMatchObject({ status: 402, code: 'insufficient_credits' });
    expect(chat.keysSeen.length).toBe(calls);
    expect(await usageRows(requestId)).toHaveLength(0);
  });
});
