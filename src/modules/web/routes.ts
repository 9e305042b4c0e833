import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AppInstance } from '../../app-types.js';
import { projectFile } from '../../infra/project-files.js';

/** The dashboard's page: scripts and styles from this origin only, nothing inline, no framing. */
export const DASHBOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "media-src 'self' blob:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
};

const MISSING_PAGE = `<!doctype html><html lang="en"><meta charset="utf-8"><title>Anima</title>
<h1>Anima</h1><p>The web dashboard has not been built (web/dist is missing): <code>npm start</code> builds it (or <code>npx vite build web</code>).</p>
<p>The API is up: its reference with a quickstart is at <a href="/docs">/docs</a> (<a href="/openapi.json">/openapi.json</a>).</p></html>`;

/**
 * Serves the built dashboard (web/dist) at `/` (and `/setup`, the bot's link) to browsers (programs asking for JSON get pointers to
 * /docs and /openapi.json): index.html (never cached, so a new build shows at once)
 * and its hashed assets under /assets/ (cached for a year). A few lines over node:fs instead of
 * @fastify/static: one directory, two cache rules, and no risk of it shadowing API routes.
 */
export function registerWebRoutes(app: AppInstance, options: { version: string; directory?: string }): void {
  const directory = options.directory ?? projectFile('web', 'dist');
  const assets = path.join(directory, 'assets');
  const indexFile = path.join(directory, 'index.html');
  let cachedIndex: string | null = null;
  const index = (): string | null => {
    if (cachedIndex === null && existsSync(indexFile)) cachedIndex = readFileSync(indexFile, 'utf8');
    return cachedIndex;
  };

  const page = async (request: FastifyRequest, reply: FastifyReply) => {
    if (!(request.headers.accept ?? '').includes('text/html')) {
      return { name: 'Anima', version: options.version, dashboard: '/', docs: '/docs', openapi: '/openapi.json', health: '/health' };
    }
    return reply
      .header('content-security-policy', DASHBOARD_CSP)
      .header('cache-control', 'no-cache')
      .type('text/html; charset=utf-8')
      .send(index() ?? MISSING_PAGE);
  };
  app.get('/', { config: { auth: 'public' }, schema: { hide: true } }, page);
  // The bot's SETUP_URL defaults to <api>/setup and its link adds ?code=…: the same page signs in with it.
  app.get('/setup', { config: { auth: 'public' }, schema: { hide: true } }, page);

  app.get<{ Params: { file: string } }>('/assets/:file', { config: { auth: 'public' }, schema: { hide: true } }, async (request, reply) => {
    const { file } = request.params;
    const type = TYPES[path.extname(file)];
    if (!/^[A-Za-z0-9._-]+$/.test(file) || file.startsWith('.') || !type) return reply.callNotFound();
    let content: Buffer;
    try {
      content = await readFile(path.join(assets, file));
    } catch {
      return reply.callNotFound();
    }
    return reply.header('cache-control', 'public, max-age=31536000, immutable').type(type).send(content);
  });
}
