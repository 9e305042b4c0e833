import { sql } from 'drizzle-orm';
import pino from 'pino';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Executor } from '../../src/infra/db/database.js';
import * as identityStore from '../../src/modules/identity/store.js';
import type { AppModule, WarmUpScratch } from '../../src/modules/module.js';
import { warmUpModules } from '../../src/modules/warm-up.js';
import { backends, startTestServer, type TestServer } from '../helpers/test-server.js';

const TABLES = ['users', 'user_identities', 'characters', 'conversations', 'messages', 'wallets', 'credit_reservations', 'credit_ledger', 'usage_daily'];

/** The rows of an executed statement (both drivers answer `{ rows }`). */
function rowsOf<T>(result: unknown): T[] {
  return (result as { rows: T[] }).rows;
}

async function counts(db: Executor): Promise<Record<string, number>> {
  const result: Record<string, number> = {};
  for (const table of TABLES) {
    const [row] = rowsOf<{ n: number }>(await db.execute(sql.raw(`SELECT count(*)::int AS n FROM ${table}`)));
    result[table] = Number(row!.n);
  }
  return result;
}

function capturingLogger(): { logger: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), lines };
}

/**
 * Issue 14, the first turn after a restart: before it listens, the server runs each module's turn
 * statements once in a transaction that is always rolled back (src/modules/warm-up.ts). What must
 * hold: every module's warm-up runs and really writes (inside the transaction), nothing of it
 * outlives the rollback, and a module whose warm-up fails costs only its own part.
 */
describe.each(backends())('the start-up warm-up on %s storage', (backend) => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer(backend, { LOG_LEVEL: 'debug' });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('ran before the server listened, with no module failing, and left no row behind', async () => {
    const warmed = server.logs.map((line) => JSON.parse(line) as Record<string, unknown>).find((line) => line.msg === 'warmed up the turn path');
    expect(warmed).toMatchObject({ failed: [] });
    const listening = server.logs.findIndex((line) => line.includes('"Server listening'));
    expect(listening).toBeGreaterThan(0); expect(server.logs.findIndex((line) => line.includes('warmed up the turn path'))).toBeLessThan(listening);
    const after = await counts(server.container.db);
    expect(after.conversations).toBe(0);
    expect(after.messages).toBe(0);
    expect(after.credit_reservations).toBe(0);
    expect(after.credit_ledger).toBe(0);
    expect(after.wallets).toBe(0);
    const leftovers = rowsOf<{ identities: number; characters: number }>(
      await server.container.db.execute(
        sql`SELECT (SELECT count(*)::int FROM user_identities WHERE external_id LIKE 'anima:warm-up:%') AS identities, (SELECT count(*)::int FROM characters WHERE slug LIKE 'warm-up-%') AS characters`,
      ),
    );
    expect(leftovers[0]).toEqual({ identities: 0, characters: 0 });
  });

  it("writes a paid turn's rows inside its transaction (a user, a character, a conversation with two messages, a hold settled) and rolls every one back", async () => {
    const { db, modules } = server.container;
    const before = await counts(db);
    let seen: { scratch: Omit<WarmUpScratch, 'db'>; messages: number; ledger: string[]; reservations: string[]; inside: Record<string, number> } | undefined;
    const observer: AppModule = {
      name: 'observer',
      warmUp: async ({ db: executor, ...scratch }) => {
        const [row] = rowsOf<{ messages: number; ledger: string[] | string; reservations: string[] | string }>(
          await executor.execute(
          sql`SELECT (SELECT count(*)::int FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE c.character_id = ${scratch.characterId!}::uuid AND c.user_id = ${scratch.userId!}::uuid) AS messages,
                     (SELECT coalesce(array_agg(kind::text ORDER BY id), '{}') FROM credit_ledger WHERE user_id = ${scratch.userId!}::uuid) AS ledger,
                     (SELECT coalesce(array_agg(status::text), '{}') FROM credit_reservations WHERE user_id = ${scratch.userId!}::uuid) AS reservations`,
          ),
        );
        if (!row) throw new Error('no answer');
        const list = (value: string[] | string) => (Array.isArray(value) ? value : value.replace(/[{}]/g, '').split(',').filter(Boolean));
        seen = { scratch, messages: Number(row.messages), ledger: list(row.ledger), reservations: list(row.reservations), inside: await counts(executor) };
      },
    };
    const { logger, lines } = capturingLogger();
    const report = await warmUpModules(db, [...modules, observer], logger);
    expect(report.failed).toEqual([]);
    expect(lines.filter((line) => Number(line.level) >= 40)).toEqual([]);
    expect(seen?.scratch.userId).toMatch(/^[0-9a-f-]{36}$/);
    expect(seen?.scratch.characterId).toMatch(/^[0-9a-f-]{36}$/);
    expect(seen?.messages).toBe(2);
    expect(seen?.ledger).toEqual(['daily_refresh', 'reserve', 'settle']);
    expect(seen?.reservations).toEqual(['settled']);
    expect(seen?.inside.users).toBe(before.users! + 1);
    expect(seen?.inside.characters).toBe(before.characters! + 1);
    expect(await counts(db)).toEqual(before);
  });

  it("a module whose warm-up fails is logged and skipped: its own rows are rolled back and the next modules go on without them", async () => {
    const { db } = server.container;
    const before = await counts(db);
    const received: Array<Omit<WarmUpScratch, 'db'>> = [];
    let failingUserId: string | undefined;
    const modules: AppModule[] = [
      { name: 'first', warmUp: async () => ({ planId: 'free' }) },
      {
        name: 'breaks',
        warmUp: async ({ db: executor }) => {
          const { user } = await identityStore.findOrCreateUserByExternalId(executor, 'anima:warm-up:breaks', undefined);
          failingUserId = user.id;
          throw new Error('this warm-up breaks on purpose');
        },
      },
      {
        name: 'after',
        warmUp: async ({ db: executor, ...scratch }) => {
          received.push(scratch);
          expect(await identityStore.findUserById(executor, failingUserId!)).toBeUndefined();
        },
      },
    ];
    const { logger, lines } = capturingLogger();
    const report = await warmUpModules(db, modules, logger);
    expect(report.failed).toEqual(['breaks']);
    expect(received).toEqual([{ planId: 'free' }]);
    const warning = lines.find((line) => line.module === 'breaks');
    expect(warning).toMatchObject({ level: 40, msg: expect.stringContaining('warm-up failed') });
    expect(await counts(db)).toEqual(before);
  });
});
