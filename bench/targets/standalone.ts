/** The standalone server: protocol endpoints plus the protected route. */
import { createServer } from '../../adapters/node'
import { PROTECTED_PATH, benchAuth, fooBar, storeStats, type FooBar, type Start } from './common'

export const start: Start = port => startStandalone(port)

/** The standalone server; with `metrics`, recording prom-client metrics (see benchAuth). */
export async function startStandalone(
  port: number,
  options: { metrics?: boolean } = {}
): ReturnType<Start> {
  const { auth, store } = benchAuth(options)
  await auth.ready()
  const server = createServer(auth)
  server.protect<FooBar>(PROTECTED_PATH, ({ request }) => fooBar(request))
  const address = await server.listen(port, '127.0.0.1')
  return {
    port: address.port,
    close: async () => {
      await server.close()
      await auth.close()
    },
    stats: () => storeStats(store),
  }
}
