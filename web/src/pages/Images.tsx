import { useEffect, useRef, useState, type FormEvent } from 'react';
import { api, apiBlob, download, type ImageItem } from '../api';
import { Problem, SelectField } from '../ui';

const PROVIDERS = ['fal', 'openai', 'stability', 'kie'] as const;
const STYLES = [
  { id: 'fast', label: 'Fast' },
  { id: 'quality', label: 'Quality' },
  { id: 'pro', label: 'Pro' },
] as const;
const SIZES = ['1024x1024', '1024x768', '768x1024', '1536x1024', '512x512'] as const;

/** An image's bytes need the bearer token, so they are fetched and shown through an object URL. */
function Thumb({ image }: { image: ImageItem }) {
  const [src, setSrc] = useState<string | null>(null);
  useEffect(() => {
    if (image.status !== 'succeeded') return;
    let url: string | null = null;
    let live = true;
    apiBlob('GET', image.content_url)
      .then((blob) => {
        if (!live) return;
        url = URL.createObjectURL(blob);
        setSrc(url);
      })
      .catch(() => undefined);
    return () => {
      live = false;
      if (url) URL.revokeObjectURL(url);
    };
  }, [image.content_url, image.status]);
  if (image.status === 'failed') return <div className="thumb failed">{image.error?.message ?? 'failed'}</div>;
  if (!src) return <div className="thumb" aria-hidden="true" />;
  return <img className="thumb" src={src} alt={image.title ?? image.prompt} width={image.width ?? undefined} height={image.height ?? undefined} />;
}

export function ImagesPage() {
  const [prompt, setPrompt] = useState('');
  const [provider, setProvider] = useState('');
  const [style, setStyle] = useState('fast');
  const [size, setSize] = useState('1024x1024');
  const [favoritesOnly, setFavoritesOnly] = useState(false);
  const [images, setImages] = useState<ImageItem[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [tick, setTick] = useState(0);
  const reload = () => setTick((value) => value + 1);
  const timer = useRef<number | undefined>(undefined);

  useEffect(() => {
    let live = true;
    api<{ data: ImageItem[] }>('GET', `/v1/images?limit=100${favoritesOnly ? '&favorite=true' : ''}`)
      .then((page) => {
        if (!live) return;
        setImages(page.data);
        // Pending jobs: look again shortly until each has finished.
        if (page.data.some((image) => image.status === 'pending' || image.status === 'running')) timer.current = window.setTimeout(reload, 1000);
      })
      .catch((failure: unknown) => live && setError(failure));
    return () => {
      live = false;
      window.clearTimeout(timer.current);
    };
  }, [favoritesOnly, tick]);

  async function generate(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await api('POST', '/v1/images/generations', { prompt: prompt.trim(), style, size, async: true, ...(provider ? { provider } : {}) });
      reload();
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  }

  async function act(action: () => Promise<unknown>) {
    try {
      await action();
      reload();
    } catch (failure) {
      setError(failure);
    }
  }

  const pending = images?.filter((image) => image.status === 'pending' || image.status === 'running') ?? [];
  const done = images?.filter((image) => image.status === 'succeeded' || image.status === 'failed') ?? [];

  return (
    <section aria-labelledby="images-title">
      <h2 id="images-title">Images</h2>
      <form className="card studio" onSubmit={(event) => void generate(event)} aria-label="Studio">
        <div className="field full">
          <label htmlFor="image-prompt">Prompt</label>
          <textarea id="image-prompt" rows={3} value={prompt} onChange={(event) => setPrompt(event.target.value)} maxLength={4000} placeholder="A lamplit street in the rain, watercolour" />
        </div>
        <div className="row-form">
          <div className="field">
            <label htmlFor="image-provider">Provider</label>
            <select id="image-provider" value={provider} onChange={(event) => setProvider(event.target.value)}>
              <option value="">Automatic</option>
              {PROVIDERS.map((item) => (
                <option key={item} value={item}>
                  {item}
                </option>
              ))}
            </select>
          </div>
          <SelectField id="image-style" label="Style" value={style} onChange={setStyle} options={STYLES.map((item) => ({ value: item.id, label: item.label }))} />
          <div className="field">
            <label htmlFor="image-size">Size</label>
            <select id="image-size" value={size} onChange={(event) => setSize(event.target.value)}>
              {SIZES.map((item) => (
                <option key={item} value={item}>
                  {item.replace('x', ' × ')}
                </option>
              ))}
            </select>
          </div>
          <button type="submit" disabled={busy || prompt.trim() === ''}>
            {busy ? 'Sending…' : 'Generate'}
          </button>
        </div>
      </form>
      {error !== null && <Problem error={error} />}
      {pending.length > 0 && (
        <>
          <h3>In progress</h3>
          <ul className="pending" aria-label="Pending jobs">
            {pending.map((image) => (
              <li key={image.id} className="card">
                <span className="small">{image.prompt}</span>
                <progress aria-label={`${image.status}: ${image.prompt}`} />
                <span className="muted small">
                  {image.provider} · {image.status}
                </span>
              </li>
            ))}
          </ul>
        </>
      )}
      <div className="gallery-head">
        <h3>Gallery</h3>
        <label className="check">
          <input type="checkbox" checked={favoritesOnly} onChange={(event) => setFavoritesOnly(event.target.checked)} /> Favourites only
        </label>
      </div>
      {images && done.length === 0 && <p className="muted">{favoritesOnly ? 'No favourites yet.' : 'No images yet: describe one above.'}</p>}
      {done.length > 0 && (
        <ul className="gallery" aria-label="Gallery">
          {done.map((image) => (
            <li key={image.id} className="card tile" data-image-id={image.id} data-favorite={image.favorite}>
              <Thumb image={image} />
              <p className="small clamp" title={image.prompt}>
                {image.prompt}
              </p>
              <div className="actions">
                <button
                  type="button"
                  className="ghost icon"
                  aria-pressed={image.favorite}
                  aria-label={image.favorite ? 'Remove from favourites' : 'Add to favourites'}
                  onClick={() => void act(() => api('PATCH', `/v1/images/${image.id}`, { favorite: !image.favorite }))}
                >
                  {image.favorite ? '★' : '☆'}
                </button>
                {image.status === 'succeeded' && (
                  <button
                    type="button"
                    className="ghost"
                    onClick={() => void act(async () => download(`anima-${image.id}.${(image.content_type ?? 'image/png').split('/')[1]}`, await apiBlob('GET', `${image.content_url}?download=1`)))}
                  >
                    Download
                  </button>
                )}
                <button
                  type="button"
                  className="ghost danger"
                  onClick={() => {
                    if (window.confirm('Delete this image?')) void act(() => api('DELETE', `/v1/images/${image.id}`));
                  }}
                >
                  Delete
                </button>
              </div>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
