import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as ret from 'ret';
import type { Root, Token } from 'ret';
import { z } from 'zod';
import { PROJECT_ROOT } from '../../infra/project-files.js';

/**
 * The moderation policy: blocked categories as data (config/moderation.json), each a list of
 * keywords (whole words, case-insensitive) and regular expressions, checked on chat input and/or
 * output. Pure matching; recording and refusing are the service's.
 */

export type ModerationDirection = 'input' | 'output';

const categorySchema = z.object({
  name: z.string().regex(/^[a-z0-9_]{1,64}$/, 'lower-case letters, digits and _'),
  description: z.string().optional(),
  directions: z.array(z.enum(['input', 'output'])).min(1).default(['input', 'output']),
  keywords: z.array(z.string().min(1)).default([]),
  patterns: z.array(z.string().min(1)).default([]),
  flags: z.string().regex(/^[imsu]*$/).default('i'),
});

const policySchema = z.object({ categories: z.array(categorySchema) });

export interface ModerationMatch {
  category: string;
  /** The matched text with a little context, for the moderation log. */
  excerpt: string;
}

interface CompiledExpression {
  expression: RegExp;
  /**
   * Whether a match can be found in a piece of the text that starts after a whitespace character:
   * keywords (their boundary test looks one character back) and patterns without `^` or lookbehind.
   */
  finiteLookBehind: boolean;
  /**
   * How far before a streamed answer's new text `checkGrown` reads for this expression: at least
   * GROWN_TEXT_LOOK_BACK, more for a pattern whose matches can be longer (its longest possible
   * match, see matchReach), Infinity (the whole text) for one whose matches have no bound.
   */
  lookBack: number;
  /** Index of its look-back in ModerationPolicy.lookBacks; -1: it reads the whole text. */
  slot: number;
}

/** A part of a checked text, from `from` to its end. */
interface Piece {
  from: number;
  text: string;
}

interface CompiledCategory {
  name: string;
  directions: Set<ModerationDirection>;
  expressions: CompiledExpression[];
}

const EXCERPT_CONTEXT = 40;

/**
 * How far before the newly added text `checkGrown` looks: a match found there may have begun before
 * the new text. The shipped patterns match well under 100 characters.
 */
export const GROWN_TEXT_LOOK_BACK = 256;

export class ModerationPolicy {
  /** The distinct finite look-backs of the expressions that may read only what grew (usually one). */
  private readonly lookBacks: number[];

  private constructor(private readonly categories: CompiledCategory[]) {
    this.lookBacks = [];
    for (const category of categories) {
      for (const expression of category.expressions) {
        if (!expression.finiteLookBehind || !Number.isFinite(expression.lookBack)) continue;
        if (!this.lookBacks.includes(expression.lookBack)) this.lookBacks.push(expression.lookBack);
        expression.slot = this.lookBacks.indexOf(expression.lookBack);
      }
    }
  }

  static fromJson(value: unknown, source = 'moderation policy'): ModerationPolicy {
    const parsed = policySchema.safeParse(value);
    if (!parsed.success) {
      throw new Error(`${source} is invalid: ${parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')}`);
    }
    const categories = parsed.data.categories.map((category) => ({
      name: category.name,
      directions: new Set(category.directions),
      expressions: [
        ...category.keywords.map((keyword) => ({
          expression: new RegExp(`(?<![\\p{L}\\p{N}])${escapeRegExp(keyword).replace(/\s+/g, '\\s+')}(?![\\p{L}\\p{N}])`, `iu`),
          finiteLookBehind: true,
          // A keyword's match is the keyword (its spaces may be runs of whitespace: a run longer than the look-back is not looked for).
          lookBack: Math.max(GROWN_TEXT_LOOK_BACK, keyword.length * 2),
          slot: -1,
        })),
        ...category.patterns.map((pattern) => {
          try {
            const expression = new RegExp(pattern, category.flags);
            return { expression, finiteLookBehind: !/\^|\(\?<[=!]/.test(pattern), lookBack: Math.max(GROWN_TEXT_LOOK_BACK, matchReach(pattern, category.flags)), slot: -1 };
          } catch (error) {
            throw new Error(`${source}: category ${category.name} has a bad pattern ${JSON.stringify(pattern)}: ${(error as Error).message}`, { cause: error });
          }
        }),
      ],
    }));
    // Each expression runs once now: V8 compiles a regular expression on its first run, which was
    // ≈ 20 ms of the first chat turn after a start (bench/first-turn.ts).
    // (The policy's flags exclude g and y, so a run leaves no lastIndex behind.)
    for (const category of categories) for (const { expression } of category.expressions) expression.test('warm up');
    return new ModerationPolicy(categories);
  }

  /** Reads the policy file; a relative path is taken from the project root. */
  static load(policyPath: string): ModerationPolicy {
    const absolute = path.isAbsolute(policyPath) ? policyPath : path.join(PROJECT_ROOT, policyPath);
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(absolute, 'utf8'));
    } catch (error) {
      throw new Error(`MODERATION_POLICY_PATH: cannot read ${absolute}: ${(error as Error).message}`, { cause: error });
    }
    return ModerationPolicy.fromJson(raw, absolute);
  }

  get categoryNames(): string[] {
    return this.categories.map((category) => category.name);
  }

  /** The first blocked category the text falls in for this direction, or undefined. */
  check(text: string, direction: ModerationDirection): ModerationMatch | undefined {
    return this.checkFrom(text, undefined, direction);
  }

  /**
   * `check` of a text that grew (a streamed answer) where a check of its first `checkedUpTo`
   * characters found nothing: a new match must reach into the added part, so each expression that
   * allows it reads only the text from a whitespace at most its look-back (GROWN_TEXT_LOOK_BACK, or
   * its longest possible match where longer) before that part; one whose matches have no bound reads
   * the whole text. Checking the whole answer at every delta made a streamed answer's checks
   * quadratic in its length (≈ 17 ms for a 1,000-delta answer of 5 KB; issue 14, tenth pass).
   */
  checkGrown(text: string, checkedUpTo: number, direction: ModerationDirection): ModerationMatch | undefined {
    // Where each distinct look-back starts reading (after a whitespace character: a keyword's boundary
    // test then sees what precedes the piece as it would in the whole text), and that piece.
    const pieces = this.lookBacks.map((lookBack): Piece => {
      if (checkedUpTo <= lookBack) return { from: 0, text };
      const whitespace = text.slice(checkedUpTo - lookBack, checkedUpTo).search(/\s/u);
      if (whitespace < 0) return { from: 0, text };
      const from = checkedUpTo - lookBack + whitespace + 1;
      return { from, text: text.slice(from) };
    });
    return this.checkFrom(text, pieces, direction);
  }

  /** An expression of look-back slot i reads `pieces[i]` (none given: every expression reads the whole text). */
  private checkFrom(text: string, pieces: Piece[] | undefined, direction: ModerationDirection): ModerationMatch | undefined {
    const whole: Piece = { from: 0, text };
    for (const category of this.categories) {
      if (!category.directions.has(direction)) continue;
      for (const compiled of category.expressions) {
        const { from, text: read } = (compiled.slot >= 0 ? pieces?.[compiled.slot] : undefined) ?? whole;
        const match = compiled.expression.exec(read);
        if (match) {
          const at = match.index + from;
          const start = Math.max(0, at - EXCERPT_CONTEXT);
          const end = Math.min(text.length, at + match[0].length + EXCERPT_CONTEXT);
          return { category: category.name, excerpt: text.slice(start, end) };
        }
      }
    }
    return undefined;
  }
}

/**
 * The most UTF-16 code units a match of `pattern` can span (Infinity when unbounded: `*`, `+`, `{n,}`,
 * a back-reference, or a pattern the tokenizer does not read, e.g. one with a lookbehind). With the
 * `u` flag a character may be a surrogate pair, so each counts two. Lookaheads consume nothing.
 */
export function matchReach(pattern: string, flags: string): number {
  let root: Root;
  try {
    // The package is CommonJS whose module.exports is the tokenizer: its `default` here, in Node and in the bundle.
    root = (ret.default as unknown as typeof ret.tokenizer)(pattern);
  } catch {
    return Number.POSITIVE_INFINITY;
  }
  const perCharacter = flags.includes('u') || flags.includes('v') ? 2 : 1;
  const sequence = (tokens: Token[]): number => tokens.reduce((total, token) => total + reach(token), 0);
  const { types } = ret;
  const reach = (token: Token): number => {
    switch (token.type) {
      case types.GROUP:
        if (token.followedBy || token.notFollowedBy || token.lookBehind) return 0;
        return token.options ? Math.max(...token.options.map(sequence)) : sequence(token.stack ?? []);
      case types.POSITION:
        return 0;
      case types.SET:
      case types.CHAR:
        return perCharacter;
      case types.REPETITION: {
        const one = reach(token.value);
        if (one === 0) return 0;
        return token.max === null || token.max === Number.POSITIVE_INFINITY ? Number.POSITIVE_INFINITY : token.max * one;
      }
      case types.REFERENCE:
      default:
        return Number.POSITIVE_INFINITY;
    }
  };
  return root.options ? Math.max(...root.options.map(sequence)) : sequence(root.stack ?? []);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
