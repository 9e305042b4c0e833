import type { CharacterBook, CharacterBookEntry } from './types.js';

/**
 * Lorebook (Character Card V2 `character_book`) activation: which entries the recent chat
 * triggers, and the text they add to the prompt within a token budget. Pure: no I/O, no clock.
 *
 * - An entry fires when any of its `keys` appears in the scanned messages; with `selective` (and
 *   secondary keys present) a secondary key must appear too. `constant` entries always fire;
 *   `enabled: false` entries never do.
 * - Keys match as substrings, case-insensitively unless `case_sensitive`. A key written
 *   `/pattern/flags` is a regular expression (SillyTavern); with V3's `use_regex` every key is one.
 * - The book's `scan_depth` says how many of the latest messages are scanned (default 4);
 *   `recursive_scanning` lets activated entries' content trigger further entries.
 * - Budget: min(book `token_budget`, options.tokenBudget). When over it, the lowest `priority`
 *   is dropped first (ties: the later `insertion_order`); constant entries compete like others.
 * - The text is ordered by `insertion_order` (lower first); each entry keeps its `position`.
 */

export const DEFAULT_SCAN_DEPTH = 4;

export interface ActivatedEntry {
  /** Index of the entry in `book.entries`. */
  index: number;
  id: number | string | undefined;
  name: string | undefined;
  content: string;
  position: 'before_char' | 'after_char';
  insertionOrder: number;
  priority: number;
  constant: boolean;
  /** The key that triggered it; undefined for constant entries. */
  matchedKey: string | undefined;
  tokens: number;
}

export interface LorebookActivation {
  entries: ActivatedEntry[];
  /** Every activated entry's content, in insertion order, one per line block. */
  text: string;
  /** The same split by position, for prompt builders that place them around the character definition. */
  beforeCharText: string;
  afterCharText: string;
  /** Entries that matched but did not fit in the budget. */
  droppedForBudget: number;
  tokenBudget: number;
}

export interface LorebookOptions {
  tokenBudget: number;
  countTokens: (text: string) => number;
}

const REGEX_KEY = /^\/(.+)\/([dgimsuvy]*)$/s;

/** The text entries are scanned in, and which of the book's case-insensitive plain keys it holds (one pass, KeySearch). */
interface Haystack {
  text: string;
  present: Set<string>;
}

/**
 * Every occurrence of many keys in one pass over a text (Aho–Corasick over UTF-16 code units, so a
 * key is found exactly where `text.includes(key)` finds it). A book of hundreds of entries otherwise
 * searched the scanned messages once per key, every turn.
 */
export class KeySearch {
  private readonly next: Array<Map<number, number>> = [new Map()];
  private readonly fallback: number[] = [0];
  private readonly ends: string[][] = [[]];

  constructor(keys: Iterable<string>) {
    for (const key of keys) {
      let state = 0;
      for (let index = 0; index < key.length; index += 1) {
        const unit = key.charCodeAt(index);
        let to = this.next[state]!.get(unit);
        if (to === undefined) {
          to = this.next.length;
          this.next.push(new Map());
          this.fallback.push(0);
          this.ends.push([]);
          this.next[state]!.set(unit, to);
        }
        state = to;
      }
      this.ends[state]!.push(key);
    }
    // Breadth first: a state's fallback is the longest proper suffix of its path that is also a path.
    const queue = [...this.next[0]!.values()];
    for (let head = 0; head < queue.length; head += 1) {
      const state = queue[head]!;
      for (const [unit, to] of this.next[state]!) {
        queue.push(to);
        let fallback = this.fallback[state]!;
        while (fallback !== 0 && !this.next[fallback]!.has(unit)) fallback = this.fallback[fallback]!;
        this.fallback[to] = this.next[fallback]!.get(unit) ?? 0;
        this.ends[to]!.push(...this.ends[this.fallback[to]]!);
      }
    }
  }

  /** Whether it was given no key (a search would find nothing). */
  get empty(): boolean {
    return this.next[0]!.size === 0;
  }

  /** The keys that occur in `text`. */
  keysIn(text: string): Set<string> {
    const found = new Set<string>();
    let state = 0;
    for (let index = 0; index < text.length; index += 1) {
      const unit = text.charCodeAt(index);
      while (state !== 0 && !this.next[state]!.has(unit)) state = this.fallback[state]!;
      state = this.next[state]!.get(unit) ?? 0;
      for (const key of this.ends[state]!) found.add(key);
    }
    return found;
  }
}

type Matcher = (haystack: Haystack) => boolean;

function regexMatcher(source: string, flags: string): Matcher | undefined {
  try {
    // Stateful flags would make .test() depend on the previous call.
    const pattern = new RegExp(source, flags.replace(/[gy]/g, ''));
    return (haystack) => pattern.test(haystack.text);
  } catch {
    return undefined;
  }
}

function keyMatcher(key: string, entry: CharacterBookEntry): Matcher | undefined {
  if (key.trim() === '') return undefined;
  const caseSensitive = entry.case_sensitive === true;
  if (entry.use_regex === true) {
    const slashed = REGEX_KEY.exec(key);
    const matcher = slashed
      ? regexMatcher(slashed[1]!, slashed[2]! + (caseSensitive || slashed[2]!.includes('i') ? '' : 'i'))
      : regexMatcher(key, caseSensitive ? '' : 'i');
    if (matcher) return matcher;
  } else {
    const slashed = REGEX_KEY.exec(key);
    if (slashed) {
      const matcher = regexMatcher(slashed[1]!, slashed[2]!);
      if (matcher) return matcher;
    }
  }
  // Plain keys (and regular expressions that do not compile) match as text; case-insensitive ones
  // through the book's KeySearch over the lower-cased text.
  if (caseSensitive) return (haystack) => haystack.text.includes(key);
  const lowered = key.toLowerCase();
  return Object.assign((haystack: Haystack) => haystack.present.has(lowered), { searchedFor: lowered });
}

/** An entry's keys as matchers, each with its key; keys that are not strings or are blank are left out. */
type KeyMatchers = Array<{ key: string; matches: Matcher & { searchedFor?: string } }>;

function keyMatchers(keys: unknown, entry: CharacterBookEntry): KeyMatchers {
  if (!Array.isArray(keys)) return [];
  const matchers: KeyMatchers = [];
  for (const key of keys) {
    if (typeof key !== 'string') continue;
    const matches = keyMatcher(key, entry);
    if (matches) matchers.push({ key, matches });
  }
  return matchers;
}

/** Each book's KeySearch over its entries' case-insensitive plain keys, built once per book object. */
const bookSearches = new WeakMap<CharacterBook, KeySearch>();

function searchOf(book: CharacterBook): KeySearch {
  let search = bookSearches.get(book);
  if (!search) {
    const keys = new Set<string>();
    for (const entry of book.entries) {
      const { primary, secondary } = compiled(entry);
      for (const { matches } of [...primary, ...(secondary ?? [])]) if (matches.searchedFor !== undefined) keys.add(matches.searchedFor);
    }
    search = new KeySearch(keys);
    bookSearches.set(book, search);
  }
  return search;
}

/**
 * Each entry's matchers, built once per entry object: a character's book is the same object turn after
 * turn while the character is cached, and building them — a regular expression compiled per key — was
 * part of an activation's cost (with the text lower-cased and searched once per key; issue 14, tenth pass).
 */
const compiledEntries = new WeakMap<CharacterBookEntry, { primary: KeyMatchers; secondary: KeyMatchers | undefined }>();

function compiled(entry: CharacterBookEntry): { primary: KeyMatchers; secondary: KeyMatchers | undefined } {
  let found = compiledEntries.get(entry);
  if (!found) {
    found = {
      primary: keyMatchers(entry.keys, entry),
      secondary: entry.selective === true && hasUsableKeys(entry.secondary_keys) ? keyMatchers(entry.secondary_keys, entry) : undefined,
    };
    compiledEntries.set(entry, found);
  }
  return found;
}

function firstMatchingKey(matchers: KeyMatchers, haystack: Haystack): string | undefined {
  for (const { key, matches } of matchers) if (matches(haystack)) return key;
  return undefined;
}

function hasUsableKeys(keys: unknown): boolean {
  return Array.isArray(keys) && keys.some((key) => typeof key === 'string' && key.trim() !== '');
}

/** The key that triggers the entry in this text, or undefined when it does not fire. */
function triggers(entry: CharacterBookEntry, haystack: Haystack): string | undefined {
  const { primary, secondary } = compiled(entry);
  const key = firstMatchingKey(primary, haystack);
  if (key === undefined) return undefined;
  if (secondary && firstMatchingKey(secondary, haystack) === undefined) return undefined;
  return key;
}

function finiteOr(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}

const EMPTY: Omit<LorebookActivation, 'tokenBudget'> = { entries: [], text: '', beforeCharText: '', afterCharText: '', droppedForBudget: 0 };

export function activateLorebook(
  book: CharacterBook | null | undefined,
  recentMessages: Array<{ content: string }>,
  options: LorebookOptions,
): LorebookActivation {
  const bookBudget = book && typeof book.token_budget === 'number' && book.token_budget > 0 ? book.token_budget : Infinity;
  const tokenBudget = Math.max(0, Math.min(bookBudget, options.tokenBudget));
  if (!book || !Array.isArray(book.entries) || book.entries.length === 0) return { ...EMPTY, tokenBudget };

  const scanDepth = Math.max(0, Math.floor(finiteOr(book.scan_depth, DEFAULT_SCAN_DEPTH)));
  const scanned = scanDepth === 0 ? [] : recentMessages.slice(-scanDepth);
  let haystack = scanned.map((message) => message.content).join('\n');

  const matched = new Map<number, string | undefined>();
  book.entries.forEach((entry, index) => {
    if (entry.enabled === false || typeof entry.content !== 'string' || entry.content.trim() === '') return;
    if (entry.constant === true) matched.set(index, undefined);
  });

  // Scan; with recursive scanning, newly activated content is scanned again until nothing new fires.
  let pass = 0;
  for (;;) {
    const before = matched.size;
    const search = searchOf(book);
    const scannedText: Haystack = { text: haystack, present: search.empty ? new Set() : search.keysIn(haystack.toLowerCase()) };
    book.entries.forEach((entry, index) => {
      if (matched.has(index) || entry.enabled === false || typeof entry.content !== 'string' || entry.content.trim() === '') return;
      const key = triggers(entry, scannedText);
      if (key !== undefined) matched.set(index, key);
    });
    pass += 1;
    if (book.recursive_scanning !== true || matched.size === before || pass > book.entries.length) break;
    haystack = [haystack, ...[...matched.keys()].map((index) => book.entries[index]!.content)].join('\n');
  }

  const candidates: ActivatedEntry[] = [...matched.entries()].map(([index, matchedKey]) => {
    const entry = book.entries[index]!;
    return {
      index,
      id: entry.id,
      name: entry.name ?? (typeof entry.comment === 'string' && entry.comment ? entry.comment : undefined),
      content: entry.content,
      position: entry.position === 'after_char' ? 'after_char' : 'before_char',
      insertionOrder: finiteOr(entry.insertion_order, 0),
      priority: finiteOr(entry.priority, 0),
      constant: entry.constant === true,
      matchedKey,
      tokens: options.countTokens(entry.content),
    };
  });

  // Keep the highest priority first; among equals the earlier insertion order; skip what no longer fits.
  const byImportance = [...candidates].sort(
    (left, right) => right.priority - left.priority || left.insertionOrder - right.insertionOrder || left.index - right.index,
  );
  const kept: ActivatedEntry[] = [];
  let used = 0;
  for (const candidate of byImportance) {
    if (used + candidate.tokens > tokenBudget) continue;
    kept.push(candidate);
    used += candidate.tokens;
  }

  const entries = kept.sort((left, right) => left.insertionOrder - right.insertionOrder || left.index - right.index);
  const join = (selected: ActivatedEntry[]) => selected.map((entry) => entry.content).join('\n');
  return {
    entries,
    text: join(entries),
    beforeCharText: join(entries.filter((entry) => entry.position === 'before_char')),
    afterCharText: join(entries.filter((entry) => entry.position === 'after_char')),
    droppedForBudget: candidates.length - kept.length,
    tokenBudget,
  };
}
