/**
 * The CPU cost of observability per protected request: access checks with metrics off, with
 * `createMetrics()`, and with a subscriber on the tracing channels as well. In process, crypto on
 * the calling thread (as bench/micro.ts), bodies signed before the timed loop.
 *
 *   npx tsx bench/metrics.ts     # METRICS_N (default 5000) checks, METRICS_ROUNDS (default 7)
 *
 * Prints the median µs of CPU (user + system) per access check, and the difference.
 */
import { tracingChannel } from 'node:diagnostics_channel'
import {
  ACCESS_CHANNEL,
  MemoryStore,
  NodeP256Verifier,
  createBetterAuth,
  createMetrics,
  type BetterAuthServer,
} from '../src'
import { median } from './load'
import { accessBody, newAccount, openSession } from './protocol'

const N = Number(process.env.METRICS_N ?? 5000)
const ROUNDS = Number(process.env.METRICS_ROUNDS ?? 7)
const OPTIONS = { route: '/orders/:id' }

async function core(metrics: boolean): Promise<BetterAuthServer> {
  const auth = createBetterAuth({
    store: new MemoryStore({ sweepIntervalMs: 0 }),
    keys: { env: false },
    rateLimit: false,
    crypto: { verifier: new NodeP256Verifier() },
    ...(metrics ? { metrics: createMetrics() } : {}),
  })
  await auth.ready()
  return auth
}

/** µs of CPU per check over one round of N checks. */
async function round(auth: BetterAuthServer): Promise<number> {
  const { account, body } = newAccount()
  await auth.run('createAccount', body)
  const session = await openSession(account, (operation, text) =>
    auth
      .run(operation, text)
      .then(reply => (JSON.parse(reply) as { payload: { response: unknown } }).payload.response)
  )
  const bodies = Array.from({ length: N }, () => accessBody(session))
  const before = process.cpuUsage()
  for (const text of bodies) await auth.verifyAccess(text, {}, OPTIONS)
  const used = process.cpuUsage(before)
  return (used.user + used.system) / N
}

async function main(): Promise<void> {
  const off = await core(false)
  const on = await core(true)
  const traced = await core(true)
  const channel = tracingChannel(ACCESS_CHANNEL)
  const noop = () => undefined
  const subscriber = { start: noop, end: noop, asyncStart: noop, asyncEnd: noop, error: noop }
  const results = { off: [] as number[], metrics: [] as number[], traced: [] as number[] }
  await round(off) // warm-up
  await round(on)
  for (let i = 0; i < ROUNDS; i++) {
    results.off.push(await round(off))
    results.metrics.push(await round(on))
    channel.subscribe(subscriber)
    results.traced.push(await round(traced))
    channel.unsubscribe(subscriber)
  }
  const base = median(results.off)
  for (const [name, values] of Object.entries(results)) {
    const m = median(values)
    const delta = m - base
    console.log(
      `${name.padEnd(8)} ${m.toFixed(1).padStart(7)} µs/check` +
        (name === 'off' ? '' : `  (${delta >= 0 ? '+' : ''}${delta.toFixed(1)} µs)`)
    )
  }
  await Promise.all([off.close(), on.close(), traced.close()])
}

void main()
