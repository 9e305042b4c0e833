import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';

export interface DirectoryLock {
  release(): void;
}

export class DirectoryLockedError extends Error {
  constructor(
    readonly lockPath: string,
    readonly holderPid: number,
    what: string,
  ) {
    super(
      `${what} is already in use by process ${holderPid} (lock file ${lockPath}). ` +
        'Stop that process, or point DATA_DIR elsewhere, or use DATABASE_URL for several processes.',
    );
    this.name = 'DirectoryLockedError';
  }
}

/**
 * A PID lock file taken with O_EXCL. A lock left by a crashed process is taken over at once
 * (its PID no longer runs), so a restart after a crash never waits for a staleness timeout.
 */
export function acquireDirectoryLock(lockPath: string, what: string): DirectoryLock {
  for (let attempt = 0; attempt < 3; attempt += 1) {
    try {
      const descriptor = openSync(lockPath, 'wx');
      writeSync(descriptor, String(process.pid));
      closeSync(descriptor);
      let released = false;
      return {
        release: () => {
          if (released) return;
          released = true;
          try {
            if (readFileSync(lockPath, 'utf8') === String(process.pid)) unlinkSync(lockPath);
          } catch {
            // Already gone: nothing to release.
          }
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holderPid = readHolder(lockPath);
      if (holderPid !== undefined && holderPid !== process.pid && isRunning(holderPid)) {
        throw new DirectoryLockedError(lockPath, holderPid, what);
      }
      if (holderPid === process.pid) throw new DirectoryLockedError(lockPath, holderPid, what);
      try {
        unlinkSync(lockPath);
      } catch {
        // Another process removed it first; try again.
      }
    }
  }
  throw new Error(`Could not take the lock ${lockPath}`);
}

function readHolder(lockPath: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(lockPath, 'utf8').trim(), 10);
    return Number.isFinite(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
