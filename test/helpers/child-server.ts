import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import path from 'node:path';
import { projectFile } from '../../src/infra/project-files.js';

export interface ChildServer {
  process: ChildProcess;
  url: string;
  stdout: () => string;
  stderr: () => string;
  /** Sends SIGTERM and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Children run the esbuild bundle (`dist/src/<entry>.js`) that test/helpers/global-setup.ts builds once
 * per run from the current sources: what `npm start` runs, and a quarter of the CPU of `tsx`
 * transpiling every module in every child (measured: 1.9 s against 7.6 s of CPU per CLI call).
 */
export function childCommand(entry: string, checkout?: string): [string, string[]] {
  const relative = entry.replace(/\.ts$/, '.js');
  const built = checkout ? path.join(checkout, 'dist', relative) : projectFile('dist', relative);
  // CHILD_NODE_ARGS adds Node flags to every child, e.g. '--cpu-prof --cpu-prof-dir=/tmp/anima-prof' to profile a benchmark's server.
  const extra = process.env.CHILD_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  // Tests keep source maps (a failing child's stack points into src/); benchmarks set CHILD_SOURCE_MAPS=0
  // (bench/harness.ts) and run the bundle as `npm start` does, without the source maps' text on the heap.
  const sourceMaps = process.env.CHILD_SOURCE_MAPS === '0' ? [] : ['--enable-source-maps'];
  return [process.execPath, [...extra, ...sourceMaps, built]];
}

/** Environment for a child server: nothing inherited that could point it at another database. */
export function childEnvironment(env: Record<string, string>): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'test', HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', ...env };
}

/** Runs an entry point (src/server.ts by default) as its own process and waits until it listens. */
/** `checkout`: another checkout of Anima whose bundle to run (bench/turn-ab.ts), this one's by default. */
export function startChildServer(env: Record<string, string>, entry = 'src/server.ts', timeoutMs = 30_000, checkout?: string): Promise<ChildServer> {
  const [command, commandArgs] = childCommand(entry, checkout);
  const child = spawn(command, commandArgs, { env: childEnvironment(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  // CHILD_STDOUT_FILE also appends every child's stdout to a file, e.g. V8's lines under CHILD_NODE_ARGS='--trace-gc-nvp' for bench/gc-report.ts.
  const stdoutFile = process.env.CHILD_STDOUT_FILE;
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    if (stdoutFile) appendFileSync(stdoutFile, chunk);
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server did not start in time.\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    const onData = () => {
      const match = /"url":"(http:\/\/[^"]+)".*"msg":"Anima is listening"/.exec(stdout);
      if (!match) return;
      clearTimeout(timer);
      child.stdout.off('data', onData);
      resolve({
        process: child,
        url: match[1]!,
        stdout: () => stdout,
        stderr: () => stderr,
        stop: async (signal = 'SIGTERM') => {
          if (child.exitCode === null) child.kill(signal);
          return exited;
        },
      });
    };
    child.stdout.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening.\nstdout: ${stdout}\nstderr: ${stderr}`));
    });
  });
}

/** Runs an entry point to completion and returns its exit code and output. */
export function runChild(env: Record<string, string>, entry: string, args: string[] = [], timeoutMs = 30_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const [command, commandArgs] = childCommand(entry);
  const child = spawn(command, [...commandArgs, ...args], { env: childEnvironment(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    // 'close', not 'exit': the output is complete only once the child's pipes have closed.
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
