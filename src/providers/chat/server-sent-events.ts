/**
 * A minimal Server-Sent Events reader: yields the `data` of each event (multi-line data joined
 * with "\n"), skipping `:` comment lines (OpenRouter's keep-alive) and events without data.
 * Accepts \n, \r\n and \r line endings, as js-genai and the SSE spec do.
 */
export async function* readServerSentEvents(body: AsyncIterable<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffer = '';
  let dataLines: string[] = [];
  const flushLine = function* (line: string): Generator<string> {
    if (line === '') {
      if (dataLines.length > 0) yield dataLines.join('\n');
      dataLines = [];
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') dataLines.push(value);
  };
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    let match: RegExpExecArray | null;
    const lineBreak = /\r\n|\r|\n/g;
    let consumed = 0;
    while ((match = lineBreak.exec(buffer)) !== null) {
      // A lone \r at the very end may be the first half of \r\n: wait for the next chunk.
      if (match[0] === '\r' && match.index === buffer.length - 1) break;
      yield* flushLine(buffer.slice(consumed, match.index));
      consumed = match.index + match[0].length;
    }
    buffer = buffer.slice(consumed);
  }
  buffer += decoder.decode();
  if (buffer !== '') yield* flushLine(buffer.replace(/\r$/, ''));
  if (dataLines.length > 0) yield dataLines.join('\n');
}
