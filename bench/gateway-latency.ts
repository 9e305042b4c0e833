/**
 * What the metered gateway adds to a provider call (issue 9). In one process, on the product's own
 * container (embedded storage, and PostgreSQL + Redis when a database URL is given), the same chat
 * adapter (OpenRouter's, against the loopback OpenRouter fake answering at once) is called:
 *   (a) directly, with the platform key (the baseline), and
 *   (b) through ProviderGateway.begin → adapter.complete → lease.settle, platform-paid: key
 *       resolution, plan, limits, a credit reservation, the settle and the usage record.
 * Calls alternate (a, b, a, b …) one at a time, so machine load hits both alike; p50/p99 of each
 * and their difference are reported.
 *
 *   npx tsx bench/gateway-latency.ts [--calls 300] [--warmup 30] [--database-url postgres://…]
 *
 * The database URL defaults to BENCH_DATABASE_URL, then TEST_DATABASE_URL (embedded runs always).
 */
import { parseArgs } from 'node:util';
import type { ChatRequest } from '../src/providers/chat/chat-model.js';
import { startOpenRouterFake } from '../test/fakes/index.js';
import { startTestServer, type Backend } from '../test/helpers/test-server.js';
import { VENDOR_KEEP_ALIVE_MS } from './harness.js';
import { percentile } from './stats.js';

const { values } = parseArgs({
  options: {
    calls: { type: 'string', default: '300' },
    warmup: { type: 'string', default: '30' },
    'database-url': { type: 'string' },
  },
});
const CALLS = Number(values.calls);
const WARMUP = Number(values.warmup);
const databaseUrl = values['database-url'] ?? process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL;
const MODEL = 'openai/gpt-4o-mini';

interface Row {
  backend: Backend;
  direct: number[];
  gateway: number[];
}

async function measure(backend: Backend): Promise<Row> {
  const openrouter = await startOpenRouterFake({ validKeys: ['platform-key'], reply: 'A short answer.', keepAliveMs: VENDOR_KEEP_ALIVE_MS });
  if (backend === 'postgres') process.env.TEST_DATABASE_URL = databaseUrl;
  const server = await startTestServer(backend, {
    OPENROUTER_BASE_URL: openrouter.url,
    OPENROUTER_API_KEY: 'platform-key',
    RATE_LIMITS_ENABLED: 'true',
    UPSTREAM_MAX_RETRIES: '0',
    LOG_LEVEL: 'warn',
  });
  try {
    const { container } = server;
    const { user: registered } = await container.identity.service.registerUser('bench-gateway', 'bench');
    await container.identity.service.updateUser(registered.id, { plan: 'enterprise' });
    const user = (await container.identity.service.findUser(registered.id))!;
    await container.billing.service.wallet(user);
    await container.billing.service.grant({ userId: user.id, amountMicro: 1_000_000_000_000, kind: 'grant', idempotencyKey: 'bench-gateway-funds' });
    const request = (index: number): ChatRequest => ({ model: MODEL, messages: [{ role: 'user', content: `Say something short, please (${index}).` }], maxTokens: 200 });

    // The key the gateway resolves for this user (the platform's) is the one the direct calls use.
    const probe = await container.gateway.begin({ modality: 'chat', provider: 'openrouter', service: 'chat', user, model: MODEL, estimate: { promptTokens: 20, maxCompletionTokens: 200 } });
    const key = probe.key;
    const adapter = probe.adapter;
    await probe.fail(new Error('probe only'));

    const direct = async (index: number): Promise<number> => {
      const started = performance.now();
      await adapter.complete(request(index), key);
      return performance.now() - started;
    };
    const gated = async (index: number): Promise<number> => {
      const started = performance.now();
      const lease = await container.gateway.begin({ modality: 'chat', provider: 'openrouter', service: 'chat', user, model: MODEL, estimate: { promptTokens: 20, maxCompletionTokens: 200 }, requestId: `bench-${index}` });
      let answer;
      try {
        answer = await lease.adapter.complete(request(index), lease.key);
      } catch (error) {
        throw await lease.fail(error);
      }
      await lease.settle({ model: answer.model, promptTokens: answer.usage.promptTokens, completionTokens: answer.usage.completionTokens, providerCostUsd: answer.usage.costUsd });
      return performance.now() - started;
    };

    for (let index = 0; index < WARMUP; index += 1) {
      await direct(index);
      await gated(index);
    }
    const row: Row = { backend, direct: [], gateway: [] };
    for (let index = 0; index < CALLS; index += 1) {
      row.direct.push(await direct(index));
      row.gateway.push(await gated(index));
    }
    const check = await container.billing.service.checkLedger();
    if (check.mismatches.length > 0) throw new Error(`ledger mismatches after the run: ${JSON.stringify(check.mismatches)}`);
    return row;
  } finally {
    await server.stop();
    await openrouter.close();
  }
}

const rows: Row[] = [await measure('embedded')];
if (databaseUrl) rows.push(await measure('postgres'));

const ms = (value: number) => value.toFixed(2);
const lines = [
  '## gateway-latency: what the metered gateway adds to a provider call',
  '',
  `${CALLS} non-streamed chat calls per path (after ${WARMUP} warm-up pairs), one at a time, direct and gateway alternating; platform-paid user on the enterprise plan; the OpenRouter fake answers at once.`,
  '',
  '| storage | direct p50 | gateway p50 | added p50 | direct p99 | gateway p99 | added p99 |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
];
for (const row of rows) {
  const [d50, g50, d99, g99] = [percentile(row.direct, 0.5), percentile(row.gateway, 0.5), percentile(row.direct, 0.99), percentile(row.gateway, 0.99)];
  lines.push(`| ${row.backend === 'embedded' ? 'embedded (PGlite)' : process.env.TEST_REDIS_URL ? 'PostgreSQL + Redis' : 'PostgreSQL'} | ${ms(d50)} ms | ${ms(g50)} ms | +${ms(g50 - d50)} ms | ${ms(d99)} ms | ${ms(g99)} ms | +${ms(g99 - d99)} ms |`);
}
if (!databaseUrl) lines.push('', 'PostgreSQL not measured: no --database-url, BENCH_DATABASE_URL or TEST_DATABASE_URL.');
console.log(lines.join('\n'));
process.exit(0);
