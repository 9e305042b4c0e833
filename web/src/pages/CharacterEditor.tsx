import { useEffect, useState, type FormEvent } from 'react';
import { api, type FullCharacter, type LoreEntry, type Voice } from '../api';
import { useApi } from '../hooks';
import { Problem } from '../ui';

const STYLES = ['casual', 'formal', 'playful', 'scholarly', 'supportive', 'sarcastic'] as const;
const CHAT_PROVIDERS = ['openrouter', 'openai', 'xai', 'gemini'] as const;
const BASE_TRAITS = ['warmth', 'humor', 'curiosity', 'formality', 'energy'] as const;

interface Draft {
  name: string;
  description: string;
  personality: string;
  traits: Record<string, number>;
  style: string;
  backstory: string;
  scenario: string;
  greeting: string;
  alternates: string[];
  voiceId: string;
  voiceSpeed: number;
  provider: string;
  model: string;
  temperature: string;
  maxTokens: string;
  lore: LoreEntry[];
}

function draftOf(character: FullCharacter | null): Draft {
  const traits: Record<string, number> = Object.fromEntries(BASE_TRAITS.map((trait) => [trait, 0.5]));
  Object.assign(traits, character?.personality_traits ?? {});
  return {
    name: character?.name ?? '',
    description: character?.description ?? '',
    personality: character?.personality ?? '',
    traits,
    style: character?.interaction_style ?? 'casual',
    backstory: character?.backstory ?? '',
    scenario: character?.scenario ?? '',
    greeting: character?.greeting ?? '',
    alternates: character?.alternate_greetings ?? [],
    voiceId: character?.voice_id ?? '',
    voiceSpeed: character?.voice_settings?.speed ?? 1,
    provider: character?.model_settings?.provider ?? '',
    model: character?.model_settings?.model ?? '',
    temperature: character?.model_settings?.temperature?.toString() ?? '',
    maxTokens: character?.model_settings?.max_tokens?.toString() ?? '',
    lore: character?.character_book?.entries.map((entry) => ({ ...entry })) ?? [],
  };
}

function bodyOf(draft: Draft, original: FullCharacter | null): Record<string, unknown> {
  const modelSettings: Record<string, unknown> = {};
  if (draft.provider) modelSettings.provider = draft.provider;
  if (draft.model.trim()) modelSettings.model = draft.model.trim();
  if (draft.temperature !== '') modelSettings.temperature = Number(draft.temperature);
  if (draft.maxTokens !== '') modelSettings.max_tokens = Number(draft.maxTokens);
  const lore = draft.lore
    .map((entry) => ({ ...entry, keys: entry.keys.map((key) => key.trim()).filter(Boolean) }))
    .filter((entry) => entry.content.trim() !== '' || entry.keys.length > 0);
  return {
    name: draft.name.trim(),
    description: draft.description,
    personality: draft.personality,
    personality_traits: draft.traits,
    interaction_style: draft.style,
    backstory: draft.backstory,
    scenario: draft.scenario,
    greeting: draft.greeting || null,
    alternate_greetings: draft.alternates.filter((text) => text.trim() !== ''),
    voice_id: draft.voiceId || null,
    voice_settings: { ...(original?.voice_settings ?? {}), speed: draft.voiceSpeed },
    model_settings: modelSettings,
    character_book: lore.length > 0 || original?.character_book ? { ...(original?.character_book ?? {}), entries: lore } : null,
  };
}

export function CharacterEditor({ slug, onDone }: { slug: string | null; onDone: (saved: string | null) => void }) {
  const [original, setOriginal] = useState<FullCharacter | null>(null);
  const [draft, setDraft] = useState<Draft | null>(slug ? null : draftOf(null));
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const voices = useApi<{ data: Voice[] }>('/v1/voices');

  useEffect(() => {
    if (!slug) return;
    api<FullCharacter>('GET', `/v1/characters/${encodeURIComponent(slug)}`)
      .then((character) => {
        setOriginal(character);
        setDraft(draftOf(character));
      })
      .catch(setError);
  }, [slug]);

  if (!draft) return error !== null ? <Problem error={error} /> : <p className="muted">Loading…</p>;
  const set = <K extends keyof Draft>(key: K, value: Draft[K]) => setDraft({ ...draft, [key]: value });
  const setLore = (index: number, entry: LoreEntry) => set('lore', draft.lore.map((item, at) => (at === index ? entry : item)));

  async function save(event: FormEvent) {
    event.preventDefault();
    if (!draft) return;
    setBusy(true);
    setError(null);
    try {
      const saved = slug
        ? await api<FullCharacter>('PATCH', `/v1/characters/${encodeURIComponent(slug)}`, bodyOf(draft, original))
        : await api<FullCharacter>('POST', '/v1/characters', bodyOf(draft, null));
      onDone(saved.name);
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  }

  const text = (id: keyof Draft, label: string, rows = 3, hint?: string) => (
    <div className="field full">
      <label htmlFor={`ce-${id}`}>{label}</label>
      {hint && <span className="muted small">{hint}</span>}
      <textarea id={`ce-${id}`} rows={rows} value={draft[id] as string} onChange={(event) => set(id, event.target.value as never)} />
    </div>
  );

  return (
    <form className="card editor" onSubmit={(event) => void save(event)} aria-labelledby="editor-title">
      <h3 id="editor-title">{slug ? `Edit ${original?.name ?? slug}` : 'New character'}</h3>
      <div className="field full">
        <label htmlFor="ce-name">Name</label>
        <input id="ce-name" required maxLength={200} value={draft.name} onChange={(event) => set('name', event.target.value)} />
      </div>
      {text('description', 'Description', 2)}
      {text('personality', 'Personality', 2)}
      <fieldset>
        <legend>Traits</legend>
        <div className="sliders">
          {Object.entries(draft.traits).map(([trait, value]) => (
            <div key={trait} className="slider">
              <label htmlFor={`trait-${trait}`}>{trait}</label>
              <input id={`trait-${trait}`} type="range" min={0} max={1} step={0.05} value={value} onChange={(event) => set('traits', { ...draft.traits, [trait]: Number(event.target.value) })} />
              <output htmlFor={`trait-${trait}`}>{value.toFixed(2)}</output>
            </div>
          ))}
        </div>
      </fieldset>
      <div className="row-form">
        <div className="field">
          <label htmlFor="ce-style">Interaction style</label>
          <select id="ce-style" value={draft.style} onChange={(event) => set('style', event.target.value)}>
            {STYLES.map((style) => (
              <option key={style}>{style}</option>
            ))}
          </select>
        </div>
      </div>
      {text('backstory', 'Backstory', 4)}
      {text('scenario', 'Scenario', 2)}
      {text('greeting', 'Greeting', 2)}
      <fieldset>
        <legend>Alternate greetings</legend>
        {draft.alternates.map((greeting, index) => (
          <div key={index} className="row-form">
            <div className="field grow">
              <label htmlFor={`alt-${index}`} className="sr-only">{`Alternate greeting ${index + 1}`}</label>
              <textarea id={`alt-${index}`} rows={2} value={greeting} onChange={(event) => set('alternates', draft.alternates.map((item, at) => (at === index ? event.target.value : item)))} />
            </div>
            <button type="button" className="ghost danger" onClick={() => set('alternates', draft.alternates.filter((_, at) => at !== index))} aria-label={`Remove alternate greeting ${index + 1}`}>
              Remove
            </button>
          </div>
        ))}
        <button type="button" className="ghost" onClick={() => set('alternates', [...draft.alternates, ''])}>
          Add a greeting
        </button>
      </fieldset>
      <fieldset>
        <legend>Voice settings</legend>
        <div className="row-form">
          <div className="field grow">
            <label htmlFor="ce-voice">Voice</label>
            <input id="ce-voice" list="ce-voices" value={draft.voiceId} onChange={(event) => set('voiceId', event.target.value)} placeholder="a voice name or a vendor voice id" />
            <datalist id="ce-voices">
              {voices.data?.data.map((voice) => (
                <option key={voice.id} value={voice.name}>
                  {`${voice.provider} · ${voice.language ?? ''} ${voice.gender ?? ''}`}
                </option>
              ))}
            </datalist>
          </div>
          <div className="field slider">
            <label htmlFor="ce-speed">Speed</label>
            <input id="ce-speed" type="range" min={0.5} max={2} step={0.05} value={draft.voiceSpeed} onChange={(event) => set('voiceSpeed', Number(event.target.value))} />
            <output htmlFor="ce-speed">{draft.voiceSpeed.toFixed(2)}×</output>
          </div>
        </div>
      </fieldset>
      <fieldset>
        <legend>Model settings</legend>
        <div className="row-form">
          <div className="field">
            <label htmlFor="ce-provider">Provider</label>
            <select id="ce-provider" value={draft.provider} onChange={(event) => set('provider', event.target.value)}>
              <option value="">Server default</option>
              {CHAT_PROVIDERS.map((provider) => (
                <option key={provider}>{provider}</option>
              ))}
            </select>
          </div>
          <div className="field grow">
            <label htmlFor="ce-model">Model</label>
            <input id="ce-model" value={draft.model} onChange={(event) => set('model', event.target.value)} placeholder="e.g. anthropic/claude-3.5-sonnet" />
          </div>
          <div className="field">
            <label htmlFor="ce-temperature">Temperature</label>
            <input id="ce-temperature" type="number" min={0} max={2} step={0.1} value={draft.temperature} onChange={(event) => set('temperature', event.target.value)} />
          </div>
          <div className="field">
            <label htmlFor="ce-max-tokens">Max tokens</label>
            <input id="ce-max-tokens" type="number" min={1} max={128000} value={draft.maxTokens} onChange={(event) => set('maxTokens', event.target.value)} />
          </div>
        </div>
      </fieldset>
      <fieldset>
        <legend>Lorebook</legend>
        {draft.lore.length === 0 && <p className="muted small">No entries. An entry is added to the prompt when one of its keys appears in the chat.</p>}
        {draft.lore.map((entry, index) => (
          <div key={index} className="lore">
            <div className="field">
              <label htmlFor={`lore-keys-${index}`}>{`Entry ${index + 1} keys`}</label>
              <input
                id={`lore-keys-${index}`}
                value={entry.keys.join(', ')}
                onChange={(event) => setLore(index, { ...entry, keys: event.target.value.split(',').map((key) => key.trimStart()) })}
                onBlur={() => setLore(index, { ...entry, keys: entry.keys.map((key) => key.trim()).filter(Boolean) })}
                placeholder="harbour, docks"
              />
            </div>
            <div className="field grow">
              <label htmlFor={`lore-content-${index}`}>{`Entry ${index + 1} text`}</label>
              <textarea id={`lore-content-${index}`} rows={2} value={entry.content} onChange={(event) => setLore(index, { ...entry, content: event.target.value })} />
            </div>
            <button type="button" className="ghost danger" onClick={() => set('lore', draft.lore.filter((_, at) => at !== index))} aria-label={`Remove lorebook entry ${index + 1}`}>
              Remove
            </button>
          </div>
        ))}
        <button type="button" className="ghost" onClick={() => set('lore', [...draft.lore, { keys: [], content: '' }])}>
          Add an entry
        </button>
      </fieldset>
      {error !== null && <Problem error={error} />}
      <div className="actions">
        <button type="submit" disabled={busy || draft.name.trim() === ''}>
          {busy ? 'Saving…' : slug ? 'Save changes' : 'Create character'}
        </button>
        <button type="button" className="ghost" onClick={() => onDone(null)}>
          Cancel
        </button>
      </div>
    </form>
  );
}
