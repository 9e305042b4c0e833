import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { api, type Product, type ProviderKey, type Voice } from '../api';
import { useApi, useRecordEditor } from '../hooks';
import { EditCell, EditorActions, Field, formatCredits, formatPrice, Problem, SelectField, TableHead } from '../ui';

interface Component {
  status: string;
  kind?: string;
  latency_ms?: number;
  error?: string;
}
interface Health {
  status: 'ok' | 'degraded';
  version: string;
  database: Component;
  cache: Component;
  queue: Component;
  providers: Record<string, { configured: boolean }>;
}
/** A plan as GET /v1/admin/plans answers it. */
interface Plan {
  id: string;
  name: string;
  description: string;
  daily_credits: number;
  credits_per_1k_tokens: number;
  credits_per_image: number;
  credits_per_audio_second: number;
  requests_per_minute: number;
  concurrent_streams: number;
  voice_seconds_per_month: number;
  images_per_day: number;
  features: Record<string, unknown>;
  price: { amount_cents: number | null; currency: string; interval: 'month' };
  public: boolean;
  sort_order: number;
}
const PLAN_FEATURES = [
  ['platform_keys', 'Platform keys (the platform pays when the user has no key)'],
  ['long_term_memory', 'Long-term memory'],
  ['voice', 'Voice'],
  ['image_generation', 'Image generation'],
] as const;
/** The plan's numeric fields as the editor shows them: [field, label, credits (decimals) or a whole number]. */
const PLAN_NUMBERS = [
  ['daily_credits', 'Daily credits', 'whole'],
  ['credits_per_1k_tokens', 'Credits per 1,000 tokens', 'credits'],
  ['credits_per_image', 'Credits per image', 'credits'],
  ['credits_per_audio_second', 'Credits per audio second', 'credits'],
  ['requests_per_minute', 'Requests per minute', 'whole'],
  ['concurrent_streams', 'Concurrent streams', 'whole'],
  ['images_per_day', 'Images per day', 'whole'],
  ['voice_seconds_per_month', 'Voice seconds per month', 'whole'],
  ['sort_order', 'Sort order', 'whole'],
] as const;
type PlanNumber = (typeof PLAN_NUMBERS)[number][0];
interface PlanForm {
  id: string;
  name: string;
  description: string;
  numbers: Record<PlanNumber, string>;
  features: Record<(typeof PLAN_FEATURES)[number][0], boolean>;
  price: string;
  currency: string;
  public: boolean;
}
interface PlatformKey {
  id: string;
  name: string;
  role: string;
  prefix: string;
  user_id: string | null;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}
interface AdminUser {
  id: string;
  username: string | null;
  plan: { id?: string; name: string } | null;
  identities: string[];
  active: boolean;
  created_at: string;
  /** In the one-user view (GET /v1/admin/users/{id}), not in the list. */
  provider_keys?: ProviderKey[];
}
interface UserPage {
  data: AdminUser[];
  next_cursor: string | null;
}

function HealthPanel() {
  const health = useApi<Health>('/health/detailed');
  if (health.error !== null) return <Problem error={health.error} />;
  if (!health.data) return <p className="muted">Loading…</p>;
  const parts: [string, Component][] = [
    ['Database', health.data.database],
    ['Cache', health.data.cache],
    ['Queue', health.data.queue],
  ];
  return (
    <>
      <p>
        Status <strong data-testid="health-status">{health.data.status}</strong> · version {health.data.version}
      </p>
      <ul className="lights">
        {parts.map(([label, part]) => (
          <li key={label} className="light-row">
            <span className={`light ${part.status === 'ok' ? 'valid' : 'invalid'}`} aria-hidden="true" />
            <span className="provider">{label}</span>
            <span className="status">{[part.kind, part.status].filter(Boolean).join(' · ')}</span>
          </li>
        ))}
        {Object.entries(health.data.providers).map(([provider, state]) => (
          <li key={provider} className="light-row">
            <span className={`light ${state.configured ? 'valid' : ''}`} aria-hidden="true" />
            <span className="provider">{provider}</span>
            <span className="status">{state.configured ? 'platform key' : 'no platform key'}</span>
          </li>
        ))}
      </ul>
    </>
  );
}

function UsersPanel({ plans }: { plans: Plan[] }) {
  const [query, setQuery] = useState('');
  const [users, setUsers] = useState<AdminUser[] | null>(null);
  const [next, setNext] = useState<{ q: string; cursor: string } | null>(null);
  const [user, setUser] = useState<AdminUser | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [credits, setCredits] = useState('');

  /** One page of GET /v1/admin/users (newest first); a cursor appends to the list shown. */
  const loadPage = useCallback(async (q: string, cursor: string | null) => {
    const params = new URLSearchParams({ limit: '20' });
    if (q) params.set('q', q);
    if (cursor) params.set('cursor', cursor);
    try {
      const page = await api<UserPage>('GET', `/v1/admin/users?${params.toString()}`);
      setUsers((current) => (cursor ? [...(current ?? []), ...page.data] : page.data));
      setNext(page.next_cursor ? { q, cursor: page.next_cursor } : null);
      setError(null);
    } catch (failure) {
      setError(failure);
    }
  }, []);
  useEffect(() => void loadPage('', null), [loadPage]);

  function search(event: FormEvent) {
    event.preventDefault();
    void loadPage(query.trim(), null);
  }
  async function open(id: string) {
    setError(null);
    try {
      setUser(await api<AdminUser>('GET', `/v1/admin/users/${encodeURIComponent(id)}`));
    } catch (failure) {
      setUser(null);
      setError(failure);
    }
  }
  async function change(body: Record<string, unknown>) {
    if (!user) return;
    try {
      const updated = await api<AdminUser>('PATCH', `/v1/admin/users/${user.id}`, body);
      setUser(updated);
      setUsers((current) => current?.map((item) => (item.id === updated.id ? { ...item, plan: updated.plan, active: updated.active } : item)) ?? current);
    } catch (failure) {
      setError(failure);
    }
  }
  async function grant(event: FormEvent) {
    event.preventDefault();
    if (!user) return;
    try {
      await api('POST', `/v1/admin/users/${user.id}/credits`, { amount: Number(credits), reason: 'granted from the dashboard' });
      setCredits('');
    } catch (failure) {
      setError(failure);
    }
  }

  return (
    <>
      <form className="row-form" role="search" onSubmit={search}>
        <div className="field grow">
          <label htmlFor="admin-user-search">Search users</label>
          <input id="admin-user-search" type="search" value={query} onChange={(event) => setQuery(event.target.value)} placeholder="external id, username or id (empty: everyone)" />
        </div>
        <button type="submit">Search</button>
      </form>
      {error !== null && <Problem error={error} />}
      {users && users.length === 0 && <p className="muted">No users match.</p>}
      {users && users.length > 0 && (
        <ul className="user-list" aria-label="Users">
          {users.map((item) => (
            <li key={item.id}>
              <button type="button" className="ghost" aria-current={user?.id === item.id ? 'true' : undefined} onClick={() => void open(item.id)}>
                <strong>{item.username ?? 'no name'}</strong> <span className="muted small">{item.identities.join(', ') || item.id}</span>{' '}
                <span className="small">{item.plan?.name ?? 'no plan'}</span>
                {!item.active && <span className="small"> · inactive</span>}
              </button>
            </li>
          ))}
        </ul>
      )}
      {next && (
        <button type="button" className="ghost" onClick={() => void loadPage(next.q, next.cursor)}>
          More users
        </button>
      )}
      {user && (
        <div className="card" aria-label={`User ${user.username ?? user.id}`} role="region">
          <p>
            <strong>{user.username ?? user.id}</strong> <span className="muted small">{user.identities.join(', ')}</span>{' '}
            <span className="muted small">· since {new Date(user.created_at).toLocaleDateString()}</span>
          </p>
          {user.provider_keys && (
            <p className="small">
              {user.provider_keys.length === 0
                ? 'No provider keys of their own.'
                : `Provider keys: ${user.provider_keys.map((key) => `${key.provider} ${key.masked} (${key.status})`).join(', ')}`}
            </p>
          )}
          <div className="row-form">
            <SelectField
              id="admin-plan"
              label="Plan"
              value={plans.find((plan) => plan.name === user.plan?.name || plan.id === user.plan?.id)?.id ?? ''}
              onChange={(plan) => void change({ plan })}
              options={plans.map((plan) => ({ value: plan.id, label: plan.name }))}
            />
            <label className="check">
              <input type="checkbox" checked={user.active} onChange={(event) => void change({ active: event.target.checked })} /> Active
            </label>
          </div>
          <form className="row-form" onSubmit={(event) => void grant(event)}>
            <div className="field">
              <label htmlFor="admin-credits">Grant credits</label>
              <input id="admin-credits" type="number" value={credits} onChange={(event) => setCredits(event.target.value)} />
            </div>
            <button type="submit" disabled={!credits}>
              Grant
            </button>
          </form>
        </div>
      )}
    </>
  );
}

function planForm(plan: Plan | null): PlanForm {
  const numbers = Object.fromEntries(PLAN_NUMBERS.map(([field]) => [field, plan ? String(plan[field]) : ''])) as Record<PlanNumber, string>;
  const features = Object.fromEntries(PLAN_FEATURES.map(([feature]) => [feature, plan ? plan.features[feature] === true : false])) as PlanForm['features'];
  return {
    id: plan?.id ?? '',
    name: plan?.name ?? '',
    description: plan?.description ?? '',
    numbers,
    features,
    // The price in the currency's main unit (e.g. 9.99); empty: a custom price.
    price: plan?.price.amount_cents === null || plan === null ? '' : (plan.price.amount_cents / 100).toFixed(2),
    currency: plan?.price.currency ?? 'usd',
    public: plan?.public ?? true,
  };
}

/**
 * Plans: every limit and price an admin may set (GET/POST/PATCH /v1/admin/plans). A new plan sends
 * what is filled in (the server's defaults for the rest); a change sends the whole form. The server
 * validates (422 names the field); a change reaches every replica at once.
 */
function PlansPanel({ plans, onChanged }: { plans: Plan[]; onChanged: () => void }) {
  const [saved, setSaved] = useState<string | null>(null);
  const { editing, edit, update, submit, cancel, error } = useRecordEditor<Plan, PlanForm>({
    formOf: planForm,
    save: async (plan, form) => {
      setSaved(null);
      const body: Record<string, unknown> = { name: form.name.trim(), description: form.description.trim(), public: form.public, currency: form.currency.trim(), features: form.features };
      for (const [field] of PLAN_NUMBERS) if (form.numbers[field].trim() !== '') body[field] = Number(form.numbers[field]);
      body.price_cents = form.price.trim() === '' ? null : Math.round(Number(form.price) * 100);
      const answer = plan ? await api<Plan>('PATCH', `/v1/admin/plans/${encodeURIComponent(plan.id)}`, body) : await api<Plan>('POST', '/v1/admin/plans', { id: form.id.trim(), ...body });
      setSaved(`Plan ${answer.name} saved.`);
      onChanged();
    },
  });

  return (
    <>
      <div className="table-scroll">
      <table>
        <TableHead columns={['Plan', 'Daily credits', 'Per 1k tokens', 'Req./min', 'Images/day', 'Price']} actions="Edit" />
        <tbody>
          {plans.map((plan) => (
            <tr key={plan.id}>
              <td>
                {plan.name} {plan.public ? '' : <span className="muted small">(hidden)</span>}
              </td>
              <td>{formatCredits(plan.daily_credits)}</td>
              <td>{plan.credits_per_1k_tokens}</td>
              <td>{plan.requests_per_minute}</td>
              <td>{plan.images_per_day}</td>
              <td>{plan.price.amount_cents === null ? 'custom' : formatPrice(plan.price.amount_cents, plan.price.currency)}</td>
              <EditCell label={`Edit plan ${plan.name}`} onEdit={() => edit(plan)} />
            </tr>
          ))}
        </tbody>
      </table>
      </div>
      <button type="button" onClick={() => edit(null)}>
        New plan
      </button>
      {saved && (
        <p role="status" className="small">
          {saved}
        </p>
      )}
      {editing && (
        <form className="card" aria-label={editing.record ? `Plan ${editing.record.name}` : 'New plan'} onSubmit={(event) => void submit(event)}>
          <h4>{editing.record ? `Plan ${editing.record.name} (${editing.record.id})` : 'New plan'}</h4>
          <div className="row-form">
            {!editing.record && <Field id="plan-id" label="Id" value={editing.form.id} onChange={(id) => update({ id })} placeholder="lower-case, e.g. team" required />}
            <Field id="plan-name" label="Name" className="grow" value={editing.form.name} onChange={(name) => update({ name })} required />
            <Field id="plan-description" label="Description" className="full" value={editing.form.description} onChange={(description) => update({ description })} />
          </div>
          <div className="row-form">
            {PLAN_NUMBERS.map(([field, label, kind]) => (
              <Field
                key={field}
                id={`plan-${field}`}
                label={label}
                type="number"
                min={field === 'sort_order' ? -1000 : 0}
                step={kind === 'credits' ? 'any' : 1}
                value={editing.form.numbers[field]}
                onChange={(value) => update({ numbers: { ...editing.form.numbers, [field]: value } })}
              />
            ))}
            <Field id="plan-price" label="Monthly price (empty: custom)" type="number" min={0} step={0.01} value={editing.form.price} onChange={(price) => update({ price })} />
            <Field id="plan-currency" label="Currency" maxLength={3} value={editing.form.currency} onChange={(currency) => update({ currency: currency.toLowerCase() })} />
          </div>
          <fieldset className="checks">
            <legend>Features</legend>
            {PLAN_FEATURES.map(([feature, label]) => (
              <label className="check" key={feature}>
                <input type="checkbox" checked={editing.form.features[feature]} onChange={(event) => update({ features: { ...editing.form.features, [feature]: event.target.checked } })} /> {label}
              </label>
            ))}
            <label className="check">
              <input type="checkbox" checked={editing.form.public} onChange={(event) => update({ public: event.target.checked })} /> Listed publicly (GET /v1/plans)
            </label>
          </fieldset>
          <EditorActions existing={editing.record !== null} noun="plan" onCancel={cancel} />
        </form>
      )}
      {error !== null && <Problem error={error} />}
    </>
  );
}

function KeysPanel() {
  const keys = useApi<{ data: PlatformKey[] }>('/v1/keys');
  const [name, setName] = useState('');
  const [role, setRole] = useState('service');
  const [created, setCreated] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);

  async function create(event: FormEvent) {
    event.preventDefault();
    try {
      setCreated((await api<{ key: string }>('POST', '/v1/keys', { name: name.trim(), role })).key);
      setName('');
      keys.reload();
    } catch (failure) {
      setError(failure);
    }
  }
  async function revoke(id: string) {
    try {
      await api('DELETE', `/v1/keys/${id}`);
      keys.reload();
    } catch (failure) {
      setError(failure);
    }
  }
  return (
    <>
      <form className="row-form" onSubmit={(event) => void create(event)}>
        <div className="field grow">
          <label htmlFor="admin-key-name">Key name</label>
          <input id="admin-key-name" value={name} onChange={(event) => setName(event.target.value)} maxLength={100} />
        </div>
        <div className="field">
          <label htmlFor="admin-key-role">Role</label>
          <select id="admin-key-role" value={role} onChange={(event) => setRole(event.target.value)}>
            <option value="service">service</option>
            <option value="admin">admin</option>
          </select>
        </div>
        <button type="submit" disabled={!name.trim()}>
          Create key
        </button>
      </form>
      {created && (
        <p className="notice ok" role="status">
          Copy it now, it is shown once: <code className="secret">{created}</code>
        </p>
      )}
      {error !== null && <Problem error={error} />}
      {keys.error !== null && <Problem error={keys.error} />}
      {keys.data && (
        <table>
          <TableHead columns={['Name', 'Role', 'Prefix', 'Last used']} actions="Actions" />
          <tbody>
            {keys.data.data
              .filter((key) => !key.revoked_at)
              .map((key) => (
                <tr key={key.id}>
                  <td>{key.name}</td>
                  <td>{key.role}</td>
                  <td>
                    <code>{key.prefix}</code>
                  </td>
                  <td>{key.last_used_at ? new Date(key.last_used_at).toLocaleString() : '—'}</td>
                  <td>
                    <button type="button" className="ghost danger" onClick={() => void revoke(key.id)} aria-label={`Revoke ${key.name}`}>
                      Revoke
                    </button>
                  </td>
                </tr>
              ))}
          </tbody>
        </table>
      )}
    </>
  );
}

/**
 * The voice registry, deactivated voices included (GET /v1/admin/voices): add one, change one
 * (description, language, gender, the vendor's voice id), and turn one off or on again — an inactive
 * voice is no longer listed to users nor spoken with.
 */
function VoicesPanel() {
  const voices = useApi<{ data: Voice[] }>('/v1/admin/voices');
  const [form, setForm] = useState({ name: '', provider: 'elevenlabs', provider_voice_id: '', language: '', gender: '' });
  const [editing, setEditing] = useState<{ voice: Voice; description: string; language: string; gender: string; provider_voice_id: string } | null>(null);
  const [error, setError] = useState<unknown>(null);
  /** A switch shows its new state at once, while its PATCH is on its way (and goes back if refused). */
  const [switching, setSwitching] = useState<Record<string, boolean>>({});
  async function switchActive(voice: Voice, active: boolean) {
    setSwitching((current) => ({ ...current, [voice.id]: active }));
    if (!(await change(voice, { active }))) setSwitching(({ [voice.id]: _refused, ...rest }) => rest);
  }
  // The list as reloaded after a change holds the new states.
  useEffect(() => setSwitching({}), [voices.data]);
  async function add(event: FormEvent) {
    event.preventDefault();
    try {
      await api('POST', '/v1/admin/voices', { ...form, language: form.language || null, gender: form.gender || null });
      setForm({ ...form, name: '', provider_voice_id: '' });
      setError(null);
      voices.reload();
    } catch (failure) {
      setError(failure);
    }
  }
  async function change(voice: Voice, body: Record<string, unknown>): Promise<boolean> {
    try {
      await api('PATCH', `/v1/admin/voices/${encodeURIComponent(voice.id)}`, body);
      setError(null);
      setEditing(null);
      voices.reload();
      return true;
    } catch (failure) {
      setError(failure);
      return false;
    }
  }
  const field = (key: keyof typeof form, label: string) => <Field id={`admin-voice-${key}`} label={label} value={form[key]} onChange={(value) => setForm({ ...form, [key]: value })} />;
  return (
    <>
      <form className="row-form" onSubmit={(event) => void add(event)}>
        {field('name', 'Voice name')}
        <SelectField
          id="admin-voice-provider"
          label="Provider"
          value={form.provider}
          onChange={(provider) => setForm({ ...form, provider })}
          options={[
            { value: 'elevenlabs', label: 'elevenlabs' },
            { value: 'minimax', label: 'minimax' },
          ]}
        />
        {field('provider_voice_id', 'Vendor voice id')}
        {field('language', 'Language')}
        {field('gender', 'Gender')}
        <button type="submit" disabled={!form.name || !form.provider_voice_id}>
          Add voice
        </button>
      </form>
      {error !== null && <Problem error={error} />}
      {voices.error !== null && <Problem error={voices.error} />}
      {voices.data && (
        <div className="table-scroll">
          <table aria-label="Voice registry">
            <TableHead columns={['Voice', 'Provider', 'Language', 'Description', 'Active']} actions="Edit" />
            <tbody>
              {voices.data.data.map((voice) => (
                <tr key={voice.id}>
                  <td>
                    {voice.name} {voice.gender && <span className="muted small">{voice.gender}</span>}
                  </td>
                  <td>{voice.provider}</td>
                  <td>{voice.language ?? '–'}</td>
                  <td className="small">{voice.description || <span className="muted">–</span>}</td>
                  <td>
                    <label className="check">
                      <input type="checkbox" checked={switching[voice.id] ?? voice.active} aria-label={`${voice.name} active`} onChange={(event) => void switchActive(voice, event.target.checked)} />
                    </label>
                  </td>
                  <td>
                    <button
                      type="button"
                      className="ghost"
                      aria-label={`Edit voice ${voice.name}`}
                      onClick={() => setEditing({ voice, description: voice.description, language: voice.language ?? '', gender: voice.gender ?? '', provider_voice_id: voice.provider_voice_id })}
                    >
                      Edit
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {editing && (
        <form
          className="card"
          aria-label={`Voice ${editing.voice.name}`}
          onSubmit={(event) => {
            event.preventDefault();
            void change(editing.voice, { description: editing.description.trim(), language: editing.language.trim() || null, gender: editing.gender.trim() || null, provider_voice_id: editing.provider_voice_id.trim() });
          }}
        >
          <h4>Voice {editing.voice.name}</h4>
          <div className="row-form">
            <Field id="voice-edit-id" label="Vendor voice id" value={editing.provider_voice_id} onChange={(value) => setEditing({ ...editing, provider_voice_id: value })} required />
            <Field id="voice-edit-language" label="Language" value={editing.language} onChange={(language) => setEditing({ ...editing, language })} />
            <Field id="voice-edit-gender" label="Gender" value={editing.gender} onChange={(gender) => setEditing({ ...editing, gender })} />
            <Field id="voice-edit-description" label="Description" className="full" value={editing.description} onChange={(description) => setEditing({ ...editing, description })} />
          </div>
          <EditorActions existing noun="voice" onCancel={() => setEditing(null)} />
        </form>
      )}
    </>
  );
}

interface ProductForm {
  id: string;
  kind: 'credit_pack' | 'subscription';
  name: string;
  description: string;
  credits: string;
  price: string;
  currency: string;
  interval: 'month' | 'year';
  plan: string;
  active: boolean;
}

/**
 * What the market sells (GET/POST /v1/admin/products, PATCH /v1/admin/products/{id}): credit packs and
 * subscriptions, on sale or not. A subscription names its plan and interval; the server checks the rest.
 */
function ProductsPanel({ plans }: { plans: Plan[] }) {
  const products = useApi<{ data: Product[] }>('/v1/admin/products');
  const { editing, edit, update, submit, cancel, error } = useRecordEditor<Product, ProductForm>({
    formOf: (product) => ({
      id: product?.id ?? '',
      kind: product?.kind ?? 'credit_pack',
      name: product?.name ?? '',
      description: product?.description ?? '',
      credits: product ? String(product.credits) : '',
      price: product ? (product.price_cents / 100).toFixed(2) : '',
      currency: product?.currency ?? 'usd',
      interval: product?.interval ?? 'month',
      plan: product?.plan ?? plans[0]?.id ?? '',
      active: product?.active ?? true,
    }),
    save: async (product, form) => {
      const subscription = form.kind === 'subscription';
      const body: Record<string, unknown> = {
        name: form.name.trim(),
        description: form.description.trim() || null,
        credits: Number(form.credits || '0'),
        price_cents: Math.round(Number(form.price) * 100),
        currency: form.currency.trim(),
        interval: subscription ? form.interval : null,
        plan: subscription ? form.plan : null,
        active: form.active,
      };
      if (product) await api('PATCH', `/v1/admin/products/${encodeURIComponent(product.id)}`, body);
      else await api('POST', '/v1/admin/products', { id: form.id.trim(), kind: form.kind, ...body });
      products.reload();
    },
  });

  return (
    <>
      {products.error !== null && <Problem error={products.error} />}
      {products.data && products.data.data.length === 0 && <p className="muted">Nothing on sale yet.</p>}
      {products.data && products.data.data.length > 0 && (
        <div className="table-scroll">
          <table aria-label="Products">
            <TableHead columns={['Product', 'Credits', 'Price', 'Plan', 'On sale']} actions="Edit" />
            <tbody>
              {products.data.data.map((product) => (
                <tr key={product.id}>
                  <td>
                    {product.name} <span className="muted small">{product.kind === 'subscription' ? `subscription, per ${product.interval ?? 'month'}` : 'credit pack'}</span>
                  </td>
                  <td>{product.credits}</td>
                  <td>{formatPrice(product.price_cents, product.currency)}</td>
                  <td>{product.plan ?? '–'}</td>
                  <td>{product.active ? 'yes' : 'no'}</td>
                  <EditCell label={`Edit product ${product.name}`} onEdit={() => edit(product)} />
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <button type="button" onClick={() => edit(null)}>
        New product
      </button>
      {editing && (
        <form className="card" aria-label={editing.record ? `Product ${editing.record.name}` : 'New product'} onSubmit={(event) => void submit(event)}>
          <h4>{editing.record ? `Product ${editing.record.name} (${editing.record.id})` : 'New product'}</h4>
          <div className="row-form">
            {!editing.record && (
              <>
                <Field id="product-id" label="Id" value={editing.form.id} onChange={(id) => update({ id })} placeholder="e.g. credits_500" required />
                <SelectField
                  id="product-kind"
                  label="Kind"
                  value={editing.form.kind}
                  onChange={(kind) => update({ kind })}
                  options={[
                    { value: 'credit_pack', label: 'credit pack' },
                    { value: 'subscription', label: 'subscription' },
                  ]}
                />
              </>
            )}
            <Field id="product-name" label="Name" className="grow" value={editing.form.name} onChange={(name) => update({ name })} required />
            <Field id="product-description" label="Description" className="full" value={editing.form.description} onChange={(description) => update({ description })} />
            <Field
              id="product-credits"
              label={editing.form.kind === 'subscription' ? 'Bonus credits a period' : 'Credits'}
              type="number"
              min={0}
              step={1}
              value={editing.form.credits}
              onChange={(credits) => update({ credits })}
            />
            <Field id="product-price" label="Price" type="number" min={0.01} step={0.01} value={editing.form.price} onChange={(price) => update({ price })} required />
            <Field id="product-currency" label="Currency" maxLength={3} value={editing.form.currency} onChange={(currency) => update({ currency: currency.toLowerCase() })} />
            {editing.form.kind === 'subscription' && (
              <>
                <SelectField
                  id="product-interval"
                  label="Billed every"
                  value={editing.form.interval}
                  onChange={(interval) => update({ interval })}
                  options={[
                    { value: 'month', label: 'month' },
                    { value: 'year', label: 'year' },
                  ]}
                />
                <SelectField id="product-plan" label="Grants the plan" value={editing.form.plan} onChange={(plan) => update({ plan })} options={plans.map((plan) => ({ value: plan.id, label: plan.name }))} />
              </>
            )}
          </div>
          <label className="check">
            <input type="checkbox" checked={editing.form.active} onChange={(event) => update({ active: event.target.checked })} /> On sale
          </label>
          <EditorActions existing={editing.record !== null} noun="product" onCancel={cancel} />
        </form>
      )}
      {error !== null && <Problem error={error} />}
    </>
  );
}

export function AdminPage() {
  const plans = useApi<{ data: Plan[] }>('/v1/admin/plans');
  return (
    <section aria-labelledby="admin-title">
      <h2 id="admin-title">Admin</h2>
      <h3>Health</h3>
      <HealthPanel />
      <h3>Users</h3>
      {plans.error !== null && <Problem error={plans.error} />}
      {plans.data && <UsersPanel plans={plans.data.data} />}
      <h3>Plans</h3>
      {plans.data && <PlansPanel plans={plans.data.data} onChanged={plans.reload} />}
      <h3>Products</h3>
      {plans.data && <ProductsPanel plans={plans.data.data} />}
      <h3>Platform keys</h3>
      <KeysPanel />
      <h3>Voices</h3>
      <VoicesPanel />
    </section>
  );
}
