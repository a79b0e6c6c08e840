/** Bundled into a Web Worker by the browser test: a whole flow from a worker, memory stores. */
import { BetterAuthClient, generateRecoveryKey } from '../../src/client'

const scope = globalThis as unknown as {
  onmessage: ((event: { data: { origin: string } }) => void) | null
  postMessage(message: unknown): void
}

scope.onmessage = async event => {
  try {
    const client = new BetterAuthClient({ baseUrl: event.data.origin })
    await client.createAccount((await generateRecoveryKey()).hash)
    await client.createSession()
    await client.refreshSession()
    const reply = await client.accessRequest('/foo/bar', { foo: 'worker', bar: 1 })
    scope.postMessage({ ok: true, reply })
  } catch (error) {
    scope.postMessage({ ok: false, error: String((error as Error).stack ?? error) })
  }
}
