/**
 * `npm run bench`: runs every benchmark in turn and writes the combined markdown to
 * bench/results/latest.md (docs/benchmarks.md quotes it). `npm run bench -- startup chat-overhead`
 * runs only the named ones.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { projectFile } from '../src/infra/project-files.js';

const ALL = ['startup', 'first-turn', 'chat-overhead', 'turn-rate', 'turn-statements', 'hot-path', 'memory-scale', 'tts-first-byte', 'ledger', 'gateway-latency'];
const selected = process.argv.slice(2).filter((argument) => !argument.startsWith('-'));
const names = selected.length > 0 ? selected : ALL;
const sections: string[] = [`# Benchmark run ${new Date().toISOString()}`, '', `Machine: ${process.platform} ${process.arch}, Node ${process.version}`, ''];
let failed = false;

for (const name of names) {
  const script = projectFile('bench', `${name}.ts`);
  if (!existsSync(script)) {
    console.error(`no benchmark named ${name}`);
    failed = true;
    continue;
  }
  console.error(`\n== ${name}`);
  const result = spawnSync(projectFile('node_modules', '.bin', 'tsx'), [script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], env: process.env });
  process.stdout.write(result.stdout);
  if (result.status !== 0) {
    failed = true;
    sections.push(`## ${name}: FAILED (exit ${result.status})`, '');
  } else {
    sections.push(result.stdout.trim(), '');
  }
}
mkdirSync(projectFile('bench', 'results'), { recursive: true });
writeFileSync(projectFile('bench', 'results', 'latest.md'), sections.join('\n'));
process.exit(failed ? 1 : 0);
