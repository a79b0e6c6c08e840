/**
 * In-process cost of the server's hot paths, without HTTP: what one request costs the core.
 * Less sensitive to a busy machine than the load test (it times only the server's own calls),
 * so it is the tool to judge an optimization. Crypto runs on the calling thread here
 * (`crypto.ecdsa: 'inline'`), so the times are CPU cost, not a hand-over's latency.
 *
 *   npx tsx bench/micro.ts [name filter]   # MICRO_ROUNDS (default 7) rounds of MICRO_N (5000)
 *
 * Prints the median µs per operation over the rounds. MICRO_PROFILE=file.cpuprofile writes a V8
 * CPU profile of the timed loops only (not of the preparation), for Chrome DevTools or speedscope.
 */
import { writeFileSync } from 'node:fs'
import { Session as Inspector } from 'node:inspector'
import {
  MemoryStore,
  NodeSigningKey,
  TtlMap,
  createBetterAuth,
  decodeToken,
  formatTimestamp,
  parseEnvelope,
  type BetterAuthServer,
} from '../src'
import {
  accessBody,
  challengeOf,
  createSessionBody,
  hash,
  newAccount,
  nonce,
  openSession,
  refreshBody,
  requestSessionBody,
  type Account,
  type Session,
} from './protocol'

const N = Number(process.env.MICRO_N ?? 5000)
const PROFILE = process.env.MICRO_PROFILE
const inspector = new Inspector()
if (PROFILE !== undefined) inspector.connect()

function post(method: string, params: object = {}): Promise<unknown> {
  return new Promise((resolve, reject) =>
    inspector.post(method, params, (error, result) => (error ? reject(error) : resolve(result)))
  )
}
const ROUNDS = Number(process.env.MICRO_ROUNDS ?? 7)

const silent = {
  error: () => undefined,
  warn: () => undefined,
  info: () => undefined,
  debug: () => undefined,
}

function payloadOf(body: string): unknown {
  return (JSON.parse(body) as { payload: { response: unknown } }).payload.response
}

async function ok(
  auth: BetterAuthServer,
  endpoint: 'createAccount' | 'requestSession' | 'createSession' | 'refreshSession',
  body: string
): Promise<unknown> {
  const result = await auth.handle(endpoint, body)
  if (result.status !== 200) throw new Error(`${endpoint}: ${result.body}`)
  return payloadOf(result.body)
}

/** Times `op` over prepared inputs; returns µs per call (only the timed part counts). */
const profiles: unknown[] = []

async function measure<T>(
  prepare: (i: number) => T | Promise<T>,
  op: (input: T) => unknown,
  n = N
): Promise<number> {
  const inputs: T[] = []
  for (let i = 0; i < n; i++) inputs.push(await prepare(i))
  if (PROFILE !== undefined) await post('Profiler.start')
  const start = process.hrtime.bigint()
  for (const input of inputs) await op(input)
  const micros = Number(process.hrtime.bigint() - start) / 1000 / n
  if (PROFILE !== undefined) {
    const { profile } = (await post('Profiler.stop')) as { profile: unknown }
    profiles.push(profile)
  }
  return micros
}

/**
 * A replay time-lock in its steady state: 200,000 nonces live, one expiring per new one (a fake
 * clock advancing 0.2 ms per reservation, 40 s lifetimes). Returns the next reservation.
 */
function steadyTimeLock(): () => boolean {
  let clockMs = 0
  let counter = 0
  const map = new TtlMap<true>({ now: () => clockMs })
  const reserve = (): boolean => {
    clockMs += 0.2
    return map.setIfAbsent(`0A${String(counter++).padStart(22, '0')}`, true, 40_000)
  }
  for (let i = 0; i < 400_000; i++) reserve()
  return reserve
}
let timeLock: (() => boolean) | undefined

async function main(): Promise<void> {
  const store = new MemoryStore()
  const auth = createBetterAuth({
    store,
    logger: silent,
    keys: { env: false },
    // The loop calls from one identity far faster than the default limits allow.
    rateLimit: false,
    // Signatures made and checked on the calling thread: CPU cost, not a hand-over's latency.
    crypto: { ecdsa: 'inline' },
    attributes: () => ({ permissionsByRole: { admin: ['read', 'write'] } }),
  })
  await auth.ready()
  if (PROFILE !== undefined) await post('Profiler.enable')

  const accounts: Account[] = []
  for (let i = 0; i < 8; i++) {
    const { account, body } = newAccount()
    await ok(auth, 'createAccount', body)
    accounts.push(account)
  }
  const open = (account: Account): Promise<Session> =>
    openSession(account, (operation, body) => ok(auth, operation, body))
  const sessions: Session[] = []
  for (let i = 0; i < 32; i++) sessions.push(await open(accounts[i % accounts.length] as Account))
  const accessKey = { publicKey: sessions[0]?.key.publicKeyText as string, rotationHash: hash('x') }

  const cases: Record<string, () => Promise<number>> = {
    'parseEnvelope (access request)': () =>
      measure(
        i => accessBody(sessions[i % 32] as Session),
        body => parseEnvelope(body)
      ),
    'decodeToken (gunzip + parse)': () =>
      measure(
        i => (sessions[i % 32] as Session).token,
        token => decodeToken(token)
      ),
    'verifyAccess (token cached)': () =>
      measure(
        i => Buffer.from(accessBody(sessions[i % 32] as Session)),
        body => auth.verifyAccess(body)
      ),
    'respond (sign a reply)': () =>
      measure(
        () => nonce(),
        n => auth.respond(n, { wasFoo: 'bar', wasBar: 'foo' })
      ),
    'verifyAccess + respond': () =>
      measure(
        i => Buffer.from(accessBody(sessions[i % 32] as Session)),
        async body => {
          const principal = await auth.verifyAccess<{ foo: string; bar: string }>(body)
          return auth.respond(principal.nonce, {
            wasFoo: principal.request.foo,
            wasBar: principal.request.bar,
          })
        }
      ),
    issueToken: () => {
      const now = Date.now()
      const claims = {
        device: accounts[0]?.device as string,
        identity: accounts[0]?.identity as string,
        publicKey: accessKey.publicKey,
        rotationHash: accessKey.rotationHash,
        issuedAt: formatTimestamp(now),
        expiry: formatTimestamp(now + 900_000),
        refreshExpiry: formatTimestamp(now + 43_200_000),
        attributes: { permissionsByRole: { admin: ['read', 'write'] } },
      }
      return measure(
        () => claims,
        c => auth.issueToken(c)
      )
    },
    requestSession: () =>
      measure(
        i => requestSessionBody((accounts[i % 8] as Account).identity),
        body => ok(auth, 'requestSession', body)
      ),
    createSession: () =>
      measure(
        async i => {
          const account = accounts[i % 8] as Account
          const challenge = challengeOf(
            await ok(auth, 'requestSession', requestSessionBody(account.identity))
          )
          // A fresh access key per session, as clients make them.
          const fresh = { ...accessKey, publicKey: NodeSigningKey.generate().publicKeyText }
          return createSessionBody(account, challenge, fresh)
        },
        body => ok(auth, 'createSession', body)
      ),
    refreshSession: async () => {
      // Each refresh consumes its session's next key, so every round opens its own sessions.
      const fresh: Session[] = []
      const n = Math.min(N, 2000)
      for (let i = 0; i < n; i++) fresh.push(await open(accounts[i % 8] as Account))
      return measure(
        i => refreshBody(fresh[i] as Session),
        body => ok(auth, 'refreshSession', body),
        n
      )
    },
    // Last, and built on first use: its 200,000 entries would slow the collector in every case.
    'time-lock reserve (200,000 live)': () => {
      const reserve = (timeLock ??= steadyTimeLock())
      return measure(
        () => undefined,
        () => reserve()
      )
    },
  }

  const only = process.argv[2]
  const results: Record<string, number> = {}
  for (const [name, run] of Object.entries(cases)) {
    if (only !== undefined && !name.includes(only)) continue
    const rounds: number[] = []
    await run() // warm-up
    for (let r = 0; r < ROUNDS; r++) rounds.push(await run())
    rounds.sort((a, b) => a - b)
    results[name] = rounds[Math.floor(rounds.length / 2)] as number
    console.log(`${name.padEnd(34)} ${(results[name] as number).toFixed(1).padStart(8)} µs`)
  }
  console.log(JSON.stringify({ micro: results, n: N, rounds: ROUNDS }))
  if (PROFILE !== undefined) {
    await post('Profiler.enable')
    // The last timed loop's profile (run with a name filter to pick the case).
    writeFileSync(PROFILE, JSON.stringify(profiles[profiles.length - 1]))
  }
  await auth.close()
}

main().catch(error => {
  console.error(error)
  process.exitCode = 1
})
