import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type DatabaseHandle, type Executor } from '../../src/infra/db/database.js';
import { createLogger } from '../../src/infra/logging/logger.js';
import { utcDay } from '../../src/modules/billing/limits.js';
import * as store from '../../src/modules/billing/store.js';
import * as identityStore from '../../src/modules/identity/store.js';
import { embeddedDataDir, templateKey } from '../helpers/embedded-template.js';
import { createMigratedScratchDatabase, type ScratchDatabase } from '../helpers/scratch-database.js';

/**
 * A credit hold commits without waiting for its WAL to reach the disk (src/infra/db/relaxed-commit.ts):
 * the setting must really be made by the hold's statement (a CTE PostgreSQL evaluates only when the
 * statement reads it), for the hold's own transaction only — never for the writes after it.
 */
const show = async (db: Executor): Promise<string> => {
  const result: unknown = await db.execute(sql`SHOW synchronous_commit`);
  return (result as { rows: Array<{ synchronous_commit: string }> }).rows[0]!.synchronous_commit;
};

for (const backend of ['embedded', 'postgres'] as const) {
  describe.skipIf(backend === 'postgres' && !process.env.TEST_DATABASE_URL)(`a credit hold's commit (${backend})`, () => {
    let database: DatabaseHandle;
    let scratch: ScratchDatabase | undefined;

    beforeAll(async () => {
      const logger = createLogger('silent');
      if (backend === 'postgres') {
        scratch = await createMigratedScratchDatabase(process.env.TEST_DATABASE_URL!, templateKey(), async (url) => {
          await (await openDatabase({ databaseUrl: url, dataDir: tmpdir(), logger })).close();
        });
        database = await openDatabase({ databaseUrl: scratch.url, dataDir: tmpdir(), logger, migrate: false });
      } else {
        database = await openDatabase({ databaseUrl: undefined, dataDir: await embeddedDataDir(), logger, thread: true, migrate: false });
      }
    }, 120_000);

    afterAll(async () => {
      await database?.close();
      await scratch?.drop();
    });

    it('does not wait for the disk, and relaxes only its own transaction', async () => {
      const { db } = database;
      const { user } = await identityStore.findOrCreateUserByExternalId(db, `relaxed-${randomUUID()}`, undefined);
      const today = utcDay(new Date());
      await store.refreshDaily(db, user.id, today, 5_000_000);
      const hold = (amountMicro: number) => ({
        reservationId: randomUUID(),
        userId: user.id,
        amountMicro,
        today,
        service: 'chat' as const,
        provider: 'openrouter',
        model: 'openai/gpt-4o-mini',
        idempotencyKey: undefined,
        expiresAt: new Date(Date.now() + 60_000),
      });
      expect(await show(db)).toBe('on');
      // Inside a transaction the hold's setting shows (and is rolled back with it).
      await expect(
        db.transaction(async (transaction) => {
          expect(await store.reserve(transaction, hold(1_000))).toMatchObject({ held: true });
          expect(await show(transaction)).toBe('off');
          throw new Error('roll back');
        }),
      ).rejects.toThrow('roll back');
      // As billing runs it, a statement of its own: held, and what comes after commits synchronously.
      const held = hold(2_000);
      expect(await store.reserve(db, held)).toMatchObject({ held: true, balanceMicro: 4_998_000 });
      expect(await show(db)).toBe('on');
      // The settle (in the turn's write, a synchronous commit) finds the hold, as any commit is visible at once.
      expect(await store.endReservation(db, held.reservationId, { kind: 'settle', chargedMicro: 1_500 })).toEqual({ ended: true, chargedMicro: 1_500 });
      expect(await show(db)).toBe('on');
      // A refused hold (more than the balance) writes nothing and leaves the setting alone.
      expect(await store.reserve(db, hold(50_000_000))).toMatchObject({ held: false });
      expect(await show(db)).toBe('on');
    });
  });
}
