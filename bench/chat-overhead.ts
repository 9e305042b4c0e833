/**
 * What the conversation engine adds to a chat turn. The OpenRouter fake answers after a fixed
 * latency; at a fixed concurrency we measure, in the same run:
 *   (a) the fake called directly with the same request shape (the baseline), and
 *   (b) POST /v1/chat/completions on the real server (embedded storage, its own process),
 * non-streamed (whole request) and streamed (time to first token). Overhead = (b) − (a).
 *
 *   npx tsx bench/chat-overhead.ts [--latency 20] [--concurrency 8] [--requests 400] [--warmup 40] [--database-url postgres://…] [--card short|long] [--memories 0]
 *
 * Memory formation is deferred (MEMORY_FORMATION_DELAY_MS) so background jobs do not share the
 * measured window; recall, history loading, tokenization, moderation, storage and metering are in.
 */
import { startOpenRouterFake } from '../test/fakes/index.js';
import { benchCharacter, benchMemories, enterpriseUsers, startBenchAnima } from './anima-setup.js';
import { buildAnima, closedLoop, closedLoopOptions, VENDOR_KEEP_ALIVE_MS } from './harness.js';
import { percentile } from './stats.js';

const { latencyMs, concurrency, requestCount, warmupCount, databaseUrl, card, memories } = closedLoopOptions({ latency: '20', concurrency: '8', requests: '400', warmup: '40' });

interface Target {
  url: string;
  headers: (worker: number) => Record<string, string>;
  body: (index: number, stream: boolean) => unknown;
}

/** Sends one request; resolves with [total ms, time-to-first-content ms]. */
async function once(target: Target, worker: number, index: number, stream: boolean): Promise<[number, number]> {
  const started = performance.now();
  const response = await fetch(target.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...target.headers(worker) },
    body: JSON.stringify(target.body(index, stream)),
  });
  if (!response.ok) throw new Error(`HTTP ${response.status}: ${await response.text()}`);
  if (!stream) {
    await response.json();
    const elapsed = performance.now() - started;
    return [elapsed, elapsed];
  }
  let firstContent = Number.NaN;
  const decoder = new TextDecoder();
  let buffered = '';
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    buffered += decoder.decode(chunk, { stream: true });
    if (Number.isNaN(firstContent) && /"content":"[^"]/.test(buffered)) firstContent = performance.now() - started;
  }
  return [performance.now() - started, firstContent];
}

async function run(target: Target, count: number, stream: boolean): Promise<{ totals: number[]; firsts: number[]; wallMs: number }> {
  const totals: number[] = [];
  const firsts: number[] = [];
  const { wallMs } = await closedLoop(concurrency, count, async (worker, index) => {
    const [total, first] = await once(target, worker, index, stream);
    totals.push(total);
    firsts.push(first);
  });
  return { totals, firsts, wallMs };
}

const format = (value: number) => value.toFixed(1);

async function main(): Promise<void> {
  buildAnima();
  const fake = await startOpenRouterFake({ reply: 'The moon is a loyal companion; it never leaves.', keepAliveMs: VENDOR_KEEP_ALIVE_MS });
  fake.faults.delay(latencyMs, { route: '/chat/completions' });
  const { server, adminKey, internalKey, stop } = await startBenchAnima('chat', {
    OPENROUTER_BASE_URL: fake.url,
    OPENROUTER_API_KEY: 'test-key',
    MEMORY_FORMATION_DELAY_MS: '600000',
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
  });
  try {
    await benchCharacter(server, adminKey, { card });

    // Turns stay metered and limited (credits reserved and settled, requests counted): each bench user is
    // on the enterprise plan, whose per-minute limit and daily credits this run stays within.
    await enterpriseUsers(server, { internalKey, adminKey }, Array.from({ length: concurrency }, (_, worker) => `bench-user-${worker}`));
    await benchMemories(server, { internalKey, adminKey }, Array.from({ length: concurrency }, (_, worker) => `bench-user-${worker}`), memories);

    const question = (index: number) => `Question ${index}: what is the moon made of?`;
    const direct: Target = {
      url: `${fake.url}/chat/completions`,
      headers: () => ({ authorization: 'Bearer test-key' }),
      body: (index, stream) => ({ model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: question(index) }], stream }),
    };
    const throughServer: Target = {
      url: `${server.url}/v1/chat/completions`,
      // One end user per worker, so each conversation's history grows as a real one would.
      headers: (worker) => ({ authorization: `Bearer ${internalKey}`, 'x-user-id': `bench-user-${worker}` }),
      body: (index, stream) => ({ model: 'character/bench', messages: [{ role: 'user', content: question(index) }], stream }),
    };

    const rows: string[] = [];
    const measure = async (label: string, stream: boolean) => {
      await run(direct, warmupCount, stream);
      await run(throughServer, warmupCount, stream);
      const baseline = await run(direct, requestCount, stream);
      const product = await run(throughServer, requestCount, stream);
      const pick = (result: typeof baseline) => (stream ? result.firsts : result.totals);
      for (const [name, fraction] of [
        ['p50', 0.5],
        ['p99', 0.99],
      ] as const) {
        const base = percentile(pick(baseline), fraction);
        const through = percentile(pick(product), fraction);
        rows.push(`| ${label} | ${name} | ${format(base)} | ${format(through)} | ${format(through - base)} | ${(through / base).toFixed(2)}× |`);
      }
      rows.push(`| ${label} | throughput (req/s) | ${format((requestCount / baseline.wallMs) * 1000)} | ${format((requestCount / product.wallMs) * 1000)} | | |`);
    };
    await measure('non-streamed: whole request (ms)', false);
    await measure('streamed: time to first token (ms)', true);

    console.log('## chat-overhead');
    console.log('');
    console.log(
      `Upstream: OpenRouter fake with ${latencyMs} ms latency before the first byte. ${requestCount} requests per series after ${warmupCount} warm-up, concurrency ${concurrency}. ` +
        `Server: its own process, ${databaseUrl ? 'PostgreSQL' : 'embedded storage (PGlite)'}, in-process queue, LOG_LEVEL=info. Character card: ${card === 'long' ? 'long (≈ 1,600 tokens, the size of a real Character Card)' : 'short (one line)'}; ${memories > 0 ? `${memories} memories per user and ${Math.max(1, Math.floor(memories / 2))} core ones` : 'no memories'}. Direct = the same request shape sent straight to the fake.`,
    );
    console.log('');
    console.log('| series | statistic | direct | through Anima | overhead (ms) | ratio |');
    console.log('| --- | --- | ---: | ---: | ---: | ---: |');
    for (const row of rows) console.log(row);
    console.log('');
    console.log(`Command: \`npx tsx bench/chat-overhead.ts${databaseUrl ? ' --database-url <postgres>' : ''}${card === 'long' ? ' --card long' : ''}${memories > 0 ? ` --memories ${memories}` : ''}\``);
  } finally {
    await stop();
    await fake.close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
