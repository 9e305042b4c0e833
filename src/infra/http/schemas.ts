import { z } from 'zod';

/** RFC 9457 problem details, as every non-OpenAI route answers errors (contract §4). */
export const problemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    code: z.string(),
  })
  .passthrough()
  .describe('application/problem+json');

export const openAiErrorSchema = z.object({
  error: z.object({ message: z.string(), type: z.string(), code: z.string().nullable(), param: z.string().nullable() }).passthrough(),
});

/** The error responses most routes can give; listed in OpenAPI so clients see them. */
export const problemResponses = {
  400: problemSchema,
  401: problemSchema,
  403: problemSchema,
  404: problemSchema,
  422: problemSchema,
  429: problemSchema,
} as const;

export const paginationQuery = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().optional(),
});
