// Takes the embedded database's directory lock and holds it until killed (run by directory-lock.test.ts).
import { acquireDirectoryLock } from '../../src/infra/db/directory-lock.js';

const lockPath = process.argv[2]!;
try {
  await acquireDirectoryLock(lockPath, 'the test directory');
  process.stdout.write(`locked pid=${process.pid}\n`);
  setInterval(() => undefined, 60_000);
} catch (error) {
  process.stdout.write(`refused: ${(error as Error).message}\n`);
  process.exit(3);
}
