/**
 * Cold start and idle memory on the embedded default, against two baselines measured in the
 * same run: a bare Node HTTP server, and Node opening PGlite with pgvector and nothing else.
 *
 *   npx tsx bench/startup.ts [--runs 3]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { projectFile } from '../src/infra/project-files.js';
import { median } from './stats.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' } } });
const runs = Number(values.runs);

interface Sample {
  readyMs: number;
  idleRssMb: number;
}

function rssMegabytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kilobytes = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return kilobytes / 1024;
}

/** Starts a process, polls `readyUrl` (or waits for a stdout marker), then samples RSS after 3 s idle. */
async function measure(command: string, args: string[], env: NodeJS.ProcessEnv, ready: { url?: string; marker?: string }): Promise<Sample> {
  const started = performance.now();
  const child = spawn(command, args, { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  try {
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (Date.now() > deadline) throw new Error(`not ready in time: ${output}`);
      if (child.exitCode !== null) throw new Error(`exited early: ${output}`);
      if (ready.marker && output.includes(ready.marker)) break;
      if (ready.url) {
        try {
          const response = await fetch(ready.url);
          if (response.ok) break;
        } catch {
          // not listening yet
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const readyMs = performance.now() - started;
    await new Promise((resolve) => setTimeout(resolve, 3000));
    return { readyMs, idleRssMb: rssMegabytes(child.pid!) };
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
  }
}

const bareServer = `require('node:http').createServer((q, s) => s.end('ok')).listen(${18_700}, '127.0.0.1', () => console.log('READY'))`;
const barePglite = `
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
const db = await PGlite.create({ dataDir: process.env.DIR, extensions: { vector } });
await db.exec('CREATE EXTENSION IF NOT EXISTS vector');
console.log('READY');
setInterval(() => {}, 1000);
`;

async function series(label: string, make: (run: number) => Promise<Sample>): Promise<{ label: string; readyMs: number; idleRssMb: number }> {
  const samples: Sample[] = [];
  for (let run = 0; run < runs; run += 1) samples.push(await make(run));
  return { label, readyMs: median(samples.map((sample) => sample.readyMs)), idleRssMb: median(samples.map((sample) => sample.idleRssMb)) };
}

async function main() {
  const { execSync } = await import('node:child_process');
  execSync('node scripts/ensure-built.mjs', { cwd: projectFile(), stdio: 'inherit' });
  const server = projectFile('dist', 'src', 'server.js');
  const scratch = mkdtempSync(path.join(tmpdir(), 'anima-bench-startup-'));
  const rows = [];
  try {
    rows.push(await series('bare Node HTTP server (baseline)', () => measure('node', ['-e', bareServer], {}, { marker: 'READY' })));
    rows.push(
      await series('Node + PGlite/pgvector, first open (baseline)', (run) =>
        measure('node', ['--input-type=module', '-e', barePglite], { DIR: path.join(scratch, `pglite-first-${run}`), NODE_PATH: projectFile('node_modules') }, { marker: 'READY' }),
      ),
    );
    rows.push(
      await series('Node + PGlite/pgvector, reopen (baseline)', () =>
        measure('node', ['--input-type=module', '-e', barePglite], { DIR: path.join(scratch, 'pglite-first-0') }, { marker: 'READY' }),
      ),
    );
    const env = (dataDir: string) => ({ DATA_DIR: dataDir, PORT: '18701', HOST: '127.0.0.1', LOG_LEVEL: 'warn', ADMIN_API_KEY: 'bench-admin-key' });
    rows.push(await series('Anima, first start (empty DATA_DIR: initdb + migrations)', (run) => measure('node', [server], env(path.join(scratch, `anima-${run}`)), { url: 'http://127.0.0.1:18701/health' })));
    rows.push(await series('Anima, restart (existing DATA_DIR)', () => measure('node', [server], env(path.join(scratch, 'anima-0')), { url: 'http://127.0.0.1:18701/health' })));
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  const pgliteFirst = rows[1]!;
  const pgliteReopen = rows[2]!;
  const lines = [
    `### Cold start and idle memory (embedded default), median of ${runs} runs`,
    '',
    '| process | ready (ms) | idle RSS (MiB) | ready vs PGlite alone | RSS vs PGlite alone |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...rows.map((row, index) => {
      const baseline = index === 4 ? pgliteReopen : pgliteFirst;
      const ratios = index >= 3 ? `${(row.readyMs / baseline.readyMs).toFixed(2)}× | ${(row.idleRssMb / baseline.idleRssMb).toFixed(2)}×` : '— | —';
      return `| ${row.label} | ${row.readyMs.toFixed(0)} | ${row.idleRssMb.toFixed(1)} | ${ratios} |`;
    }),
    '',
    'Ready = from spawn until `/health` answers 200 (Anima) or the process prints READY (baselines). Idle RSS sampled 3 s after ready.',
  ];
  console.log(lines.join('\n'));
}

await main();
