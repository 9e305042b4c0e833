import { useEffect, useRef, useState, type FormEvent } from 'react';
import { api, memoryPage, streamCharacterChat, type ChatAnswer, type ChatPlace, type Character, type Memory } from '../api';
import { Problem, SelectField } from '../ui';

interface Turn {
  role: 'user' | 'assistant';
  content: string;
  answer?: ChatAnswer;
}

function characterFromHash(): string {
  return new URLSearchParams(window.location.hash.split('?')[1] ?? '').get('character') ?? '';
}

/** "2 memories used": on expand, their text (the memory list API, which shows what this key may see). */
function MemoriesUsed({ character, ids }: { character: string; ids: string[] }) {
  const [memories, setMemories] = useState<Memory[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const label = `${ids.length} ${ids.length === 1 ? 'memory' : 'memories'} used`;
  if (ids.length === 0) return <p className="muted small used">No memories used</p>;
  const load = () => {
    if (memories !== null) return;
    // Core and this user's memories, and group memories where the key may see them: page by page
    // until every memory of the answer is found or the list ends.
    void (async () => {
      const wanted = new Set(ids);
      const found: Memory[] = [];
      let cursor: string | null = null;
      do {
        const page: { data: Memory[]; next_cursor: string | null } = await memoryPage(character, '', cursor);
        for (const memory of page.data) if (wanted.delete(memory.id)) found.push(memory);
        cursor = page.next_cursor;
      } while (cursor && wanted.size > 0);
      setMemories(found);
    })().catch(setError);
  };
  return (
    <details className="used" onToggle={(event) => event.currentTarget.open && load()}>
      <summary className="small">{label}</summary>
      {error !== null && <Problem error={error} />}
      {memories === null && error === null && <p className="muted small">Loading…</p>}
      {memories && (
        <ul aria-label="Memories used" className="small">
          {ids.map((id) => {
            const memory = memories.find((item) => item.id === id);
            return <li key={id}>{memory ? memory.content : <span className="muted">A memory this key cannot list ({id.slice(0, 8)}).</span>}</li>;
          })}
        </ul>
      )}
    </details>
  );
}

function AnswerExtras({ character, answer }: { character: string; answer: ChatAnswer }) {
  return (
    <div className="extras">
      {answer.command === null && <MemoriesUsed character={character} ids={answer.memory_ids} />}
      {answer.audio_url && <audio controls src={answer.audio_url} preload="none" aria-label="Spoken answer" />}
      {answer.audio_error && (
        <p className="notice error small" role="alert">
          No voice for this answer: {answer.audio_error.message}
        </p>
      )}
    </div>
  );
}

export function ChatPage() {
  const [characters, setCharacters] = useState<Character[] | null>(null);
  const [slug, setSlug] = useState(characterFromHash);
  const [where, setWhere] = useState<'dm' | 'channel'>('dm');
  const [guildId, setGuildId] = useState('');
  const [channelId, setChannelId] = useState('');
  const [speak, setSpeak] = useState(false);
  const [turns, setTurns] = useState<Turn[]>([]);
  const [draft, setDraft] = useState('');
  const [streaming, setStreaming] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const log = useRef<HTMLOListElement>(null);

  useEffect(() => {
    api<{ data: Character[] }>('GET', '/v1/characters?limit=200')
      .then((page) => {
        setCharacters(page.data);
        setSlug((current) => current || page.data[0]?.slug || '');
      })
      .catch(setError);
  }, []);

  useEffect(() => {
    log.current?.lastElementChild?.scrollIntoView({ block: 'end' });
  }, [turns]);

  const place = (): ChatPlace | null => {
    if (where === 'dm') return {};
    if (!channelId.trim()) return null;
    return { channel_id: channelId.trim(), ...(guildId.trim() ? { guild_id: guildId.trim() } : {}) };
  };

  async function send(event: FormEvent) {
    event.preventDefault();
    const text = draft.trim();
    const at = place();
    if (!text || !slug || !at) return;
    const history: Turn[] = [...turns, { role: 'user', content: text }];
    setTurns([...history, { role: 'assistant', content: '' }]);
    setDraft('');
    setStreaming(true);
    setError(null);
    const setLast = (change: (last: Turn) => Turn) =>
      setTurns((current) => [...current.slice(0, -1), change(current[current.length - 1]!)]);
    let opened = false;
    try {
      // The server keeps the conversation (per character and place): only the new message is sent.
      const answer = await streamCharacterChat(slug, { content: text, ...at, ...(speak ? { voice: true } : {}) }, {
        onOpen: () => (opened = true),
        onToken: (token) => setLast((last) => ({ ...last, content: last.content + token })),
        onReplace: (content) => setLast((last) => ({ ...last, content })),
      });
      setLast((last) => ({ ...last, content: answer.response || last.content, answer }));
    } catch (failure) {
      setError(failure);
      if (opened) setTurns(history);
      else {
        // Refused before the turn began (e.g. 403 for a channel): nothing was said; the text goes back to the box.
        setTurns(turns);
        setDraft(text);
      }
    } finally {
      setStreaming(false);
    }
  }

  const placeLabel = where === 'dm' ? 'a direct message' : `channel ${channelId || '…'}${guildId ? ` on server ${guildId}` : ''}`;

  return (
    <section aria-labelledby="chat-title" className="chat">
      <h2 id="chat-title">Chat</h2>
      {characters && characters.length === 0 && <p className="muted">No characters yet: import one on the Characters page.</p>}
      <div className="chat-settings">
        {characters && characters.length > 0 && (
          <SelectField
            id="chat-character"
            label="Character"
            className="inline"
            value={slug}
            onChange={(value) => {
              setSlug(value);
              setTurns([]);
            }}
            options={characters.map((character) => ({ value: character.slug, label: character.name }))}
          />
        )}
        <div className="field inline">
          <label htmlFor="chat-where">Where</label>
          <select
            id="chat-where"
            value={where}
            onChange={(event) => {
              setWhere(event.target.value as 'dm' | 'channel');
              setTurns([]);
            }}
          >
            <option value="dm">Direct message</option>
            <option value="channel">A server channel</option>
          </select>
        </div>
        {where === 'channel' && (
          <>
            <div className="field inline">
              <label htmlFor="chat-guild">Server id</label>
              <input id="chat-guild" value={guildId} inputMode="numeric" autoComplete="off" onChange={(event) => setGuildId(event.target.value)} />
            </div>
            <div className="field inline">
              <label htmlFor="chat-channel">Channel id</label>
              <input id="chat-channel" value={channelId} inputMode="numeric" autoComplete="off" required onChange={(event) => setChannelId(event.target.value)} />
            </div>
          </>
        )}
        <label className="check">
          <input type="checkbox" checked={speak} onChange={(event) => setSpeak(event.target.checked)} /> Speak answers
        </label>
      </div>
      {where === 'channel' && (
        <p className="muted small">
          A channel is shared with its members. Only keys that can vouch for membership (the bot&apos;s service key, admins) may place you in one: a personal key is refused.
        </p>
      )}
      <ol className="log" ref={log} aria-live="polite" aria-label="Conversation">
        {turns.map((turn, index) => (
          <li key={index} className={`bubble ${turn.role}`}>
            <span className="text">{turn.content || (streaming && index === turns.length - 1 ? '…' : '')}</span>
            {turn.answer && <AnswerExtras character={slug} answer={turn.answer} />}
          </li>
        ))}
      </ol>
      {error !== null && <Problem error={error} />}
      <form className="composer" onSubmit={(event) => void send(event)}>
        <label htmlFor="chat-input" className="sr-only">
          Message
        </label>
        <textarea
          id="chat-input"
          rows={2}
          value={draft}
          placeholder={`Say something in ${placeLabel}… (Enter sends)`}
          onChange={(event) => setDraft(event.target.value)}
          onKeyDown={(event) => {
            if (event.key === 'Enter' && !event.shiftKey) {
              event.preventDefault();
              event.currentTarget.form?.requestSubmit();
            }
          }}
        />
        <button type="submit" disabled={streaming || !slug || draft.trim() === '' || place() === null}>
          {streaming ? 'Answering…' : 'Send'}
        </button>
      </form>
    </section>
  );
}
