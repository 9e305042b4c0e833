/** Set-up steps the benchmarks that drive a real Anima server share. */

export interface BenchServer {
  url: string;
}

/** Creates the bench users (first request as each) and puts each on the enterprise plan: still metered and limited, but never throttled by the run. */
export async function enterpriseUsers(server: BenchServer, keys: { internalKey: string; adminKey: string }, externalIds: string[]): Promise<void> {
  for (const externalId of externalIds) {
    await fetch(`${server.url}/v1/me`, { headers: { authorization: `Bearer ${keys.internalKey}`, 'x-user-id': externalId } });
    const plan = await fetch(`${server.url}/v1/admin/users/${externalId}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${keys.adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ plan: 'enterprise' }),
    });
    if (!plan.ok) throw new Error(`could not put ${externalId} on the enterprise plan: ${await plan.text()}`);
  }
}

/** The `bench` character the chat benchmarks talk to (409: an earlier run on the same PostgreSQL database made it). */
export async function benchCharacter(server: BenchServer, adminKey: string): Promise<void> {
  const created = await fetch(`${server.url}/v1/characters`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'Bench', slug: 'bench', description: 'A calm astronomer who answers briefly.' }),
  });
  if (created.status !== 201 && created.status !== 409) throw new Error(`could not create the character: ${await created.text()}`);
}
