import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOpenRouterFake, type OpenAiCompatibleFake } from '../fakes/index.js';
import { backends, startTestServer, type TestServer } from '../helpers/test-server.js';

/**
 * What OpenAI clients send passes through /v1/chat/completions (provider-apis.md §13): tools and
 * tool results, streamed tool-call deltas relayed exactly, response_format, stop, seed, n, usage on
 * request, and the model name echoed as asked. Driven by the real `openai` client against the
 * loopback OpenRouter fake; one server per backend for the file.
 */

const weatherTool: OpenAI.ChatCompletionTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather',
    strict: true,
    parameters: { type: 'object', properties: { query: { type: 'string' } }, required: ['query'], additionalProperties: false },
  },
};

describe.each(backends())('OpenAI pass-through on %s storage', (backend) => {
  let server: TestServer;
  let openrouter: OpenAiCompatibleFake;
  let client: OpenAI;

  const upstreamBody = () => openrouter.lastRequest('/chat/completions')!.body as Record<string, unknown> & { messages: Array<Record<string, unknown>> };

  beforeAll(async () => {
    openrouter = await startOpenRouterFake();
    server = await startTestServer(backend, { OPENROUTER_BASE_URL: openrouter.url, OPENROUTER_API_KEY: 'test-key', MEMORY_FORMATION_DELAY_MS: '600000' });
    const created = await server.request('POST', '/v1/characters', { body: { name: 'Vega', slug: 'vega', description: 'A weather-minded navigator.' } });
    expect(created.status).toBe(201);
    client = new OpenAI({ apiKey: server.internalKey, baseURL: `${server.url}/v1`, maxRetries: 0, defaultHeaders: { 'X-User-Id': 'tool-user' } });
  });
  afterAll(async () => {
    await server?.stop();
    await openrouter?.close();
  });

  it('round-trips a tool call without streaming: tools reach the model, the call comes back, the tool result gets the answer', async () => {
    const first = await client.chat.completions.create({
      model: 'shapesinc/vega',
      messages: [{ role: 'user', content: 'Weather in Paris?' }],
      tools: [weatherTool],
      tool_choice: 'auto',
      parallel_tool_calls: false,
    });
    expect(first.model).toBe('shapesinc/vega');
    expect(upstreamBody()).toMatchObject({ tools: [weatherTool], tool_choice: 'auto', parallel_tool_calls: false });
    const choice = first.choices[0]!;
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.content).toBeNull();
    const call = choice.message.tool_calls![0]! as OpenAI.ChatCompletionMessageFunctionToolCall;
    expect(call).toMatchObject({ type: 'function', function: { name: 'get_weather', arguments: JSON.stringify({ query: 'Weather in Paris?' }) } });

    const second = await client.chat.completions.create({
      model: 'shapesinc/vega',
      messages: [
        { role: 'user', content: 'Weather in Paris?' },
        { role: 'assistant', content: null, tool_calls: [call] },
        { role: 'tool', tool_call_id: call.id, content: '18 °C and sunny' },
      ],
      tools: [weatherTool],
    });
    expect(second.choices[0]!.message.content).toBe('Tool said: 18 °C and sunny');
    expect(second.choices[0]!.finish_reason).toBe('stop');
    // The model saw the client's history as sent: the assistant's call and the tool's answer last.
    const sent = upstreamBody().messages;
    expect(sent.at(-2)).toMatchObject({ role: 'assistant', tool_calls: [{ id: call.id, type: 'function', function: { name: 'get_weather' } }] });
    expect(sent.at(-1)).toEqual({ role: 'tool', tool_call_id: call.id, content: '18 °C and sunny' });
    expect(sent[0]).toMatchObject({ role: 'system' });
    // The first chat of a process loads the tokenizer's ranks: slow on a loaded 2-core machine.
  }, 120_000);

  it('relays streamed tool-call deltas so the openai stream helper and runTools assemble them', async () => {
    const stream = client.chat.completions.stream({
      model: 'character/vega',
      messages: [{ role: 'user', content: 'Weather in Oslo?' }],
      tools: [weatherTool],
      stream_options: { include_usage: true },
    });
    const fragments: OpenAI.ChatCompletionChunk[] = [];
    stream.on('chunk', (chunk) => fragments.push(chunk));
    const final = await stream.finalChatCompletion();
    expect(final.model).toBe('character/vega');
    expect(final.choices[0]!.finish_reason).toBe('tool_calls');
    expect(final.choices[0]!.message.tool_calls).toEqual([
      expect.objectContaining({ type: 'function', function: expect.objectContaining({ name: 'get_weather', arguments: JSON.stringify({ query: 'Weather in Oslo?' }) }) }),
    ]);
    // Exactly as the vendor sent them: id, type and name in the first fragment, then argument pieces.
    const toolDeltas = fragments.flatMap((chunk) => chunk.choices.flatMap((choice) => choice.delta.tool_calls ?? []));
    expect(toolDeltas[0]).toMatchObject({ index: 0, id: expect.stringMatching(/^call_/), type: 'function', function: { name: 'get_weather', arguments: '' } });
    expect(toolDeltas.slice(1).every((delta) => delta.id === undefined && delta.type === undefined)).toBe(true);
    expect(toolDeltas.length).toBeGreaterThanOrEqual(3);
    // include_usage: a last chunk with empty choices carries the usage.
    expect(fragments.at(-1)).toMatchObject({ choices: [], usage: { total_tokens: expect.any(Number) } });

    // The openai client's tool runner: streamed call → local function → streamed answer.
    const seen: string[] = [];
    const runner = client.chat.completions.runTools({
      model: 'character/vega',
      stream: true,
      messages: [{ role: 'user', content: 'Weather in Rome?' }],
      tools: [
        {
          type: 'function',
          function: {
            name: 'get_weather',
            description: 'Current weather',
            parameters: { type: 'object', properties: { query: { type: 'string' } } },
            parse: (text: string) => JSON.parse(text) as { query: string },
            function: (arguments_: { query: string }) => {
              seen.push(arguments_.query);
              return 'warm';
            },
          },
        },
      ],
    });
    expect(await runner.finalContent()).toBe('Tool said: warm');
    expect(seen).toEqual(['Weather in Rome?']);
  });

  it('passes response_format, stop and seed through; usage only when asked; n > 1 is a clear 422', async () => {
    const responseFormat = {
      type: 'json_schema' as const,
      json_schema: { name: 'reply', strict: true, schema: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'], additionalProperties: false } },
    };
    await client.chat.completions.create({ model: 'character/vega', messages: [{ role: 'user', content: 'JSON please' }], response_format: responseFormat, stop: ['\nUser:'], seed: 42, user: 'tool-user' });
    expect(upstreamBody()).toMatchObject({ response_format: responseFormat, stop: ['\nUser:'], seed: 42 });

    const plain = await client.chat.completions.create({ model: 'character/vega', messages: [{ role: 'user', content: 'no usage' }], stream: true });
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const chunk of plain) chunks.push(chunk);
    expect(chunks.every((chunk) => chunk.choices.length === 1)).toBe(true);

    const error = await client.chat.completions.create({ model: 'character/vega', messages: [{ role: 'user', content: 'two answers' }], n: 2 }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OpenAI.UnprocessableEntityError);
    expect((error as InstanceType<typeof OpenAI.APIError>).message).toMatch(/n must be 1/);
    expect((error as InstanceType<typeof OpenAI.APIError>).param ?? (error as { error?: { param?: string } }).error?.param).toBe('n');
  });
});
