import { createConnection, createServer, type Server } from 'node:net';
import { lstatSync, unlinkSync } from 'node:fs';

export interface DirectoryLock {
  release(): Promise<void>;
}

export class DirectoryLockedError extends Error {
  constructor(
    readonly lockPath: string,
    readonly holderPid: number | undefined,
    what: string,
  ) {
    super(
      `${what} is already in use by ${holderPid ? `process ${holderPid}` : 'another process'} (lock ${lockPath}). ` +
        'Stop that process, or point DATA_DIR elsewhere, or use DATABASE_URL for several processes.',
    );
    this.name = 'DirectoryLockedError';
  }
}

/** Longest Unix socket path Linux and macOS accept (sun_path, with its terminating NUL). */
const MAX_SOCKET_PATH_BYTES = 103;

/**
 * A lock the kernel releases when the process dies: a listening Unix domain socket at `lockPath`.
 *
 * - a second live process cannot listen (EADDRINUSE); connecting succeeds, the holder answers its
 *   PID, and the error names it;
 * - after kill -9 or an OOM kill nobody listens any more: connecting fails (ECONNREFUSED), so the
 *   stale socket file is removed and taken over at once. No PID is trusted, so a container's PID 1
 *   restarting as PID 1 is not mistaken for the holder;
 * - the socket lives in DATA_DIR, so processes in other PID or network namespaces sharing the
 *   volume see the same lock.
 */
export async function acquireDirectoryLock(lockPath: string, what: string): Promise<DirectoryLock> {
  if (Buffer.byteLength(lockPath) > MAX_SOCKET_PATH_BYTES) {
    throw new Error(`The lock path ${lockPath} is longer than a Unix socket path may be (${MAX_SOCKET_PATH_BYTES} bytes): use a shorter DATA_DIR.`);
  }
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const server = createServer((socket) => socket.end(String(process.pid)));
    try {
      await listen(server, lockPath);
      server.unref();
      let released = false;
      return {
        release: async () => {
          if (released) return;
          released = true;
          // Closing the listening socket removes its file too.
          await new Promise<void>((resolve) => server.close(() => resolve()));
        },
      };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'EADDRINUSE') throw error;
      const holder = await probe(lockPath);
      if (holder.alive) throw new DirectoryLockedError(lockPath, holder.pid, what);
      // Nobody listens: the holder died. Remove the stale socket (or a legacy PID file) and retake it.
      try {
        if (lstatSync(lockPath).isDirectory()) throw new Error(`${lockPath} is a directory.`);
        unlinkSync(lockPath);
      } catch (unlinkError) {
        if ((unlinkError as NodeJS.ErrnoException).code !== 'ENOENT') throw unlinkError;
      }
    }
  }
  throw new Error(`Could not take the lock ${lockPath}`);
}

function listen(server: Server, socketPath: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Connects to the lock: alive when someone accepts (it answers its PID), dead on ECONNREFUSED / ENOTSOCK. */
function probe(socketPath: string): Promise<{ alive: boolean; pid: number | undefined }> {
  return new Promise((resolve) => {
    const socket = createConnection(socketPath);
    let answer = '';
    const timer = setTimeout(() => {
      socket.destroy();
      // Accepting but silent: still a live process holding it.
      resolve({ alive: true, pid: undefined });
    }, 2_000);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      answer += chunk;
    });
    socket.on('end', () => {
      clearTimeout(timer);
      const pid = Number.parseInt(answer, 10);
      resolve({ alive: true, pid: Number.isFinite(pid) && pid > 0 ? pid : undefined });
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({ alive: !['ECONNREFUSED', 'ENOTSOCK', 'ENOENT', 'ECONNRESET'].includes(error.code ?? ''), pid: undefined });
    });
  });
}
