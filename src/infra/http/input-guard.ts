import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ValidationError } from './errors.js';

/** JSON deeper than this is refused before validation (no API shape comes near it). */
export const MAX_INPUT_DEPTH = 64;

/** A NUL character, or a UTF-16 surrogate that is not part of a pair. */
// eslint-disable-next-line no-control-regex -- finding NUL is the point
const UNSAFE_TEXT = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * Text PostgreSQL cannot store: NUL is refused in text and jsonb, and a lone surrogate is not
 * valid UTF-8. One check on every parsed input (body, query, path parameters, headers), before
 * validation, so no route can reach the database with it: 422 naming the field.
 */
export function findUnsafeInput(value: unknown, location: string): { field: string; problem: 'nul' | 'surrogate' | 'depth' } | undefined {
  const stack: Array<{ value: unknown; path: string; depth: number }> = [{ value, path: location, depth: 0 }];
  while (stack.length > 0) {
    const { value: current, path, depth } = stack.pop()!;
    if (typeof current === 'string') {
      const problem = unsafeText(current);
      if (problem) return { field: path, problem };
      continue;
    }
    if (current === null || typeof current !== 'object' || Buffer.isBuffer(current)) continue;
    if (depth >= MAX_INPUT_DEPTH) return { field: path, problem: 'depth' };
    const entries = Array.isArray(current) ? current.map((item, index) => [String(index), item] as const) : Object.entries(current);
    for (const [key, child] of entries) {
      const childPath = `${path}.${key}`;
      const keyProblem = unsafeText(key);
      if (keyProblem) return { field: `${path}.${JSON.stringify(key).slice(1, -1)}`, problem: keyProblem };
      stack.push({ value: child, path: childPath, depth: depth + 1 });
    }
  }
  return undefined;
}

function unsafeText(text: string): 'nul' | 'surrogate' | undefined {
  if (!UNSAFE_TEXT.test(text)) return undefined;
  return text.includes('\u0000') ? 'nul' : 'surrogate';
}

function assertSafe(value: unknown, location: string): void {
  const found = findUnsafeInput(value, location);
  if (!found) return;
  const field = found.field.length > 200 ? `${found.field.slice(0, 200)}…` : found.field;
  if (found.problem === 'depth') throw new ValidationError(location, `The ${location} is nested more than ${MAX_INPUT_DEPTH} levels deep.`);
  throw new ValidationError(
    field,
    found.problem === 'nul' ? `${field} contains a NUL character (\\u0000), which cannot be stored.` : `${field} contains an unpaired UTF-16 surrogate, which is not valid text.`,
  );
}

/** Context headers are named as clients send them (X-User-Id), other headers by their lower-case name. */
const HEADER_NAMES: Record<string, string> = { 'x-user-id': 'X-User-Id', 'x-username': 'X-Username', 'x-channel-id': 'X-Channel-Id', 'x-guild-id': 'X-Guild-Id' };

export function registerInputGuard(app: FastifyInstance): void {
  app.addHook('preValidation', async (request: FastifyRequest) => {
    for (const [name, value] of Object.entries(request.headers)) {
      for (const single of Array.isArray(value) ? value : [value]) {
        if (typeof single === 'string' && unsafeText(single)) assertSafe(single, HEADER_NAMES[name] ?? name);
      }
    }
    assertSafe(request.params, 'params');
    assertSafe(request.query, 'query');
    assertSafe(request.body, 'body');
  });
}
