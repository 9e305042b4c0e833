import { readFileSync } from 'node:fs';
import path from 'node:path';
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
  private constructor(private readonly categories: CompiledCategory[]) {}

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
        })),
        ...category.patterns.map((pattern) => {
          try {
            return { expression: new RegExp(pattern, category.flags), finiteLookBehind: !/\^|\(\?<[=!]/.test(pattern) };
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
    return this.checkFrom(text, 0, direction);
  }

  /**
   * `check` of a text that grew (a streamed answer) where a check of its first `checkedUpTo`
   * characters found nothing: a new match must reach into the added part, so the expressions that
   * allow it read only the text from a whitespace at most GROWN_TEXT_LOOK_BACK characters before
   * that part. Checking the whole answer at every delta made a streamed answer's checks quadratic in
   * its length (≈ 17 ms for a 1,000-delta answer of 5 KB; issue 14, tenth pass). A match longer than
   * the look-back is found by a check of the whole text (as the stream's end does).
   */
  checkGrown(text: string, checkedUpTo: number, direction: ModerationDirection): ModerationMatch | undefined {
    if (checkedUpTo <= GROWN_TEXT_LOOK_BACK) return this.check(text, direction);
    // After a whitespace character: a keyword's boundary test sees what precedes the piece as it would in the whole text.
    const whitespace = text.slice(checkedUpTo - GROWN_TEXT_LOOK_BACK, checkedUpTo).search(/\s/u);
    if (whitespace < 0) return this.check(text, direction);
    return this.checkFrom(text, checkedUpTo - GROWN_TEXT_LOOK_BACK + whitespace + 1, direction);
  }

  private checkFrom(text: string, from: number, direction: ModerationDirection): ModerationMatch | undefined {
    const piece = from > 0 ? text.slice(from) : text;
    for (const category of this.categories) {
      if (!category.directions.has(direction)) continue;
      for (const { expression, finiteLookBehind } of category.expressions) {
        const read = finiteLookBehind ? piece : text;
        const match = expression.exec(read);
        if (match) {
          const at = match.index + (read === piece ? from : 0);
          const start = Math.max(0, at - EXCERPT_CONTEXT);
          const end = Math.min(text.length, at + match[0].length + EXCERPT_CONTEXT);
          return { category: category.name, excerpt: text.slice(start, end) };
        }
      }
    }
    return undefined;
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
