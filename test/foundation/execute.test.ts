import { randomUUID } from 'node:crypto';
import { sql, type SQL } from 'drizzle-orm';
import { PgDialect } from 'drizzle-orm/pg-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type DatabaseHandle } from '../../src/infra/db/database.js';
import { compile } from '../../src/infra/db/execute.js';
import { messages } from '../../src/infra/db/schema.js';
import { createLogger } from '../../src/infra/logging/logger.js';
import { endReservationCtes, reserveStatement } from '../../src/modules/billing/store.js';
import { writeTurnStatement, type MessageInsert } from '../../src/modules/chat/store.js';
import type { ResolvedProviderKey } from '../../src/modules/identity/key-resolution.js';
import { recallListsStatement, type RecallListsRequest } from '../../src/modules/memory/store.js';
import { UsageRecorder } from '../../src/modules/usage/usage-recorder.js';
import { embeddedDataDir } from '../helpers/embedded-template.js';
import { createScratchDatabase, type ScratchDatabase } from '../helpers/scratch-database.js';

/**
 * The database's dialect builds plain `sql` templates itself (Drizzle's builder was ≈ 5 % of a chat
 * turn's CPU): it must give exactly the text and parameters Drizzle gives, hand back to Drizzle
 * whatever it does not build, and answer as Drizzle's own building does on both databases.
 */
const dialect = new PgDialect();
/** Drizzle's text and parameters (its `typings` are for the Data API drivers; node-postgres and PGlite take none). */
const drizzleBuilt = (statement: SQL) => {
  const { sql: text, params } = dialect.sqlToQuery(statement);
  return { sql: text, params };
};

const vector = Array.from({ length: 16 }, (_, index) => Math.sin(index + 1) / 3);
const filter = { characterId: randomUUID(), includeCore: true, userId: randomUUID() };
const recallRequests: Array<[string, RecallListsRequest]> = [
  ['vector (auto path) + text + expansion + fill-up', { filter, text: "What's my cat's name? It's $1 and 'quoted'", expansion: { words: ['kitten', 'pet'], weight: 0.3 }, vector: { space: { model: 'local-16', dimensions: 16 }, query: vector }, candidates: 40, exactScanMaxRows: 2000, efSearch: 100, fillUpTo: 8 }],
  ['vector (exact path) + text, no expansion', { filter: { ...filter, guildId: randomUUID() }, text: 'hello there', vector: { space: { model: 'local-16', dimensions: 16 }, query: vector }, candidates: 20, exactScanMaxRows: 200, efSearch: 40, vectorPath: 'exact' }],
  ['text only', { filter: { characterId: filter.characterId, includeCore: false, userId: filter.userId }, text: 'moon cheese', candidates: 10, exactScanMaxRows: 100, efSearch: 40 }],
  ['fill-up only', { filter, text: undefined, candidates: 10, exactScanMaxRows: 100, efSearch: 40, fillUpTo: 4 }],
];

function turnParts(): { ctes: SQL[]; creditsMicro: SQL } {
  const ending = endReservationCtes(randomUUID(), { kind: 'settle', chargedMicro: 1234 }, 'settle_');
  const recorder = new UsageRecorder({ db: undefined as never, logger: createLogger('silent') });
  const key: ResolvedProviderKey = { provider: 'openrouter', apiKey: 'sk-test', source: 'platform', providerKeyId: null, masked: 'sk-…test' };
  const usage = recorder.recordCtes({ userId: randomUUID(), characterId: randomUUID(), service: 'chat', key, model: 'openai/gpt-4o-mini', promptTokens: 120, completionTokens: 30, requestId: 'req-1' }, sql`COALESCE(${ending.chargedMicro}, 0)`);
  return { ctes: [...ending.ctes, ...usage], creditsMicro: sql`COALESCE(${ending.chargedMicro}, 0)` };
}

const turnMessages = (conversationId: string): MessageInsert[] => [
  { conversationId, id: randomUUID(), role: 'user' as const, content: 'Hi — $2 “quotes”, emoji 🎉', tokenCount: 9, speakerUserId: randomUUID(), speakerName: 'Ada', metadata: { request_id: 'r' }, createdAt: new Date() },
  { conversationId, id: randomUUID(), role: 'assistant' as const, content: 'Hello!', tokenCount: 2, status: 'complete' as const, createdAt: new Date() },
];

describe('compile builds statements as Drizzle does', () => {
  it('the chat turn’s statements: the same text and parameters, never handed back', () => {
    const conversationId = randomUUID();
    const statements: Array<[string, SQL]> = [
      ...recallRequests.map(([name, request]): [string, SQL] => [`recall: ${name}`, recallListsStatement(request)!]),
      ['credit hold', reserveStatement({ reservationId: randomUUID(), userId: randomUUID(), amountMicro: 5_000, today: '2026-11-30', service: 'chat', provider: 'openrouter', model: 'openai/gpt-4o-mini', idempotencyKey: undefined, expiresAt: new Date() })],
      ['credit hold without a model', reserveStatement({ reservationId: randomUUID(), userId: randomUUID(), amountMicro: 1, today: '2026-11-30', service: 'tts', provider: 'elevenlabs', model: undefined, idempotencyKey: 'k', expiresAt: new Date() })],
      ['turn write with the charge and usage', writeTurnStatement(conversationId, turnMessages(conversationId), turnParts())],
      ['turn write alone', writeTurnStatement(conversationId, turnMessages(conversationId))],
    ];
    for (const [name, statement] of statements) {
      const ours = compile(statement);
      expect(ours, name).toBeDefined();
      expect(ours, name).toEqual(drizzleBuilt(statement));
      expect(ours!.params.length, name).toBeGreaterThan(0);
    }
  });

  it('nested templates, joins, raw text and every plain value type', () => {
    const inner = sql`inner ${1} AND ${'two'} AND ${null} AND ${true} AND ${false} AND ${2n} AND ${0} AND ${-1.5}`;
    const statements = [
      sql`SELECT 1`,
      sql``,
      sql`${'only a value'}`,
      sql`SELECT ${inner}, (${sql.join([sql`a = ${1}`, sql`b = ${2}`, sql.raw('c = 3')], sql` OR `)})`,
      sql`SELECT ${undefined} x, ${sql.raw("'$1'")}, ${'$1'}`,
      sql.join([sql`x`, sql`${3}`, sql.empty()], sql.raw(', ')),
    ];
    for (const statement of statements) expect(compile(statement)).toEqual(drizzleBuilt(statement));
  });

  it('hands back what only Drizzle builds (columns, tables, typed params, placeholders, dates, arrays, inlined values)', () => {
    const handedBack = [
      sql`SELECT ${messages.id} FROM ${messages}`,
      sql`SELECT ${sql.param(['a', 'b'])}`,
      sql`SELECT ${sql.placeholder('id')}`,
      sql`SELECT ${new Date(0)}`,
      sql`SELECT ${[1, 2]}`,
      sql`SELECT ${1}`.inlineParams(),
      sql`SELECT ${sql`${2}`.inlineParams()}`,
    ];
    for (const statement of handedBack) expect(compile(statement)).toBeUndefined();
  });
});

for (const backend of ['embedded', 'postgres'] as const) {
  describe.skipIf(backend === 'postgres' && !process.env.TEST_DATABASE_URL)(`plain statements built directly answer as Drizzle-built ones (${backend})`, () => {
    let database: DatabaseHandle;
    let scratch: ScratchDatabase | undefined;

    beforeAll(async () => {
      if (backend === 'postgres') {
        scratch = await createScratchDatabase(process.env.TEST_DATABASE_URL!, 'anima_exec');
        database = await openDatabase({ databaseUrl: scratch.url, dataDir: '/nonexistent', logger: createLogger('silent'), migrate: false });
      } else {
        database = await openDatabase({ databaseUrl: undefined, dataDir: await embeddedDataDir(), logger: createLogger('silent'), thread: true });
      }
    }, 120_000);

    afterAll(async () => {
      await database?.close();
      await scratch?.drop();
    });

    /** What callers read of an answer (node-postgres' Result also carries its parser functions). */
    const answer = (result: unknown) => {
      const { rows, fields, rowCount, command, affectedRows } = result as { rows: unknown[]; fields: Array<{ name: string; dataTypeID: number }>; rowCount?: number; command?: string; affectedRows?: number };
      return { rows, fields: fields.map(({ name, dataTypeID }) => ({ name, dataTypeID })), rowCount, command, affectedRows };
    };
    const dialectOf = (db: unknown) => (db as { dialect: PgDialect }).dialect;

    it('the same rows, fields and counts, inside and outside a transaction, and the same errors', async () => {
      // The same text either way: `"n"` written out (built here), or as an identifier chunk (only Drizzle builds those).
      const statement = (name: SQL) =>
        sql`SELECT ${42}::int AS ${name}, ${'t’ext'}::text AS s, ${null}::text AS nothing, ${true} AS yes, ${'2026-11-30T10:00:00.123Z'}::timestamptz AS at, ${'2026-11-30'}::date AS day, ${'{"a":[1,2]}'}::jsonb AS doc, ${9007199254740993n}::bigint AS big, ARRAY[${'x'}::text, ${'y'}::text] AS list`;
      const plain = () => statement(sql.raw('"n"'));
      const drizzles = () => statement(sql`${sql.identifier('n')}`);
      // Built here (no `typings`: Drizzle's builder always adds them) and by Drizzle, to the same text and parameters.
      const built = dialectOf(database.db).sqlToQuery(plain());
      expect(built).not.toHaveProperty('typings');
      expect(dialectOf(database.db).sqlToQuery(drizzles())).toHaveProperty('typings');
      expect(built).toEqual(drizzleBuilt(drizzles()));
      // The plain template goes straight to the driver (executePlainStatementsDirectly: a promise, not Drizzle's PgRaw),
      // the one with an identifier through Drizzle's execute.
      const direct = database.db.execute(plain());
      expect(direct).toBeInstanceOf(Promise);
      expect(database.db.execute(drizzles())).not.toBeInstanceOf(Promise);
      await direct;
      // Several runs: the drivers name a statement they have seen before (prepared statements).
      for (let run = 0; run < 3; run += 1) expect(answer(await database.db.execute(plain()))).toEqual(answer(await database.db.execute(drizzles())));
      await database.db.transaction(async (tx) => {
        expect(dialectOf(tx).sqlToQuery(plain())).not.toHaveProperty('typings');
        expect(answer(await tx.execute(plain()))).toEqual(answer(await tx.execute(drizzles())));
      });
      const failing = (name: SQL) => sql`SELECT 1 / ${0}::int AS ${name}`;
      const theirError = await database.db.execute(failing(sql`${sql.identifier('boom')}`)).then(() => undefined, (error: unknown) => error as Error);
      const ourError = await database.db.execute(failing(sql.raw('"boom"'))).then(() => undefined, (error: unknown) => error as Error);
      expect(ourError?.constructor).toBe(theirError?.constructor);
      expect(ourError?.message).toBe(theirError?.message);
      expect((ourError?.cause as { code?: string } | undefined)?.code).toBe('22012');
    });
  });
}
