/**
 * The only form of a provider key that leaves the vault: a recognisable vendor prefix and the last
 * few characters, e.g. `sk-or-…a1b2`. At most a third of the key is ever shown, so short keys show
 * less (or nothing but the ellipsis).
 */
export function maskSecret(secret: string): string {
  const budget = Math.floor(secret.length / 3);
  const tailLength = Math.min(4, budget);
  const vendorPrefix = /^[A-Za-z]{2,5}-(?:[A-Za-z]{2,5}-)?/.exec(secret)?.[0] ?? '';
  const head = vendorPrefix.length + tailLength <= budget ? vendorPrefix : '';
  const tail = tailLength > 0 ? secret.slice(-tailLength) : '';
  return `${head}…${tail}`;
}
