/**
 * The client side of the header form: `client.fetch` against the routes every example protects
 * that way, `GET /me` and `DELETE /notes/:id`. It signs the request in HTTP headers and checks
 * the reply's signature before it returns a standard `Response`.
 *
 *   make example-express          # or any other example, then:
 *   npx tsx examples/client-fetch.ts    # against http://127.0.0.1:8080 (BASE_URL, RESPONSE_KEY)
 */
import { BetterAuthClient, Blake3Hasher, NodeSigningKey } from 'better-auth-protocol'

const baseUrl = process.env.BASE_URL ?? 'http://127.0.0.1:8080'
// The server's response key: pinned with RESPONSE_KEY, else fetched once from /key/response.
const client = new BetterAuthClient({ baseUrl, responseKey: process.env.RESPONSE_KEY })

async function main(): Promise<void> {
  const recovery = NodeSigningKey.generate()
  await client.createAccount(new Blake3Hasher().sum(recovery.publicKeyText))
  await client.createSession()
  // The `fetch` signature: any method, any body, the reply as the route wrote it.
  const me = await client.fetch(`${baseUrl}/me`)
  console.log(me.status, await me.text()) // 200 {"identity":"E…","device":"E…"}
  const deleted = await client.fetch(`${baseUrl}/notes/42`, { method: 'DELETE' })
  console.log(deleted.status, await deleted.text()) // 200 {"deleted":"42"}
}

main().catch(error => {
  console.error(error)
  process.exit(1)
})
