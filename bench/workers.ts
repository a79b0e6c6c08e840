/**
 * `serve --workers`: one process against two on the same port, measured side by side.
 *
 *   npx tsx bench/workers.ts
 *
 * Three servers run the command line's `serve` (rate limits off, `--log-level warn`, so neither
 * the limits of one client address nor a log line per request are measured): one process on the
 * memory store, one on SQLite, and `--workers 2` on SQLite. They take turns in slices of about
 * 2 s (bench/turns.ts: a change in the machine's load falls on all alike) with session
 * flows (requestSession + createSession over its challenge) and refreshes, on BENCH_CONNECTIONS
 * keep-alive connections (default 32). The server's CPU is that of the whole process tree (the
 * primary and its workers, all threads, from /proc), per flow or request; the load generator's
 * (this process) is shown too, since it shares the machine's cores.
 *
 * Then two costs measured alone. The SQLite store's part of a session flow (create and consume a
 * challenge, read the device's key, reserve a nonce: three writes and a read) from one process,
 * then from two at once on the same file: CPU µs per flow and flows/s (the writes of every
 * process take turns, which bounds what any number of workers gets from one SQLite file). And a
 * rate-limit check counted in the primary (what `--workers` does without Redis): a worker's
 * RateLimiterCluster consume, one IPC round trip, BENCH_CONNECTIONS at a time, in CPU µs of the
 * worker and of the primary (a session flow makes 7 such calls, a refresh 2).
 *
 * Environment: BENCH_DURATION (seconds per measurement, default 10), BENCH_CONNECTIONS,
 * UV_THREADPOOL_SIZE (default CPUs − 1, at least 1, as bench/run.ts), BENCH_CPU_PROF=dir (a V8
 * CPU profile of every server process, workers included), BENCH_WORKERS_ONLY=memory,sqlite,workers
 * (a subset of the servers).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import cluster from 'node:cluster'
import { mkdtempSync, rmSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { RateLimiterCluster, RateLimiterClusterMaster } from 'rate-limiter-flexible'
import { NodeSigningKey } from '../src'
import { SqliteStore } from '../src/stores/sqlite'
import { blast, combine, stats, type Sample } from './load'
import { treeCpu } from './proc'
import { takeTurns } from './turns'
import {
  createAccounts,
  hash,
  openSessions,
  refreshBody,
  type Account,
  accessKeys,
  sessionFlows as runSessionFlows,
} from './protocol'

const DURATION = Number(process.env.BENCH_DURATION ?? 10)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32)
const THREADPOOL = process.env.UV_THREADPOOL_SIZE ?? String(Math.max(1, availableParallelism() - 1))
const SLICE = 2
const CPU_PROF = process.env.BENCH_CPU_PROF
const ONLY = process.env.BENCH_WORKERS_ONLY?.split(',').map(s => s.trim())
const wanted = (name: string): boolean => ONLY === undefined || ONLY.includes(name)
const ROOT = join(__dirname, '..')

interface Server {
  name: string
  url: string
  child: ChildProcess
  accounts: Account[]
}

/** Starts `serve` with these arguments; resolves once it prints its address. */
function startServe(name: string, args: string[]): Promise<Server> {
  const child = spawn(
    process.execPath,
    [
      ...(CPU_PROF === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF}`]),
      '--import',
      'tsx',
      join(ROOT, 'cli', 'index.ts'),
      'serve',
      '--port',
      '0',
      ...args,
    ],
    {
      cwd: ROOT,
      env: {
        ...process.env,
        NODE_ENV: 'production',
        UV_THREADPOOL_SIZE: THREADPOOL,
        BETTER_AUTH_RATE_LIMIT: 'off',
        BETTER_AUTH_LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    }
  )
  let output = ''
  child.stderr?.on('data', chunk => (output += String(chunk)))
  return new Promise((resolve, reject) => {
    child.once('exit', code => reject(new Error(`${name} exited (${code}):\n${output}`)))
    child.stdout?.on('data', chunk => {
      output += String(chunk)
      const match = /server on (http:\/\/[\d.]+:\d+)/.exec(output)
      if (match !== null) resolve({ name, url: match[1] as string, child, accounts: [] })
    })
  })
}

const selfCpu = (): number => {
  const { user, system } = process.cpuUsage()
  return user + system
}

/** `count` session flows (whole flows on every connection); `ok` counts flows. */
async function sessionFlows(server: Server, count: number): Promise<() => Promise<Sample>> {
  const keys = accessKeys(Math.ceil(count / CONNECTIONS) * CONNECTIONS)
  let picked = 0
  const next = () => server.accounts[picked++ % server.accounts.length] as Account
  return () => runSessionFlows(server.url, CONNECTIONS, keys, next)
}

/** `count` refreshes of sessions opened (outside the clock) just before. */
async function refreshes(server: Server, count: number): Promise<() => Promise<Sample>> {
  const sessions = await openSessions(server.url, server.accounts, Math.min(count, 15_000))
  const bodies = sessions.map(refreshBody)
  return () => blast(server.url, '/session/refresh', bodies, CONNECTIONS)
}

type Workload = (server: Server, count: number) => Promise<() => Promise<Sample>>

interface Result {
  server: string
  workload: string
  rate: number
  p50: number
  p99: number
  serverCpu: number
  /** Of which the primary process (its own threads). */
  primaryCpu: number
  loadCpu: number
  failed: number
}

/** Every server in turn (bench/turns.ts), until each ran DURATION seconds. */
async function interleaved(servers: Server[], name: string, workload: Workload) {
  const rates: number[] = []
  for (const server of servers) {
    const sample = await (await workload(server, 500))()
    rates.push(sample.ok / sample.elapsed)
  }
  const { samples, counted } = await takeTurns(
    servers.map(server => ({
      prepare: (count: number) => workload(server, count),
      // The server's process tree (and of it, the primary alone), and the load generator.
      read: () => {
        const tree = treeCpu(server.child.pid as number)
        return [tree.all, tree.root, selfCpu()]
      },
    })),
    { duration: DURATION, slice: SLICE, rates, minRate: 50 }
  )
  return servers.map((server, i): Result => {
    const sample = combine(samples[i] as Sample[])
    const s = stats(sample)
    return {
      server: server.name,
      workload: name,
      rate: s.rps,
      p50: s.p50,
      p99: s.p99,
      serverCpu: (counted[i]?.[0] ?? 0) / sample.ok,
      primaryCpu: (counted[i]?.[1] ?? 0) / sample.ok,
      loadCpu: (counted[i]?.[2] ?? 0) / sample.ok,
      failed: s.failed,
    }
  })
}

/** CPU per rate-limit check counted in the primary: one worker, `count` consumes in a row. */
async function clusterRateLimitCost(count: number): Promise<{ worker: number; primary: number }> {
  new RateLimiterClusterMaster()
  cluster.setupPrimary({ exec: __filename, args: ['rate-limit-worker', String(count)] })
  const worker = cluster.fork()
  const before = selfCpu()
  const reported = await new Promise<{ micros: number }>((resolve, reject) => {
    worker.on('message', (message: { type?: string; micros?: number }) => {
      if (message.type === 'done') resolve({ micros: message.micros as number })
    })
    worker.once('exit', code => reject(new Error(`rate-limit worker exited (${code})`)))
  })
  const primary = selfCpu() - before
  worker.kill()
  return { worker: reported.micros / count, primary: primary / count }
}

const STORE_IDENTITY = hash('identity')
const STORE_DEVICE = hash('device')

/**
 * The store's part of a session flow, `count` times, in each of `processes` processes at once on
 * one SQLite file: CPU µs per flow (all processes) and flows per second (all together).
 */
async function sqliteStoreCost(
  path: string,
  processes: number,
  count: number
): Promise<{ cpu: number; rate: number }> {
  const setup = new SqliteStore({ path, sweepIntervalMs: 0 })
  await setup.accounts.createAccount({
    identity: STORE_IDENTITY,
    device: STORE_DEVICE,
    publicKey: NodeSigningKey.generate().publicKeyText,
    rotationHash: hash('next'),
    recoveryHash: hash('recovery'),
  })
  await setup.close()
  cluster.setupPrimary({ exec: __filename, args: ['store-worker', path, String(count)] })
  const workers = Array.from({ length: processes }, () => cluster.fork())
  // Every process warms up, then all start together.
  await Promise.all(
    workers.map(
      worker =>
        new Promise<void>((resolve, reject) => {
          worker.once('message', () => resolve())
          worker.once('exit', code => reject(new Error(`store worker exited (${code})`)))
        })
    )
  )
  const started = performance.now()
  const reports = await Promise.all(
    workers.map(
      worker =>
        new Promise<number>(resolve => {
          worker.once('message', (message: { micros: number }) => {
            resolve(message.micros)
            worker.removeAllListeners('exit')
            worker.kill()
          })
          worker.send('go')
        })
    )
  )
  const seconds = (performance.now() - started) / 1000
  const flows = processes * count
  return { cpu: reports.reduce((a, b) => a + b, 0) / flows, rate: flows / seconds }
}

async function storeWorker(path: string, count: number): Promise<void> {
  const store = new SqliteStore({ path, sweepIntervalMs: 0 })
  const flowOnce = async (i: number) => {
    const challenge = `${process.pid}-${i}`
    await store.challenges.create(challenge, STORE_IDENTITY, 60_000)
    await store.challenges.consume(challenge)
    await store.accounts.getDeviceKey(STORE_IDENTITY, STORE_DEVICE)
    await store.accessNonces.reserve(`n-${challenge}`, 40_000)
  }
  for (let i = 0; i < 500; i++) await flowOnce(-i - 1) // warm-up
  await new Promise(resolve => {
    process.once('message', resolve)
    process.send?.({ type: 'ready' })
  })
  const before = selfCpu()
  for (let i = 0; i < count; i++) await flowOnce(i)
  process.send?.({ type: 'done', micros: selfCpu() - before })
}

async function rateLimitWorker(count: number): Promise<void> {
  const limiter = new RateLimiterCluster({ points: 1e9, duration: 60, keyPrefix: 'bench' })
  await limiter.consume('warm-up')
  const before = selfCpu()
  // CONNECTIONS checks in flight at a time, as a worker under load has.
  let next = 0
  const run = async (): Promise<void> => {
    while (next < count) await limiter.consume(`ip-${next++ % 1000}`)
  }
  await Promise.all(Array.from({ length: CONNECTIONS }, run))
  process.send?.({ type: 'done', micros: selfCpu() - before })
}

function table(results: Result[]): string {
  const lines = [
    '| servers | workload | throughput /s | p50 ms | p99 ms | server CPU µs each ' +
      '(of which the primary) | load generator CPU µs each |',
    '|---|---|---|---|---|---|---|',
  ]
  for (const r of results) {
    lines.push(
      `| ${r.server} | ${r.workload} | ${r.rate.toFixed(0)} | ${r.p50.toFixed(1)} | ` +
        `${r.p99.toFixed(1)} | ${r.serverCpu.toFixed(0)}` +
        (r.server.startsWith('1 ') ? '' : ` (${r.primaryCpu.toFixed(0)})`) +
        ` | ${r.loadCpu.toFixed(0)} |` +
        (r.failed > 0 ? ` (${r.failed} failed)` : '')
    )
  }
  return lines.join('\n')
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'better-auth-bench-workers-'))
  const servers: Server[] = []
  try {
    if (wanted('memory')) {
      servers.push(await startServe('1 process, memory', ['--database', 'memory:']))
    }
    if (wanted('sqlite')) {
      servers.push(
        await startServe('1 process, SQLite', ['--database', `sqlite:${join(dir, 'one.db')}`])
      )
    }
    if (wanted('workers')) {
      servers.push(
        await startServe('2 workers, SQLite', [
          '--workers',
          '2',
          '--database',
          `sqlite:${join(dir, 'two.db')}`,
        ])
      )
    }
    for (const server of servers) server.accounts = await createAccounts(server.url, 256)
    process.stderr.write(
      `${availableParallelism()} CPUs, UV_THREADPOOL_SIZE=${THREADPOOL}, ${CONNECTIONS} ` +
        `connections, ${DURATION} s each\n`
    )
    const results = [
      ...(await interleaved(servers, 'session flows', sessionFlows)),
      ...(await interleaved(servers, 'refresh', refreshes)),
    ]
    const store = {
      one: await sqliteStoreCost(join(dir, 'store-1.db'), 1, 20_000),
      two: await sqliteStoreCost(join(dir, 'store-2.db'), 2, 10_000),
    }
    const ipc = await clusterRateLimitCost(20_000)
    console.log(table(results))
    console.log(
      `\nthe SQLite store's part of a session flow: 1 process ${store.one.cpu.toFixed(0)} µs CPU, ` +
        `${store.one.rate.toFixed(0)} flows/s; 2 processes on one file ` +
        `${store.two.cpu.toFixed(0)} µs CPU, ${store.two.rate.toFixed(0)} flows/s`
    )
    console.log(
      `\nrate-limit check counted in the primary (RateLimiterCluster): ` +
        `${ipc.worker.toFixed(1)} µs CPU in the worker + ${ipc.primary.toFixed(1)} µs in the primary`
    )
    console.log(JSON.stringify({ results, sqliteStore: store, rateLimitCheck: ipc }))
  } finally {
    // Each exits once closed (a CPU profile is written then).
    await Promise.all(
      servers.map(
        server =>
          new Promise(resolve => {
            server.child.once('exit', resolve)
            server.child.kill('SIGTERM')
          })
      )
    )
    rmSync(dir, { recursive: true, force: true })
  }
}

if (cluster.isWorker) {
  if (process.argv[2] === 'store-worker') {
    void storeWorker(process.argv[3] as string, Number(process.argv[4]))
  } else {
    void rateLimitWorker(Number(process.argv[3]))
  }
} else {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error)
      process.exit(1)
    }
  )
}
