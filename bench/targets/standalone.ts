/** The standalone server: protocol endpoints plus the protected route. */
import { createServer } from '../../adapters/node'
import { PROTECTED_PATH, benchAuth, fooBar, storeStats, type FooBar, type Start } from './common'

/**
 * With BENCH_METRICS_TWIN=1, a second standalone server with metrics on listens in the same
 * process (another port): metrics on and off are then compared within one process, in
 * alternating slices, so nothing that differs between two processes (heap, JIT, where the
 * scheduler puts them) is counted as the cost of recording metrics.
 */
export const start: Start = async port => {
  const running = await startStandalone(port)
  if (process.env.BENCH_METRICS_TWIN !== '1') return running
  const twin = await startStandalone(0, { metrics: true })
  let twinOpen = true
  const closeTwins = async () => {
    if (!twinOpen) return
    twinOpen = false
    await twin.close()
  }
  return {
    ...running,
    twins: { metrics: twin.port },
    closeTwins,
    close: async () => {
      await closeTwins()
      await running.close()
    },
  }
}

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
