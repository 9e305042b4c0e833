// `npm start` builds only when the compiled output is missing or older than the sources,
// so a fresh clone starts with one command and a rebuilt tree starts at once.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const marker = path.join(root, 'dist', 'src', 'server.js');

function newestSourceTime(directory, extensions = ['.ts']) {
  let newest = 0;
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    const full = path.join(directory, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSourceTime(full, extensions));
    else if (extensions.some((extension) => entry.name.endsWith(extension))) newest = Math.max(newest, statSync(full).mtimeMs);
  }
  return newest;
}

const entries = ['server', 'worker', 'cli', 'bot', 'pglite-thread'].map((name) => path.join(root, 'dist', 'src', `${name}.js`));
const stale = entries.some((entry) => !existsSync(entry)) || statSync(marker).mtimeMs < newestSourceTime(path.join(root, 'src'));
if (stale) {
  process.stderr.write(existsSync(marker) ? 'Sources changed since the last build. ' : 'First start: no build yet. ');
  // scripts/build.mjs says what it builds and how long it took (esbuild: a few seconds).
  execFileSync(process.execPath, [path.join(root, 'scripts', 'build.mjs')], { cwd: root, stdio: 'inherit' });
}

// The web dashboard (web/ → web/dist, served at `/`): rebuilt with Vite when its sources are newer.
const web = path.join(root, 'web');
const webMarker = path.join(web, 'dist', 'index.html');
const webSources = () =>
  Math.max(
    newestSourceTime(path.join(web, 'src'), ['.ts', '.tsx', '.css', '.svg', '.png']),
    ...['index.html', 'vite.config.ts'].map((file) => statSync(path.join(web, file)).mtimeMs),
  );
if (existsSync(path.join(web, 'index.html')) && (!existsSync(webMarker) || statSync(webMarker).mtimeMs < webSources())) {
  let vite = null;
  try {
    vite = path.join(path.dirname(createRequire(path.join(root, 'package.json')).resolve('vite/package.json')), 'bin', 'vite.js');
  } catch {
    // installed without dev dependencies
  }
  if (vite === null) {
    process.stderr.write('The web dashboard is not built and Vite is not installed (npm ci without --omit=dev builds it); the API starts without it.\n');
  } else {
    process.stderr.write(existsSync(webMarker) ? 'Dashboard sources changed: building web/ with Vite… ' : 'First start: building the web dashboard (web/ → web/dist) with Vite… ');
    const started = Date.now();
    execFileSync(process.execPath, [vite, 'build', '--logLevel', 'warn', web], { cwd: root, stdio: 'inherit' });
    process.stderr.write(`done in ${((Date.now() - started) / 1000).toFixed(1)} s.\n`);
  }
}
