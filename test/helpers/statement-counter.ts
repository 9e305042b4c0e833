import type { Database } from '../../src/infra/db/database.js';

/**
 * Counts the statements Drizzle hands to the driver (its query logger sees each one, inside
 * transactions too); a transaction counts two more (BEGIN and COMMIT).
 */
export interface StatementCounter {
  readonly statements: string[];
  restore(): void;
}

export function countStatements(db: Database): StatementCounter {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- Drizzle's session is internal
  const session = (db as any).session as { logger: unknown; options: Record<string, unknown>; transaction: (...args: unknown[]) => Promise<unknown> };
  const saved = { logger: session.logger, options: session.options, transaction: session.transaction };
  const statements: string[] = [];
  const logger = { logQuery: (query: string) => statements.push(query) };
  session.logger = logger;
  session.options = { ...session.options, logger };
  session.transaction = async function (this: unknown, ...args: unknown[]) {
    statements.push('BEGIN', 'COMMIT');
    return saved.transaction.apply(this, args);
  };
  return {
    statements,
    restore: () => {
      session.logger = saved.logger;
      session.options = saved.options;
      session.transaction = saved.transaction;
    },
  };
}
