import { BetterAuthClient, browserStores, generateRecoveryKey } from 'better-auth-protocol/client'

/** A client whose state (identity, device, token, keys) lives in IndexedDB database `name`. */
export function createClient(responseKey: string | undefined, name = 'my-app') {
  const stores = browserStores(name)
  // responseKey: the server's key, pinned (the server prints it; undefined: trust on first use).
  const client = new BetterAuthClient({ baseUrl: location.origin, responseKey, stores })
  return { client, stores }
}

/** Creates the account on first use (its recovery key shown once), signs in and calls. */
export async function quickStart(client: BetterAuthClient, show: (recoveryKey: string) => void) {
  if (!(await client.hasAccount())) {
    const recovery = await generateRecoveryKey()
    await client.createAccount(recovery.hash)
    show(recovery.text) // once: `bap-recovery-1:…`
  }
  await client.createSession()
  return client.accessRequest('/foo/bar', { foo: 'bar', bar: 'foo' })
}
