/**
 * A minimal Server-Sent Events reader: yields the `data` of each event (multi-line data joined
 * with "\n"), skipping `:` comment lines (OpenRouter's keep-alive) and events without data.
 * Accepts \n, \r\n and \r line endings, as js-genai and the SSE spec do.
 */
export async function* readServerSentEvents(body: AsyncIterable<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffer = '';
  let dataLines: string[] = [];
  /** Takes one line; an event's data when the line ends it. A plain function, not a generator: it runs for every line of a streamed answer. */
  const takeLine = (line: string): string | undefined => {
    if (line === '') {
      if (dataLines.length === 0) return undefined;
      const data = dataLines.length === 1 ? dataLines[0]! : dataLines.join('\n');
      dataLines = [];
      return data;
    }
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    if (field !== 'data') return undefined;
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    dataLines.push(value);
    return undefined;
  };
  const lineBreak = /\r\n|\r|\n/g;
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    let match: RegExpExecArray | null;
    lineBreak.lastIndex = 0;
    let consumed = 0;
    while ((match = lineBreak.exec(buffer)) !== null) {
      // A lone \r at the very end may be the first half of \r\n: wait for the next chunk.
      if (match[0] === '\r' && match.index === buffer.length - 1) break;
      const data = takeLine(buffer.slice(consumed, match.index));
      consumed = match.index + match[0].length;
      if (data !== undefined) yield data;
    }
    buffer = buffer.slice(consumed);
  }
  buffer += decoder.decode();
  if (buffer !== '') {
    const data = takeLine(buffer.replace(/\r$/, ''));
    if (data !== undefined) yield data;
  }
  if (dataLines.length > 0) yield dataLines.join('\n');
}
