/**
 * Time to the first audio byte of a streamed spoken answer: POST /v1/tts with stream: true on the
 * real server (its own process) against the same request sent straight to the ElevenLabs fake's
 * `/v1/text-to-speech/{voice}/stream`, in one run. The fake waits a fixed latency before its first
 * byte and streams real MP3 in chunks; what Anima adds is the difference (auth, the voice registry,
 * the gateway's key, limits and credit reservation, the first upstream round trip, the relay).
 *
 *   npx tsx bench/tts-first-byte.ts [--latency 30] [--concurrency 4] [--requests 200] [--warmup 20] [--database-url postgres://…]
 */
import { startElevenLabsFake } from '../test/fakes/index.js';
import { enterpriseUsers, startBenchAnima } from './anima-setup.js';
import { buildAnima, closedLoop, closedLoopOptions } from './harness.js';
import { percentile } from './stats.js';

const { latencyMs, concurrency, requestCount, warmupCount, databaseUrl } = closedLoopOptions({ latency: '30', concurrency: '4', requests: '200', warmup: '20' });
const RACHEL = '21m00Tcm4TlvDq8ikWAM';

interface Target {
  url: string;
  headers: (worker: number) => Record<string, string>;
  body: (index: number) => unknown;
}

/** One streamed request: [ms to the first audio byte, ms to the last]. The whole body is read. */
async function once(target: Target, worker: number, index: number): Promise<[number, number]> {
  const started = performance.now();
  const response = await fetch(target.url, { method: 'POST', headers: { 'content-type': 'application/json', ...target.headers(worker) }, body: JSON.stringify(target.body(index)) });
  if (!response.ok) throw new Error(`HTTP ${response.status}: ${await response.text()}`);
  let first = Number.NaN;
  let bytes = 0;
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    if (chunk.length > 0 && Number.isNaN(first)) first = performance.now() - started;
    bytes += chunk.length;
  }
  if (bytes === 0) throw new Error('no audio');
  return [first, performance.now() - started];
}

async function run(target: Target, count: number): Promise<{ firsts: number[]; totals: number[] }> {
  const firsts: number[] = [];
  const totals: number[] = [];
  await closedLoop(concurrency, count, async (worker, index) => {
    const [first, total] = await once(target, worker, index);
    firsts.push(first);
    totals.push(total);
  });
  return { firsts, totals };
}

const format = (value: number) => value.toFixed(1);

async function main(): Promise<void> {
  buildAnima();
  const fake = await startElevenLabsFake({ streamChunkBytes: 4096, chunkDelayMs: 5 });
  fake.faults.delay(latencyMs, { route: '/stream' });
  const { server, adminKey, internalKey, stop } = await startBenchAnima('tts', {
    ELEVENLABS_BASE_URL: fake.url,
    ELEVENLABS_API_KEY: 'test-key',
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
  });
  try {
    // Metered and limited as in production: each bench user on the enterprise plan (its seconds, streams and credits suffice).
    await enterpriseUsers(server, { internalKey, adminKey }, Array.from({ length: concurrency }, (_, worker) => `bench-tts-${worker}`));
    const text = (index: number) => `Line ${index}: the tide comes in twice a day, and the lamp is lit at dusk.`;
    const direct: Target = {
      url: `${fake.url}/v1/text-to-speech/${RACHEL}/stream?output_format=mp3_44100_128`,
      headers: () => ({ 'xi-api-key': 'test-key' }),
      body: (index) => ({ text: text(index), model_id: 'eleven_multilingual_v2' }),
    };
    const throughAnima: Target = {
      url: `${server.url}/v1/tts`,
      headers: (worker) => ({ authorization: `Bearer ${internalKey}`, 'x-user-id': `bench-tts-${worker}` }),
      body: (index) => ({ text: text(index), voice: 'rachel', stream: true }),
    };
    await run(direct, warmupCount);
    await run(throughAnima, warmupCount);
    const baseline = await run(direct, requestCount);
    const product = await run(throughAnima, requestCount);
    const rows: string[] = [];
    for (const [label, pick] of [
      ['first audio byte (ms)', (result: typeof baseline) => result.firsts],
      ['whole stream (ms)', (result: typeof baseline) => result.totals],
    ] as const) {
      for (const [name, fraction] of [
        ['p50', 0.5],
        ['p99', 0.99],
      ] as const) {
        const base = percentile(pick(baseline), fraction);
        const through = percentile(pick(product), fraction);
        rows.push(`| ${label} | ${name} | ${format(base)} | ${format(through)} | ${format(through - base)} | ${(through / base).toFixed(2)}× |`);
      }
    }
    console.log('## tts-first-byte');
    console.log('');
    console.log(
      `Upstream: ElevenLabs fake, ${latencyMs} ms before its first byte, then real MP3 in 4 KiB chunks 5 ms apart. ${requestCount} streamed requests per series after ${warmupCount} warm-up, concurrency ${concurrency}. ` +
        `Server: its own process, ${databaseUrl ? 'PostgreSQL' : 'embedded storage (PGlite)'}, LOG_LEVEL=info, users on the enterprise plan (metered: credits reserved and settled, seconds counted). Direct = the same text sent straight to the fake's /stream.`,
    );
    console.log('');
    console.log('| series | statistic | direct | through Anima | overhead (ms) | ratio |');
    console.log('| --- | --- | ---: | ---: | ---: | ---: |');
    for (const row of rows) console.log(row);
    console.log('');
    const flags = `--latency ${latencyMs} --concurrency ${concurrency} --requests ${requestCount} --warmup ${warmupCount}${databaseUrl ? ' --database-url <postgres>' : ''}`;
    console.log(`Command: \`npx tsx bench/tts-first-byte.ts ${flags}\``);
  } finally {
    await stop();
    await fake.close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
