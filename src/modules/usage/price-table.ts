import { readFileSync } from 'node:fs';
import { projectFile } from '../../infra/project-files.js';

export interface Price {
  promptPerMillion: number;
  completionPerMillion: number;
  perThousandCharacters?: number;
  perImage?: number;
}

/** Prices are data (config/prices.json), used when a provider reports no cost. */
const table = JSON.parse(readFileSync(projectFile('config', 'prices.json'), 'utf8')) as Record<string, Record<string, Price>>;

export function priceOf(provider: string, model: string | undefined): Price | undefined {
  const byProvider = table[provider];
  if (!byProvider) return undefined;
  if (model && byProvider[model]) return byProvider[model];
  return byProvider['*'];
}
