/**
 * Quick start, the client: a new account, a session, and a signed request to the protected route.
 *
 *   RESPONSE_KEY=1AAI… npx tsx client.ts      # against http://127.0.0.1:3000 (AUTH_URL)
 */
import { BetterAuthClient, Blake3Hasher, NodeSigningKey } from 'better-auth-protocol'

// The server's response key, pinned: a reply not signed by it is refused.
const responseKey = process.env.RESPONSE_KEY
if (responseKey === undefined) throw new Error('set RESPONSE_KEY to the key the server printed')

const client = new BetterAuthClient({
  baseUrl: process.env.AUTH_URL ?? 'http://127.0.0.1:3000',
  responseKey,
})

async function main(): Promise<void> {
  // A new account; its recovery key stays offline (only a hash of it is sent).
  const recovery = NodeSigningKey.generate()
  await client.createAccount(new Blake3Hasher().sum(recovery.publicKeyText))
  // A session: an access token, refreshed by the client as it goes.
  await client.createSession()
  // A signed access request; the reply's signature and nonce are checked before it returns.
  const reply = await client.accessRequest<{ greeting: string }>('/hello', { name: 'world' })
  console.log(reply.greeting)
}

main().catch(error => {
  console.error(error)
  process.exit(1)
})
