import { useEffect, useState, type FormEvent } from 'react';
import { api, download, memoryPage, type Memory, type MemoryHit, type MemoryScope } from '../api';
import { useCharacters } from '../hooks';
import { Problem, SelectField } from '../ui';

const SCOPES: { id: MemoryScope | ''; label: string }[] = [
  { id: '', label: 'All' },
  { id: 'core', label: 'Core' },
  { id: 'user', label: 'About me' },
  { id: 'group', label: 'Server' },
];
const scopeLabel = (scope: MemoryScope) => SCOPES.find((item) => item.id === scope)?.label ?? scope;

function MemoryRow({ memory, onChanged, onError }: { memory: Memory; onChanged: () => void; onError: (error: unknown) => void }) {
  const [editing, setEditing] = useState(false);
  const [text, setText] = useState(memory.content);
  const [busy, setBusy] = useState(false);
  const fieldId = `memory-edit-${memory.id}`;

  async function run(action: () => Promise<unknown>) {
    setBusy(true);
    try {
      await action();
      setEditing(false);
      onChanged();
    } catch (failure) {
      onError(failure);
    } finally {
      setBusy(false);
    }
  }

  return (
    <li className="card memory" data-memory-id={memory.id}>
      <div className="memory-head">
        <span className={`tag scope-${memory.scope}`}>{scopeLabel(memory.scope)}</span>
        <span className="muted small">
          importance {memory.importance.toFixed(2)} · {new Date(memory.created_at).toLocaleDateString()}
        </span>
      </div>
      {editing ? (
        <form
          className="memory-edit"
          onSubmit={(event) => {
            event.preventDefault();
            void run(() => api('PATCH', `/v1/memories/${memory.id}`, { content: text }));
          }}
        >
          <label htmlFor={fieldId} className="sr-only">
            Memory text
          </label>
          <textarea id={fieldId} rows={3} value={text} onChange={(event) => setText(event.target.value)} autoFocus />
          <div className="actions">
            <button type="submit" disabled={busy || text.trim() === ''}>
              Save
            </button>
            <button type="button" className="ghost" onClick={() => setEditing(false)}>
              Cancel
            </button>
          </div>
        </form>
      ) : (
        <p className="memory-text">{memory.content}</p>
      )}
      {!editing && (
        <div className="actions">
          <button type="button" className="ghost" onClick={() => setEditing(true)} aria-label={`Edit memory: ${memory.content.slice(0, 40)}`}>
            Edit
          </button>
          <button
            type="button"
            className="ghost danger"
            disabled={busy}
            aria-label={`Delete memory: ${memory.content.slice(0, 40)}`}
            onClick={() => {
              if (window.confirm('Delete this memory?')) void run(() => api('DELETE', `/v1/memories/${memory.id}`));
            }}
          >
            Delete
          </button>
        </div>
      )}
    </li>
  );
}

export function MemoriesPage() {
  const { characters, error: charactersError } = useCharacters();
  const [slug, setSlug] = useState('');
  const [scope, setScope] = useState<MemoryScope | ''>('');
  const [memories, setMemories] = useState<Memory[] | null>(null);
  /** The cursor of the next page of the list shown (null: it is all there). */
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [query, setQuery] = useState('');
  const [hits, setHits] = useState<MemoryHit[] | null>(null);
  const [draft, setDraft] = useState('');
  const [tick, setTick] = useState(0);

  useEffect(() => {
    if (!slug && characters?.[0]) setSlug(characters[0].slug);
  }, [characters, slug]);

  useEffect(() => {
    if (!slug) return;
    let live = true;
    memoryPage(slug, scope, null)
      .then((page) => live && (setMemories(page.data), setNext(page.next_cursor), setError(null)))
      .catch((failure: unknown) => live && setError(failure));
    return () => {
      live = false;
    };
  }, [slug, scope, tick]);

  const reload = () => setTick((value) => value + 1);

  async function more() {
    if (!next) return;
    try {
      const page = await memoryPage(slug, scope, next);
      setMemories((current) => [...(current ?? []), ...page.data]);
      setNext(page.next_cursor);
    } catch (failure) {
      setError(failure);
    }
  }

  /** Every memory of the scope, page after page, not only those shown. */
  async function exportAll() {
    try {
      const all: Memory[] = [];
      let cursor: string | null = null;
      do {
        const page = await memoryPage(slug, scope, cursor);
        all.push(...page.data);
        cursor = page.next_cursor;
      } while (cursor);
      download(`memories-${slug}.json`, { character: slug, scope: scope || 'all', memories: all });
    } catch (failure) {
      setError(failure);
    }
  }

  async function search(event: FormEvent) {
    event.preventDefault();
    if (!query.trim()) return setHits(null);
    try {
      setHits((await api<{ data: MemoryHit[] }>('POST', `/v1/characters/${encodeURIComponent(slug)}/memories/search`, { query: query.trim(), limit: 20 })).data);
      setError(null);
    } catch (failure) {
      setError(failure);
    }
  }

  async function add(event: FormEvent) {
    event.preventDefault();
    try {
      await api('POST', `/v1/characters/${encodeURIComponent(slug)}/memories`, { content: draft.trim(), scope: 'user' });
      setDraft('');
      reload();
    } catch (failure) {
      setError(failure);
    }
  }

  return (
    <section aria-labelledby="memories-title">
      <h2 id="memories-title">Memories</h2>
      {charactersError !== null && <Problem error={charactersError} />}
      {characters && characters.length === 0 && <p className="muted">No characters yet: memories belong to a character.</p>}
      {characters && characters.length > 0 && (
        <>
          <div className="row-form">
            <SelectField
              id="memory-character"
              label="Character"
              value={slug}
              onChange={(value) => (setSlug(value), setHits(null))}
              options={characters.map((character) => ({ value: character.slug, label: character.name }))}
            />
            <fieldset className="segmented">
              <legend>Scope</legend>
              {SCOPES.map((item) => (
                <label key={item.id} className={scope === item.id ? 'on' : undefined}>
                  <input type="radio" name="memory-scope" value={item.id} checked={scope === item.id} onChange={() => setScope(item.id)} />
                  {item.label}
                </label>
              ))}
            </fieldset>
            <button type="button" className="ghost" disabled={!memories} onClick={() => void exportAll()}>
              Export
            </button>
          </div>
          <form className="row-form" onSubmit={(event) => void search(event)} role="search">
            <div className="field grow">
              <label htmlFor="memory-query">Search memories</label>
              <input id="memory-query" type="search" value={query} onChange={(event) => setQuery(event.target.value)} placeholder="What does it remember about…" />
            </div>
            <button type="submit">Search</button>
          </form>
          {error !== null && <Problem error={error} />}
          {hits && (
            <>
              <h3>Search results</h3>
              {hits.length === 0 && <p className="muted">Nothing found.</p>}
              <ol className="hits" aria-label="Search results">
                {hits.map((hit) => (
                  <li key={hit.id} className={`card hit${hit.relevant ? '' : ' faint'}`}>
                    <span className="score" title="Score (similarity, recency, importance)">
                      {hit.score.toFixed(3)}
                    </span>
                    <span className="tag">{hit.source}</span> {hit.content}
                  </li>
                ))}
              </ol>
            </>
          )}
          <h3>Stored</h3>
          {memories && memories.length === 0 && <p className="muted">No memories in this scope yet.</p>}
          {memories && memories.length > 0 && (
            <ul className="memories" aria-label="Memories">
              {memories.map((memory) => (
                <MemoryRow key={`${memory.id}-${memory.updated_at}`} memory={memory} onChanged={reload} onError={setError} />
              ))}
            </ul>
          )}
          {memories && next && (
            <button type="button" className="ghost" onClick={() => void more()}>
              More memories
            </button>
          )}
          <form className="row-form" onSubmit={(event) => void add(event)}>
            <div className="field grow">
              <label htmlFor="memory-new">Add a memory about you</label>
              <input id="memory-new" value={draft} onChange={(event) => setDraft(event.target.value)} maxLength={2000} />
            </div>
            <button type="submit" disabled={!draft.trim()}>
              Add
            </button>
          </form>
        </>
      )}
    </section>
  );
}
