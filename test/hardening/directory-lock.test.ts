import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { acquireDirectoryLock, DirectoryLockedError } from '../../src/infra/db/directory-lock.js';
import { projectFile } from '../../src/infra/project-files.js';

// node itself (not the tsx CLI, which runs node as a child) so that the killed process is the holder.
const NODE = [process.execPath, '--import', 'tsx'];
const HOLDER = projectFile('test', 'hardening', 'lock-holder.ts');

/** Starts a lock holder (optionally as PID 1 of a new PID namespace) and waits for its first line. */
function startHolder(lockPath: string, inNamespace: boolean): Promise<{ child: ChildProcess; line: string }> {
  const command = inNamespace ? 'unshare' : NODE[0]!;
  const args = inNamespace ? ['--pid', '--fork', '--kill-child', '--mount-proc', ...NODE, HOLDER, lockPath] : [...NODE.slice(1), HOLDER, lockPath];
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: projectFile() });
  return new Promise((resolve, reject) => {
    let output = '';
    let errors = '';
    child.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()));
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const line = output.split('\n')[0];
      if (output.includes('\n') && line) resolve({ child, line });
    });
    child.once('exit', (code) => {
      if (!output.includes('\n')) reject(new Error(`holder exited with ${code}: ${errors}`));
    });
  });
}

function killed(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

const unshareWorks = spawnSync('unshare', ['--pid', '--fork', '--mount-proc', 'true']).status === 0;

describe('the embedded database lock', { timeout: 120_000 }, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'anima-lock-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses a second holder while the first lives, naming its PID, and is free again after release', async () => {
    const lockPath = path.join(dir, 'a.sock');
    const first = await acquireDirectoryLock(lockPath, 'the test directory');
    const second = acquireDirectoryLock(lockPath, 'the test directory');
    await expect(second).rejects.toBeInstanceOf(DirectoryLockedError);
    await expect(second).rejects.toThrow(new RegExp(`already in use by process ${process.pid}`));
    await first.release();
    const again = await acquireDirectoryLock(lockPath, 'the test directory');
    await again.release();
  });

  it('takes over a legacy PID lock file that names a live PID (the container restart case)', async () => {
    const lockPath = path.join(dir, 'legacy.sock');
    // The old lock trusted a PID: "1" is always running, so every restart refused.
    writeFileSync(lockPath, '1');
    const lock = await acquireDirectoryLock(lockPath, 'the test directory');
    await lock.release();
  });

  it('is released by the kernel when the holder is killed with SIGKILL', async () => {
    const lockPath = path.join(dir, 'killed.sock');
    const holder = await startHolder(lockPath, false);
    expect(holder.line).toMatch(/^locked/);
    await expect(acquireDirectoryLock(lockPath, 'the test directory')).rejects.toBeInstanceOf(DirectoryLockedError);
    await killed(holder.child);
    const lock = await acquireDirectoryLock(lockPath, 'the test directory');
    await lock.release();
  });

  it.skipIf(!unshareWorks)('restarts as PID 1 of a new PID namespace after the previous PID 1 was killed with SIGKILL', async () => {
    const lockPath = path.join(dir, 'pid1.sock');
    const first = await startHolder(lockPath, true);
    expect(first.line).toBe('locked pid=1');
    const refused = await startHolder(lockPath, true);
    expect(refused.line).toMatch(/^refused: .*already in use by process 1 /);
    await killed(first.child);
    const restarted = await startHolder(lockPath, true);
    expect(restarted.line).toBe('locked pid=1');
    await killed(restarted.child);
  });
});
