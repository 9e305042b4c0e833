import { useEffect, useRef, useState } from 'react';
import { apiBlob, type Voice } from '../api';
import { useApi } from '../hooks';
import { Problem, SelectField } from '../ui';

const SAMPLE = 'Hello! This is how I sound.';

export function VoicesPage() {
  const [language, setLanguage] = useState('');
  const [gender, setGender] = useState('');
  const [provider, setProvider] = useState('');
  const params = new URLSearchParams();
  if (language) params.set('language', language);
  if (gender) params.set('gender', gender);
  if (provider) params.set('provider', provider);
  const voices = useApi<{ data: Voice[] }>(`/v1/voices?${params.toString()}`);
  const all = useApi<{ data: Voice[] }>('/v1/voices');
  const [playing, setPlaying] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const audio = useRef<HTMLAudioElement | null>(null);

  useEffect(() => () => audio.current?.pause(), []);

  const options = (pick: (voice: Voice) => string | null) => [...new Set((all.data?.data ?? []).map(pick).filter((value): value is string => Boolean(value)))].sort();

  async function preview(voice: Voice) {
    setError(null);
    audio.current?.pause();
    setPlaying(voice.name);
    try {
      const blob = await apiBlob('POST', '/v1/tts', { text: SAMPLE, voice: voice.name, provider: voice.provider });
      const url = URL.createObjectURL(blob);
      const player = new Audio(url);
      audio.current = player;
      player.onended = () => {
        URL.revokeObjectURL(url);
        setPlaying(null);
      };
      await player.play();
    } catch (failure) {
      setError(failure);
      setPlaying(null);
    }
  }

  const select = (id: string, label: string, value: string, set: (value: string) => void, values: string[]) => (
    <SelectField id={id} label={label} value={value} onChange={set} options={[{ value: '', label: 'Any' }, ...values.map((item) => ({ value: item, label: item }))]} />
  );

  return (
    <section aria-labelledby="voices-title">
      <h2 id="voices-title">Voices</h2>
      <div className="row-form" role="group" aria-label="Filters">
        {select('voice-language', 'Language', language, setLanguage, options((voice) => voice.language))}
        {select('voice-gender', 'Gender', gender, setGender, options((voice) => voice.gender))}
        {select('voice-provider', 'Provider', provider, setProvider, options((voice) => voice.provider))}
      </div>
      {voices.error !== null && <Problem error={voices.error} />}
      {error !== null && <Problem error={error} />}
      {voices.data && voices.data.data.length === 0 && <p className="muted">No voices match.</p>}
      {voices.data && voices.data.data.length > 0 && (
        <ul className="grid" aria-label="Voices">
          {voices.data.data.map((voice) => (
            <li key={voice.id} className="card voice">
              <button type="button" className="icon" onClick={() => void preview(voice)} aria-label={`Play a preview of ${voice.name}`} disabled={playing !== null}>
                {playing === voice.name ? '…' : '▶'}
              </button>
              <div>
                <strong>{voice.name}</strong>
                <div className="muted small">
                  {[voice.provider, voice.language, voice.gender, voice.cloned ? 'cloned' : null].filter(Boolean).join(' · ')}
                </div>
                {voice.description && <div className="small">{voice.description}</div>}
              </div>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
