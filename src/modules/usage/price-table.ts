import { readFileSync } from 'node:fs';
import { projectFile } from '../../infra/project-files.js';

export interface Price {
  promptPerMillion: number;
  completionPerMillion: number;
  perThousandCharacters?: number;
  perImage?: number;
  /** Image models: credits per image are the plan's `credits_per_image` times this (default 1). */
  creditWeight?: number;
}

/** Prices are data (config/prices.json), used when a provider reports no cost. */
const table = JSON.parse(readFileSync(projectFile('config', 'prices.json'), 'utf8')) as Record<string, Record<string, Price>>;

export function priceOf(provider: string, model: string | undefined): Price | undefined {
  const byProvider = table[provider];
  if (!byProvider) return undefined;
  if (model && byProvider[model]) return byProvider[model];
  return byProvider['*'];
}

/** How many of a plan's image credits one image of this model costs (config/prices.json `creditWeight`; 1 when unset). */
export function imageCreditWeight(provider: string, model: string | undefined): number {
  const weight = priceOf(provider, model)?.creditWeight;
  return weight !== undefined && Number.isFinite(weight) && weight > 0 ? weight : 1;
}
