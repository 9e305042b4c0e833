import { sql as drizzleSql, SQL, StringChunk } from 'drizzle-orm';
import { PgDialect } from 'drizzle-orm/pg-core';
import { describe, expect, it } from 'vitest';
import { messages } from './schema.js';
import { sql } from './sql.js';

/** Drizzle's internal members the comparison reads. */
const internals = (statement: SQL) => statement as unknown as { usedTables: string[]; shouldInlineParams: boolean };

/** What an SQL is made of, as data: literal pieces, values, nested statements and anything else by kind. */
function shape(chunk: unknown): unknown {
  if (chunk instanceof SQL) return { sql: chunk.queryChunks.map(shape), usedTables: internals(chunk).usedTables, inline: internals(chunk).shouldInlineParams };
  if (chunk instanceof StringChunk) return { text: chunk.value };
  if (chunk !== null && typeof chunk === 'object' && !(chunk instanceof Uint8Array)) return { entity: chunk.constructor.name, same: chunk };
  return { value: chunk };
}

const dialect = new PgDialect();
const built = (statement: SQL) => {
  const { sql: text, params } = dialect.sqlToQuery(statement);
  return { sql: text, params };
};

/** The same template through both tags (the template functions take the tag, so the call sites are shared). */
const templates: Array<[string, (tag: typeof sql) => SQL]> = [
  ['text only', (tag) => tag`SELECT 1`],
  ['empty', (tag) => tag``],
  ['leading value', (tag) => tag`${'a'} AS first`],
  ['values of every plain kind', (tag) => tag`SELECT ${'text'}::text, ${42}::int, ${true}, ${null}, ${undefined}, ${10n}::bigint, ${new Uint8Array([1, 2, 3])}`],
  ['nested', (tag) => tag`WITH a AS (${tag`SELECT ${1} AS n`}) SELECT n + ${2} FROM a`],
  ['join with a separator', (tag) => tag`SELECT ${tag.join([tag`${1}`, tag`${2}`, tag.raw('3')], tag`, `)}`],
  ['join without a separator', (tag) => tag.join([tag`a`, tag`b`])],
  ['a table and a column (Drizzle builds it)', (tag) => tag`SELECT ${messages.id} FROM ${messages} WHERE ${messages.role} = ${'user'}`],
  ['an array value (Drizzle builds it)', (tag) => tag`SELECT ${[1, 2, 3]}`],
  ['a date (Drizzle builds it)', (tag) => tag`SELECT ${new Date(0)}::timestamptz`],
  ['a Drizzle param', (tag) => tag`SELECT ${tag.param(5)}`],
  ['join of columns (Drizzle builds it)', (tag) => tag.join([messages.id, messages.role], tag`, `)],
];

describe('the sql tag', () => {
  it.each(templates)('builds what Drizzle builds: %s', (_name, template) => {
    const ours = template(sql);
    const theirs = template(drizzleSql);
    expect(shape(ours)).toEqual(shape(theirs));
    expect(built(ours)).toEqual(built(theirs));
  });

  it('reuses a call site’s literal pieces and gives each statement its own chunk list', () => {
    const make = (value: number) => sql`SELECT ${value} AS n`;
    const first = make(1);
    const second = make(2);
    expect(first.queryChunks[0]).toBe(second.queryChunks[0]);
    expect(first.queryChunks).not.toBe(second.queryChunks);
    first.append(sql` LIMIT ${3}`);
    expect(built(first)).toEqual({ sql: 'SELECT $1 AS n LIMIT $2', params: [1, 3]});
    expect(built(second)).toEqual({ sql: 'SELECT $1 AS n', params: [2]});
  });

  it('keeps Drizzle’s usedTables for templates with tables', () => {
    expect(internals(sql`SELECT * FROM ${messages}`).usedTables).toEqual(['messages']);
    expect(internals(sql`SELECT ${1}`).usedTables).toEqual([]);
  });

  it('keeps the rest of Drizzle’s namespace', () => {
    expect(built(sql.raw('now()'))).toEqual(built(drizzleSql.raw('now()')));
    expect(built(sql.empty())).toEqual(built(drizzleSql.empty()));
    expect(built(sql`SELECT ${sql.identifier('messages')}`)).toEqual({ sql: 'SELECT "messages"', params: []});
  });
});
