// `npm start` builds only when the compiled output is missing or older than the sources,
// so a fresh clone starts with one command and a rebuilt tree starts at once.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const marker = path.join(root, 'dist', 'src', 'server.js');

function newestSourceTime(directory) {
  let newest = 0;
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    const full = path.join(directory, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSourceTime(full));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(full).mtimeMs);
  }
  return newest;
}

const stale = !existsSync(marker) || statSync(marker).mtimeMs < newestSourceTime(path.join(root, 'src'));
if (stale) {
  process.stderr.write(existsSync(marker) ? 'Sources changed since the last build. ' : 'First start: no build yet. ');
  // scripts/build.mjs says what it builds and how long it took (esbuild: a few seconds).
  execFileSync(process.execPath, [path.join(root, 'scripts', 'build.mjs')], { cwd: root, stdio: 'inherit' });
}
