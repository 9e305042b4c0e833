/**
 * Operations discovered from /openapi.json, with minimal valid bodies generated from their
 * schemas, so the authorization walk and the fuzz test cover routes other modules add later.
 */

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON Schema is walked structurally
type Schema = any;

export interface Operation {
  method: string;
  path: string;
  pathParams: string[];
  queryParams: Array<{ name: string; schema: Schema }>;
  bodySchema: Schema;
  bodyType: string | undefined;
  auth: boolean;
}

export function operationsOf(document: Schema): Operation[] {
  const operations: Operation[] = [];
  for (const [path, item] of Object.entries<Schema>(document.paths ?? {})) {
    for (const [method, operation] of Object.entries<Schema>(item)) {
      if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue;
      const parameters: Schema[] = [...(item.parameters ?? []), ...(operation.parameters ?? [])];
      const content = operation.requestBody?.content ?? {};
      const bodyType = Object.keys(content)[0];
      operations.push({
        method: method.toUpperCase(),
        path,
        pathParams: [...path.matchAll(/\{([^}]+)\}/g)].map((match) => match[1]!),
        queryParams: parameters.filter((parameter) => parameter.in === 'query').map((parameter) => ({ name: parameter.name, schema: resolve(document, parameter.schema) })),
        bodySchema: bodyType ? resolve(document, content[bodyType].schema) : undefined,
        bodyType,
        auth: !(Array.isArray(operation.security) && operation.security.length === 0),
      });
    }
  }
  return operations;
}

function resolve(document: Schema, schema: Schema): Schema {
  if (schema && typeof schema.$ref === 'string') {
    const name = schema.$ref.split('/').pop();
    return resolve(document, document.components?.schemas?.[name]);
  }
  return schema;
}

/** A small value that satisfies the schema (required members only, first enum, minimum lengths). */
export function exampleOf(schema: Schema, depth = 0): unknown {
  if (!schema || depth > 8) return undefined;
  if (schema.const !== undefined) return schema.const;
  if (Array.isArray(schema.enum)) return schema.enum[0];
  if (schema.default !== undefined) return schema.default;
  for (const union of ['anyOf', 'oneOf']) {
    if (Array.isArray(schema[union])) {
      const choice = schema[union].find((option: Schema) => option.type !== 'null') ?? schema[union][0];
      return exampleOf(choice, depth + 1);
    }
  }
  if (Array.isArray(schema.allOf)) return Object.assign({}, ...schema.allOf.map((part: Schema) => exampleOf(part, depth + 1)));
  const type = Array.isArray(schema.type) ? schema.type.find((entry: string) => entry !== 'null') : schema.type;
  switch (type) {
    case 'object': {
      const value: Record<string, unknown> = {};
      for (const name of schema.required ?? []) value[name] = exampleOf(schema.properties?.[name], depth + 1);
      return value;
    }
    case 'array':
      return Array.from({ length: schema.minItems ?? 0 }, () => exampleOf(schema.items, depth + 1));
    case 'integer':
    case 'number':
      return schema.minimum ?? (schema.exclusiveMinimum !== undefined ? schema.exclusiveMinimum + 1 : 1);
    case 'boolean':
      return true;
    case 'string':
      if (schema.format === 'uuid') return '00000000-0000-4000-8000-000000000000';
      if (schema.format === 'date-time') return new Date(Date.now() + 86_400_000).toISOString();
      if (schema.format === 'uri') return 'https://example.com/';
      return 'x'.repeat(Math.max(1, schema.minLength ?? 1));
    default:
      return undefined;
  }
}

/** Every string member of a value, as paths for replacement. */
export function stringPaths(value: unknown, prefix: Array<string | number> = []): Array<Array<string | number>> {
  if (typeof value === 'string') return [prefix];
  if (Array.isArray(value)) return value.flatMap((item, index) => stringPaths(item, [...prefix, index]));
  if (value && typeof value === 'object') return Object.entries(value).flatMap(([key, item]) => stringPaths(item, [...prefix, key]));
  return [];
}

export function replaceAt(value: unknown, path: Array<string | number>, replacement: unknown): unknown {
  if (path.length === 0) return replacement;
  const [head, ...rest] = path;
  if (Array.isArray(value)) {
    const copy = [...(value as unknown[])];
    copy[Number(head)] = replaceAt(copy[Number(head)], rest, replacement);
    return copy;
  }
  const copy = { ...(value as Record<string, unknown>) };
  copy[String(head)] = replaceAt(copy[String(head)], rest, replacement);
  return copy;
}

export function fillPath(path: string, values: Record<string, string>): string {
  return path.replace(/\{([^}]+)\}/g, (_match, name: string) => values[name] ?? 'x');
}

/** OpenAI's clients get OpenAI's envelope; everything else problem+json (contract §4). */
export function usesOpenAiEnvelope(path: string): boolean {
  // The OpenAI-compatible routes (chat, models, and transcriptions, which the openai SDK calls).
  return path === '/v1/chat/completions' || path === '/v1/audio/transcriptions' || path.startsWith('/v1/models');
}
