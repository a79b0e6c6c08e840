/** The standalone server: protocol endpoints plus the protected route. */
import { createServer } from '../../adapters/node'
import type { EcdsaPlacement } from '../../src'
import { PROTECTED_PATH, benchAuth, fooBar, storeStats, type FooBar, type Start } from './common'

/**
 * With BENCH_METRICS_TWIN=1, two more standalone servers listen in the same process (other
 * ports): one with metrics on, one with its ECDSA inline, on the event loop (`crypto.ecdsa`; the
 * others' is BENCH_ECDSA's). Each is then compared with the first within one process, in
 * alternating slices, so nothing that differs between two processes (heap, JIT, where the
 * scheduler puts them) is counted as the cost of recording metrics or of where ECDSA runs.
 */
export const start: Start = async port => {
  const running = await startStandalone(port)
  if (process.env.BENCH_METRICS_TWIN !== '1') return running
  const twins = await Promise.all([
    startStandalone(0, { metrics: true }),
    startStandalone(0, { ecdsa: 'inline' }),
  ])
  const [metrics, inline] = twins
  let twinOpen = true
  const closeTwins = async () => {
    if (!twinOpen) return
    twinOpen = false
    await Promise.all(twins.map(twin => twin.close()))
  }
  return {
    ...running,
    twins: { metrics: metrics.port, inline: inline.port },
    closeTwins,
    close: async () => {
      await closeTwins()
      await running.close()
    },
  }
}

/**
 * The standalone server; with `metrics`, recording prom-client metrics, with `ecdsa`, its ECDSA
 * placed so (see benchAuth).
 */
export async function startStandalone(
  port: number,
  options: { metrics?: boolean; ecdsa?: EcdsaPlacement } = {}
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
