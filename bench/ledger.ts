/**
 * Credit debits per second on PostgreSQL with the ledger (issue 9: target ≥ 2,000/s, zero overspend).
 *
 * On a scratch database (migrated, dropped afterwards) and the product's own pool (openDatabase, 10
 * connections), many concurrent clients debit wallets, in the same run:
 *   (a) baseline: a bare `UPDATE wallets SET balance = balance − $1 WHERE user_id = $2 AND balance >= $1`
 *       (no ledger, no reservation: the least any debit can cost);
 *   (b) reserve → settle: BillingService.hold + settle, the path of every platform-paid provider call
 *       (a reservation row and two ledger entries per call);
 *   (c) plain debits: one ledger entry per debit outside the reserve/settle cycle (store.applyEntry,
 *       refusing what the balance does not cover — what grants, refunds and adjustments use).
 * Each on ONE user (every client on the same wallet row) and on MANY users. Every wallet is funded
 * to cover exactly 90 % of the debits aimed at it, so the last 10 % must be refused; afterwards
 * the check-ledger query must find no wallet whose balance is not the sum of its ledger, every
 * balance ≥ 0, and exactly the affordable number of debits must have gone through.
 *
 *   npx tsx bench/ledger.ts [--database-url postgres://…] [--debits 4000] [--clients 32] [--users 200]
 *
 * The database URL defaults to BENCH_DATABASE_URL, then TEST_DATABASE_URL.
 */
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
import { sql } from 'drizzle-orm';
import { loadConfig } from '../src/config.js';
import { openDatabase, type Database } from '../src/infra/db/database.js';
import { users } from '../src/infra/db/schema.js';
import { createLogger } from '../src/infra/logging/logger.js';
import { BillingService } from '../src/modules/billing/service.js';
import * as store from '../src/modules/billing/store.js';
import type { UserRow } from '../src/modules/identity/store.js';
import { createScratchDatabase } from '../test/helpers/scratch-database.js';
import { cleanUpOnce } from './harness.js';

const { values } = parseArgs({
  options: {
    'database-url': { type: 'string' },
    debits: { type: 'string', default: '4000' },
    clients: { type: 'string', default: '32' },
    users: { type: 'string', default: '200' },
  },
});
const baseUrl = values['database-url'] ?? process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL;
if (!baseUrl) {
  console.log('## ledger: skipped\n\nNeeds PostgreSQL: --database-url, BENCH_DATABASE_URL or TEST_DATABASE_URL.\n');
  process.exit(0);
}
const DEBITS = Number(values.debits);
const CLIENTS = Number(values.clients);
const MANY = Number(values.users);
const AMOUNT = 1_000; // micro-credits per debit
const FUNDED_SHARE = 0.9;

type Debit = (user: UserRow, index: number) => Promise<boolean>;

interface Outcome {
  name: string;
  users: number;
  perSecond: number;
  ok: number;
  refused: number;
  expectedOk: number;
  overspend: boolean;
}

async function main(): Promise<void> {
  const scratch = await createScratchDatabase(baseUrl!, 'anima_bench_ledger');
  const logger = createLogger('silent');
  const handle = await openDatabase({ databaseUrl: scratch.url, dataDir: tmpdir(), logger }).catch(async (error: unknown) => {
    await scratch.drop();
    throw error;
  });
  // A SIGINT/SIGTERM (Ctrl-C, `timeout`) drops the scratch database too, as the run's own end does.
  const cleanUp = cleanUpOnce('ledger', async () => {
    await handle.close();
    await scratch.drop();
  });
  try {
    const db = handle.db;
    const config = loadConfig({ NODE_ENV: 'test', DATABASE_URL: scratch.url, DATA_DIR: tmpdir(), ADMIN_API_KEY: 'bench-admin-key-0123456789', ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64') });
    const billing = new BillingService({ config, db, logger });
    const plan = await billing.createPlan({ id: 'bench', name: 'Bench', dailyCredits: 0, creditsPer1kTokensMicro: 100_000, requestsPerMinute: 1_000_000, concurrentStreams: 10_000 });

    let batch = 0;
    /** Fresh users whose wallets cover exactly FUNDED_SHARE of the debits aimed at each. */
    const fundedUsers = async (count: number): Promise<{ users: UserRow[]; perUser: number; affordable: number }> => {
      batch += 1;
      const rows = await db.insert(users).values(Array.from({ length: count }, (_, index) => ({ username: `bench-${batch}-${index}`, planId: 'bench' }))).returning();
      const perUser = Math.ceil(DEBITS / count);
      const affordable = Math.floor(perUser * FUNDED_SHARE);
      for (const user of rows) {
        await billing.wallet(user); // today's (empty) refresh, as the first call of a day does
        await billing.grant({ userId: user.id, amountMicro: affordable * AMOUNT, kind: 'grant', idempotencyKey: `bench-${user.id}` });
      }
      return { users: rows, perUser, affordable };
    };

    const bare: Debit = async (user) => {
      const result = await db.execute(sql`UPDATE wallets SET balance_micro = balance_micro - ${AMOUNT}::bigint WHERE user_id = ${user.id}::uuid AND balance_micro >= ${AMOUNT}::bigint`);
      return ((result as { rowCount: number | null }).rowCount ?? 0) === 1;
    };
    const reserveSettle: Debit = async (user) => {
      try {
        // Reserve a little more than is used, settle the real amount: the path of a metered call.
        const held = await billing.hold(user, plan, { amountMicro: AMOUNT, service: 'chat', provider: 'openrouter', model: 'bench', idempotencyKey: undefined });
        if ('alreadySettled' in held) throw new Error('unexpected idempotent replay');
        await billing.settle(held, user.id, AMOUNT);
        return true;
      } catch (error) {
        if ((error as { code?: string }).code === 'insufficient_credits') return false;
        throw error;
      }
    };
    const plainDebit: Debit = async (user) => {
      const result = await store.applyEntry(db, { userId: user.id, kind: 'adjustment', amountMicro: -AMOUNT, idempotencyKey: `debit:${randomUUID()}`, reason: 'bench' }, { clamp: false });
      return result.entry !== undefined;
    };

    const outcomes: Outcome[] = [];
    const run = async (name: string, debit: Debit, userCount: number, ledger: boolean): Promise<Outcome> => {
      const { users: rows, perUser, affordable } = await fundedUsers(userCount);
      if (!ledger) for (const row of rows) baselineUsers.add(row.id);
      const jobs: UserRow[] = [];
      for (let round = 0; round < perUser; round += 1) for (const user of rows) jobs.push(user);
      let next = 0;
      let ok = 0;
      let refused = 0;
      const started = performance.now();
      await Promise.all(
        Array.from({ length: CLIENTS }, async () => {
          while (next < jobs.length) {
            const index = next++;
            if (await debit(jobs[index]!, index)) ok += 1;
            else refused += 1;
          }
        }),
      );
      const seconds = (performance.now() - started) / 1000;
      const overspend = await verify(db, rows, ledger);
      return { name, users: userCount, perSecond: jobs.length / seconds, ok, refused, expectedOk: affordable * userCount, overspend };
    };

    const baselineUsers = new Set<string>();
    // A short warm-up (connections, plans, JIT), not reported.
    await run('warm-up', reserveSettle, 10, true);
    for (const userCount of [1, MANY]) {
      outcomes.push(await run('baseline: bare conditional UPDATE', bare, userCount, false));
      outcomes.push(await run('reserve → settle (ledger)', reserveSettle, userCount, true));
      outcomes.push(await run('plain debit (ledger)', plainDebit, userCount, true));
    }
    // The check-ledger command's query over the whole database; the baseline's wallets moved without a ledger on purpose.
    const all = await billing.checkLedger();
    const check = { ...all, mismatches: all.mismatches.filter((mismatch) => !baselineUsers.has(mismatch.userId)) };
    report(outcomes, check);
    if (check.mismatches.length > 0 || outcomes.some((outcome) => outcome.overspend || outcome.ok !== outcome.expectedOk)) process.exitCode = 1;
  } finally {
    await cleanUp();
  }
}

/** Balances never below zero; with the ledger, every balance is the sum of its entries and nothing is held. */
async function verify(db: Database, rows: UserRow[], ledger: boolean): Promise<boolean> {
  const ids = rows.map((row) => row.id);
  const result = await db.execute(sql`
    SELECT w.user_id, w.balance_micro, w.reserved_micro, coalesce((SELECT sum(amount_micro) FROM credit_ledger l WHERE l.user_id = w.user_id), 0) AS ledger_sum
    FROM wallets w WHERE w.user_id IN (${sql.join(ids.map((id) => sql`${id}::uuid`), sql`, `)})`);
  const wallets = (result as { rows: Array<{ balance_micro: string; reserved_micro: string; ledger_sum: string }> }).rows;
  return wallets.some((wallet) => Number(wallet.balance_micro) < 0 || Number(wallet.reserved_micro) !== 0 || (ledger && Number(wallet.balance_micro) !== Number(wallet.ledger_sum)));
}

function report(outcomes: Outcome[], check: { wallets: number; entries: number; mismatches: unknown[] }): void {
  const lines = [
    '## ledger: credit debits per second on PostgreSQL',
    '',
    `${DEBITS} debits of ${AMOUNT} micro-credits per row, ${CLIENTS} concurrent clients on the product's pool (10 connections); wallets funded for ${FUNDED_SHARE * 100} % of the debits aimed at them.`,
    '',
    '| path | users | debits/s | vs baseline | admitted | refused | expected admitted | overspend |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const outcome of outcomes) {
    const baseline = outcomes.find((candidate) => candidate.users === outcome.users && candidate.name.startsWith('baseline'));
    lines.push(
      `| ${outcome.name} | ${outcome.users} | ${Math.round(outcome.perSecond)} | ${baseline ? `${((outcome.perSecond / baseline.perSecond) * 100).toFixed(0)} %` : ''} | ${outcome.ok} | ${outcome.refused} | ${outcome.expectedOk} | ${outcome.overspend ? 'YES' : 'none'} |`,
    );
  }
  lines.push('', `check-ledger afterwards: ${check.wallets} wallets, ${check.entries} ledger entries, ${check.mismatches.length} mismatches.`);
  console.log(lines.join('\n'));
}

await main();
