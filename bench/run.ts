/**
 * The benchmark (`make bench`; `make bench-smoke` or BENCH_SMOKE=1 for a run under a minute).
 *
 * Every server runs in its own child process; this process is the load generator (bench/load.ts,
 * keep-alive connections). Access requests are signed before each timed slice (fresh nonce,
 * current timestamp; a slice lasts about 2 s, well inside the 30 s window). Targets compared
 * with each other (a bare route and its protected twin; ours and the reference) are measured in
 * alternating slices, so changes in the machine's load fall on both alike; each adapter's group
 * also measures node:http bare and the standalone server, for what the adapter adds against what
 * the standalone server adds in the same slices. The crypto floor of a
 * protected request (one ECDSA verify on a cached key + one signature, bench/child.ts) is timed
 * in the standalone server's process in the same slices, and every target of
 * docs/performance.md is printed as a ratio with its pass/fail mark, in a table and the JSON line.
 *
 * Environment:
 *   BENCH_DURATION        seconds per measured run (default 10; smoke 1)
 *   BENCH_CONNECTIONS     concurrent keep-alive connections (default 32)
 *   BENCH_SMOKE=1         short run: less time, 10,000 requests for the memory phase (a check that
 *                         it runs, not a measurement)
 *   BENCH_MEMORY_REQUESTS protected requests in the memory phase (default 1,000,000)
 *   BENCH_TARGETS         comma-separated subset: node,standalone,express,koa,nest,nest-fastify,
 *                         sessions,refresh,memory,reference (default all); node brings the
 *                         standalone server with metrics on and the crypto floor
 *   BENCH_REFERENCE_URL   a running reference server to compare with (see docs/performance.md)
 *   BENCH_REFERENCE_PID   its process, for its CPU figures (default: the process listening on
 *                         the URL's port, found in /proc)
 *   BENCH_PORT_BASE       first port for the servers (default: ephemeral ports)
 *   BENCH_CPU_PROF=dir    write a V8 CPU profile of every server into dir
 *   BENCH_SOURCES=1       run the servers' TypeScript sources under tsx (default: compiled once
 *                         per run by esbuild, as the published package runs)
 *   BENCH_ECDSA           where the servers' ECDSA runs: auto (the server's default), threadpool
 *                         or inline (crypto.ecdsa); the node group also runs the standalone
 *                         server with inline in the same process
 *   UV_THREADPOOL_SIZE    the servers' libuv threadpool, where ECDSA runs (default: CPUs − 1,
 *                         at least 1, as docs/performance.md recommends; node's own default is 4)
 */
import { fork, type ChildProcess } from 'node:child_process'
import { availableParallelism, cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { NodeSigningKey } from '../src'
import { compiledChild } from './compile'
import { headerFormRequest } from './header-form'
import {
  blast,
  blastRaw,
  combine,
  failedCount,
  median,
  rawRequest,
  stats,
  type Sample,
  type Stats,
} from './load'
import {
  accessBody,
  createAccounts,
  openSessions,
  refreshBody,
  type Account,
  type Session,
  accessKeys,
  sessionFlows as runSessionFlows,
} from './protocol'
import { BARE_PATH, BENCH_ECDSA, PROTECTED_PATH } from './targets/common'
import { listeningPid, treeCpu } from './proc'
import { takeTurns } from './turns'

const SMOKE = process.env.BENCH_SMOKE === '1'
const DURATION = Number(process.env.BENCH_DURATION ?? (SMOKE ? 1 : 10))
const WARMUP = SMOKE ? 1 : 3
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32)
const MEMORY_REQUESTS = Number(process.env.BENCH_MEMORY_REQUESTS ?? (SMOKE ? 10_000 : 1_000_000))
const MEMORY_WARMUP = SMOKE ? 5_000 : 100_000
/**
 * The shortest warm-up of the memory phase, seconds. A nonce lives 40 s in the time-lock, so it
 * holds L = rate × 40 s nonces after 40 s; but its Map reaches its steady size later. V8 grows a
 * Map's table when its live entries and holes fill it, doubling it while fewer than half are
 * holes, so with L live the table ends between 2L and 4L slots, and gets there at the first fill
 * after L nonces are live, which came within 90 s in runs 15 and 16 (not in run 17; see
 * docs/performance.md, runs 14–17). A warm-up of 45 s read before that step and after it (run
 * 14: heap 22.0 → 29.5 MB at 162,903 live nonces, about what doubling a table of 262,144 slots
 * adds; a Map of 160,000 keys with as many sets as deletes steps 28.0 → 34.8 MB alone, then stays
 * flat), which is the working set, not growth.
 */
const MEMORY_STEADY_SECONDS = 90
const REFERENCE_URL = process.env.BENCH_REFERENCE_URL?.replace(/\/+$/, '')
const PORT_BASE = Number(process.env.BENCH_PORT_BASE ?? 0)
const CPU_PROF = process.env.BENCH_CPU_PROF
/** BENCH_SOURCES=1: the servers run the TypeScript sources under tsx, as before 2026-12-02. */
const FROM_SOURCES = process.env.BENCH_SOURCES === '1'
const THREADPOOL = process.env.UV_THREADPOOL_SIZE ?? String(Math.max(1, availableParallelism() - 1))
/** Longest stretch sent from one batch of signed requests, seconds (the window is 30 s). */
const SEGMENT = 10
/** Length of a turn when a group of targets is measured side by side, seconds. */
const SLICE = 2
const ONLY = process.env.BENCH_TARGETS?.split(',').map(s => s.trim())
const wanted = (name: string): boolean => ONLY === undefined || ONLY.includes(name)

// ------------------------------------------------------------------ servers

interface Child {
  name: string
  url: string
  process: ChildProcess
  /** Other servers in the same process (see Running.twins): their URLs by name. */
  twins: Record<string, string>
}

const children: Child[] = []
let nextPort = PORT_BASE

function startChild(name: string, env: NodeJS.ProcessEnv): Promise<Child> {
  const port = PORT_BASE === 0 ? 0 : nextPort++
  const execArgv = ['--expose-gc']
  if (FROM_SOURCES) execArgv.push('--import', pathToFileURL(require.resolve('tsx')).href)
  if (CPU_PROF !== undefined) execArgv.push('--cpu-prof', `--cpu-prof-dir=${CPU_PROF}`)
  const entry = FROM_SOURCES ? join(__dirname, 'child.ts') : compiledChild()
  const child = fork(entry, [name, String(port)], {
    execArgv,
    env: { ...env, NODE_ENV: 'production', UV_THREADPOOL_SIZE: THREADPOOL },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  return new Promise((resolve, reject) => {
    child.once('exit', code => reject(new Error(`${name} exited (${code}) before it was ready`)))
    child.once('message', (message: { port: number; twins?: Record<string, number> }) => {
      const twins = Object.fromEntries(
        Object.entries(message.twins ?? {}).map(([n, p]) => [n, `http://127.0.0.1:${p}`])
      )
      const entry = { name, url: `http://127.0.0.1:${message.port}`, process: child, twins }
      children.push(entry)
      resolve(entry)
    })
  })
}

function ask<T>(child: Child, type: string): Promise<T> {
  return new Promise(resolve => {
    const onMessage = (message: { type: string }) => {
      if (message.type !== type) return
      child.process.off('message', onMessage)
      resolve(message as T)
    }
    child.process.on('message', onMessage)
    child.process.send({ type })
  })
}

/** Sends `message` to a child and resolves with its answer of the same type. */
function request<T>(
  child: Child,
  message: { type: string; count?: number; flow?: string }
): Promise<T> {
  return new Promise(resolve => {
    const onMessage = (answer: { type: string }) => {
      if (answer.type !== message.type) return
      child.process.off('message', onMessage)
      resolve(answer as T)
    }
    child.process.on('message', onMessage)
    child.process.send(message)
  })
}

async function stopChild(child: Child): Promise<void> {
  const index = children.indexOf(child)
  if (index >= 0) children.splice(index, 1)
  if (child.process.exitCode !== null) return
  await new Promise<void>(resolve => {
    child.process.once('exit', () => resolve())
    child.process.send({ type: 'stop' })
  })
}

process.on('exit', () => {
  for (const child of children) child.process.kill()
})

// ------------------------------------------------------------------ measurements

function log(message: string): void {
  process.stderr.write(`${message}\n`)
}

/** Signs `count` fresh access requests, round-robin over `sessions`. */
function presign(sessions: Session[], count: number): string[] {
  const bodies = new Array<string>(count)
  for (let i = 0; i < count; i++) bodies[i] = accessBody(sessions[i % sessions.length] as Session)
  return bodies
}

/**
 * One thing measured: `warm` runs a warm-up and returns the rate seen (units per second);
 * `prepare(count)` builds `count` units outside the clock (signing, opening sessions) and
 * returns the timed run.
 */
interface Measure {
  server: Child | string
  warm(): Promise<number>
  prepare(count: number): Promise<() => Promise<Sample>>
}

/** A Measure whose warm-up is a run of `warmUnits` prepared units, timed like any other. */
function measured(server: Child | string, prepare: Measure['prepare'], warmUnits: number): Measure {
  return {
    server,
    async warm() {
      const sample = await (await prepare(warmUnits))()
      return sample.ok / sample.elapsed
    },
    prepare,
  }
}

/**
 * CPU µs so far of a server: ours over IPC; a server named by URL (the reference) from /proc, when
 * its process is known (see referencePid), else NaN (no CPU figure).
 */
async function cpuOf(server: Child | string): Promise<number> {
  if (typeof server !== 'string') return (await ask<{ micros: number }>(server, 'cpu')).micros
  const pid = remotePids.get(server)
  return pid === undefined ? NaN : treeCpu(pid).all
}

/** The processes of servers named by URL, found once (see referencePid). */
const remotePids = new Map<string, number>()

/**
 * The reference server's process: BENCH_REFERENCE_PID, or the process listening on the URL's
 * port on this machine (Linux /proc); its CPU is then read like ours (its process tree).
 */
function referencePid(url: string): number | undefined {
  const given = Number(process.env.BENCH_REFERENCE_PID)
  if (Number.isInteger(given) && given > 0) return given
  const { hostname, port } = new URL(url)
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(hostname)) return undefined
  return listeningPid(Number(port || 80))
}

/**
 * Measures a group side by side (a bare route and its protected twin, or ours and the
 * reference): each is warmed up, then they take turns (bench/turns.ts) until each has run
 * DURATION seconds; the CPU of each server's process is read around its runs.
 */
async function interleaved(measures: Measure[]): Promise<Stats[]> {
  const rates: number[] = []
  for (const m of measures) rates.push(await m.warm())
  const { samples, counted } = await takeTurns(
    measures.map(m => ({
      prepare: m.prepare,
      read: async () => [await cpuOf(m.server)],
    })),
    { duration: DURATION, slice: SLICE, rates, minRate: 100, minCount: CONNECTIONS }
  )
  return measures.map((m, i) => {
    const sample = combine(samples[i] as Sample[])
    const result = stats(sample)
    const cpu = counted[i]?.[0] ?? NaN
    if (Number.isFinite(cpu)) result.cpuPerRequest = cpu / sample.ok
    return result
  })
}

/**
 * Access requests to one route, each signed (fresh nonce, current timestamp) just before its
 * slice; a bare route cycles one pool of them.
 */
function access(
  server: Child | string,
  path: string,
  sessions: Session[],
  protectedRoute: boolean
): Measure {
  const url = typeof server === 'string' ? server : server.url
  let pool: string[] | undefined
  const bodies = (count: number): string[] => {
    if (protectedRoute) return presign(sessions, count)
    pool ??= presign(sessions, 4096)
    const p = pool
    return Array.from({ length: count }, (_, i) => p[i % p.length] as string)
  }
  const prepare = async (count: number) => {
    const prepared = bodies(count)
    return () => blast(url, path, prepared, CONNECTIONS)
  }
  return measured(server, prepare, (SMOKE ? 1000 : 8000) * WARMUP)
}

/**
 * Header-form requests (HTTP Message Signatures, docs/http-binding.md) to the protected route,
 * the same JSON body as the classic form's `request`, each signed just before its slice with
 * bench/header-form.ts's builder.
 */
function headerAccess(server: Child, path: string, sessions: Session[]): Measure {
  const prepare = async (count: number) => {
    const requests = await headerRequests(server, path, sessions, count)
    return () => blastRaw(server.url, requests, CONNECTIONS)
  }
  return measured(server, prepare, (SMOKE ? 1000 : 8000) * WARMUP)
}

/** `count` header-form requests to `path`, signed now, as raw HTTP/1.1 bytes. */
async function headerRequests(
  server: Child,
  path: string,
  sessions: Session[],
  count: number
): Promise<Buffer[]> {
  const host = new URL(server.url).host
  const requests = new Array<Buffer>(count)
  for (let i = 0; i < count; i++) {
    const session = sessions[i % sessions.length] as Session
    const r = await headerFormRequest(server.url + path, session.token, session.key)
    requests[i] = rawRequest(host, r.method, path, r.headers, r.body)
  }
  return requests
}

/**
 * The crypto floor of a protected request, timed in `server`'s process (bench/child.ts): one
 * ECDSA P-256 verify on a cached KeyObject and one signature per unit, on its main thread. A
 * Measure like the others, so it runs in the same slices as the targets it is compared with;
 * its CPU per unit is read around each run, as theirs.
 */
function cryptoFloor(server: Child): Measure {
  return timedInChild(server, { type: 'floor' }, SMOKE ? 1000 : 5000)
}

/**
 * The floor of a session flow or a refresh without HTTP (bench/child.ts's flowFloor: its ECDSA
 * operations, the new key's point check and import, gzip), timed in `server`'s process like
 * cryptoFloor, in the same slices as the flows it bounds.
 */
function flowFloor(server: Child, flow: 'sessions' | 'refresh'): Measure {
  return timedInChild(server, { type: 'flow-floor', flow }, SMOKE ? 200 : 1000)
}

/** A Measure of `count` units of work timed by the child itself (its answer: wall seconds). */
function timedInChild(
  server: Child,
  message: { type: string; flow?: string },
  warmUnits: number
): Measure {
  const prepare = async (count: number) => async (): Promise<Sample> => {
    const { elapsed } = await request<{ elapsed: number }>(server, { ...message, count })
    const each = (elapsed * 1000) / count
    return {
      requests: count,
      ok: count,
      failures: {},
      elapsed,
      latencies: new Float64Array([each]),
    }
  }
  return measured(server, prepare, warmUnits)
}

/** Session flows (bench/protocol.ts's sessionFlows): `ok` counts flows. */
function sessionFlows(server: Child | string, accounts: Account[]): Measure {
  const url = typeof server === 'string' ? server : server.url
  let picked = 0
  const prepare = async (wanted: number) => {
    // Whole flows on every connection.
    const keys = accessKeys(Math.ceil(wanted / CONNECTIONS) * CONNECTIONS)
    return () =>
      runSessionFlows(url, CONNECTIONS, keys, () => accounts[picked++ % accounts.length] as Account)
  }
  return measured(server, prepare, SMOKE ? 200 : 2000)
}

/** Refreshes of sessions opened just before the slice (each reveals its own next key once). */
function refreshes(server: Child | string, accounts: Account[]): Measure {
  const url = typeof server === 'string' ? server : server.url
  const prepare = async (count: number) => {
    const sessions = await openSessions(url, accounts, Math.min(count, SMOKE ? 1000 : 15_000))
    const bodies = sessions.map(refreshBody)
    return () => blast(url, '/session/refresh', bodies, CONNECTIONS)
  }
  return measured(server, prepare, SMOKE ? 200 : 1000)
}

interface Memory {
  rss: number
  heapUsed: number
  external: number
  accessNonces?: number
}

const MB = 1024 * 1024
/**
 * Readings (after two full GCs, one per segment) whose median is the memory before and after:
 * RSS moves by ±20 MB from one segment to the next here with the heap flat (what the allocator
 * keeps or hands back), so a single reading at each end measures that more than growth. An odd
 * count: the median is the middle reading.
 */
const MEMORY_WINDOW = SMOKE ? 1 : 5

/**
 * RSS and heap of a fresh standalone server over MEMORY_REQUESTS protected requests after a
 * warm-up, all in the classic form or all in the header form: the median of MEMORY_WINDOW
 * readings at the end of the warm-up against the median of the last MEMORY_WINDOW readings.
 */
async function measureMemory(env: NodeJS.ProcessEnv, form: 'classic' | 'headers') {
  const child = await startChild('standalone', env)
  try {
    const accounts = await createAccounts(child.url, 4)
    const sessions = await openSessions(child.url, accounts, CONNECTIONS)
    const batch = async (count: number): Promise<Sample> =>
      form === 'headers'
        ? blastRaw(
            child.url,
            await headerRequests(child, PROTECTED_PATH, sessions, count),
            CONNECTIONS
          )
        : blast(child.url, PROTECTED_PATH, presign(sessions, count), CONNECTIONS)
    const readings: Memory[] = []
    let rate = 5000
    /**
     * Requests per second once paced (0: as fast as the server answers). The replay time-lock
     * holds rate × 40 s of nonces, so a rate that rises or falls during the run grows or shrinks
     * the working set by tens of MB (runs 5–7: +25.0 MB with the rate up from 6,770 to 7,646,
     * −56.4 MB with it down from 9,507 to 6,487); at a fixed rate it stays the same and what
     * changes is growth.
     */
    let paced = 0
    /**
     * Requests per second of the last segment, from its start to its memory reading: the signing
     * of its requests in this process (the header form's takes seconds) and the reading included.
     */
    let cycleRate = 0
    /**
     * Sends `total` requests in segments, and more until `seconds` have passed and at least
     * `segments` segments were sent; reads the memory after each segment. Paced, a segment is
     * paced × SEGMENT requests and the next starts SEGMENT seconds after it started.
     */
    const send = async (total: number, seconds = 0, segments = 0) => {
      let remaining = total
      let sent = 0
      const until = Date.now() + seconds * 1000
      const samples: Sample[] = []
      while (remaining > 0 || Date.now() < until || samples.length < segments) {
        const started = Date.now()
        const size = Math.ceil((paced > 0 ? paced : rate) * SEGMENT)
        const count = Math.max(1, Math.min(remaining, size))
        const sample = await batch(remaining > 0 ? count : size)
        samples.push(sample)
        readings.push(await ask<Memory>(child, 'memory'))
        rate = Math.max(500, sample.ok / sample.elapsed)
        sent += sample.requests
        remaining = Math.max(0, remaining - count)
        const rss = `RSS ${((readings.at(-1)?.rss ?? 0) / MB).toFixed(1)} MB`
        if (!SMOKE)
          log(total > 0 ? `  ${sent} / ${total}, ${rss}` : `  reading ${samples.length}: ${rss}`)
        cycleRate = (1000 * sample.ok) / (Date.now() - started)
        const left = started + SEGMENT * 1000 - Date.now()
        if (paced > 0 && left > 0) await new Promise(resolve => setTimeout(resolve, left))
      }
      return samples
    }
    // Full mode: two segments as fast as the server answers, then a fixed rate, 80 % of the
    // second's, preparation and reading included (room for the machine's slower minutes; were
    // it slower still, the segments would take longer and the rate fall: the rate over the run
    // is printed beside the paced one).
    if (!SMOKE) {
      await send(0, 0, 2)
      paced = Math.round(0.8 * cycleRate)
    }
    // The warm-up lasts long enough for the replay time-lock to fill and its Map to reach its
    // steady size (MEMORY_STEADY_SECONDS): a nonce stays for the access window and twice the skew
    // (40 s), so from then on as many expire as arrive, and what follows measures growth, not the
    // time-lock's working set (rate × 40 s of nonces). Then MEMORY_WINDOW more segments give the
    // readings before.
    await send(MEMORY_WARMUP, SMOKE ? 0 : MEMORY_STEADY_SECONDS)
    // (Smoke mode: the warm-up's last reading.)
    await send(0, 0, SMOKE ? 0 : MEMORY_WINDOW)
    const before = readings.slice(-MEMORY_WINDOW)
    const first = readings.length
    const startedAt = Date.now()
    const segments = await send(MEMORY_REQUESTS)
    const seconds = (Date.now() - startedAt) / 1000
    const after = readings.slice(Math.max(first, readings.length - MEMORY_WINDOW))
    const during = readings.slice(first)
    const run = combine(segments)
    const perSecond = (sample: Sample | undefined): number =>
      sample === undefined ? 0 : sample.ok / sample.elapsed
    const mb = (list: readonly Memory[], field: 'rss' | 'heapUsed') =>
      median(list.map(m => m[field])) / MB
    const failed = failedCount(run)
    return {
      form,
      requests: run.requests,
      failed,
      readings: before.length,
      rssBeforeMB: mb(before, 'rss'),
      rssAfterMB: mb(after, 'rss'),
      rssGrowthMB: mb(after, 'rss') - mb(before, 'rss'),
      // The single readings at the two ends, and the range of every reading of the run.
      rssEndsMB: [(before.at(-1)?.rss ?? 0) / MB, (during.at(-1)?.rss ?? 0) / MB],
      rssRangeMB: [
        Math.min(...during.map(m => m.rss)) / MB,
        Math.max(...during.map(m => m.rss)) / MB,
      ],
      heapBeforeMB: mb(before, 'heapUsed'),
      heapAfterMB: mb(after, 'heapUsed'),
      liveNonces: during.at(-1)?.accessNonces ?? 0,
      // The fixed rate (0 in smoke mode), and the requests over the wall time of the measured
      // part, pauses included.
      pacedRps: paced,
      meanRps: round(run.requests / seconds),
      // Throughput at the start and at the end: by the end the replay time-lock is in its steady
      // state (as many nonces expire as arrive), which short timed slices never reach.
      firstRps: round(perSecond(segments[0])),
      lastRps: round(perSecond(segments[segments.length - 1])),
    }
  } finally {
    await stopChild(child)
  }
}

// ------------------------------------------------------------------ report

const round = (n: number, digits = 0): number => Number(n.toFixed(digits))

/** An object's numbers (and those of its arrays) to one decimal, for the JSON line. */
const rounded = (o: object | undefined): object | undefined =>
  o === undefined
    ? undefined
    : Object.fromEntries(
        Object.entries(o).map(([k, v]) => [
          k,
          typeof v === 'number'
            ? round(v, 1)
            : Array.isArray(v)
              ? v.map(x => (typeof x === 'number' ? round(x, 1) : (x as unknown)))
              : (v as unknown),
        ])
      )

interface Row {
  target: string
  framework: string
  kind:
    | 'bare'
    | 'protected'
    | 'header-protected'
    | 'metrics-protected'
    | 'inline-protected'
    | 'inline-header-protected'
    | 'floor'
    | 'sessions'
    | 'refresh'
    | 'sessions-floor'
    | 'refresh-floor'
    // node:http bare and the standalone server, measured again in an adapter's own slices.
    | 'node-bare'
    | 'node-protected'
  server: 'ours' | 'reference'
  stats: Stats
}

/** Columns padded to their widest cell, the first left-aligned, under a header and a rule. */
function textTable(header: string[], lines: string[][]): string {
  const widths = header.map((h, i) =>
    Math.max(h.length, ...lines.map(l => (l[i] as string).length))
  )
  const format = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number)))
      .join('  ')
  return [format(header), widths.map(w => '-'.repeat(w)).join('  '), ...lines.map(format)].join(
    '\n'
  )
}

function table(rows: Row[]): string {
  const header = ['target', 'req/s', 'p50 ms', 'p99 ms', 'CPU µs/req', 'requests', 'failed']
  const lines = rows.map(r => [
    r.target,
    round(r.stats.rps).toLocaleString('en-US'),
    r.stats.p50.toFixed(2),
    r.stats.p99.toFixed(2),
    r.stats.cpuPerRequest === undefined ? '-' : r.stats.cpuPerRequest.toFixed(0),
    r.stats.requests.toLocaleString('en-US'),
    String(r.stats.failed),
  ])
  return textTable(header, lines)
}

/** A target of docs/performance.md as measured: its value, its limit, whether it is met. */
interface Target {
  target: string
  value: number
  unit: string
  limit: number
  /** The value must be at least the limit (a speed-up), not at most. */
  atLeast?: boolean
  pass: boolean
}

function targetTable(targets: Target[]): string {
  const show = (n: number, unit: string) => (unit === '×' ? `${n.toFixed(2)}×` : `${n} ${unit}`)
  const lines = targets.map(t => [
    t.target,
    show(t.value, t.unit),
    `${t.atLeast === true ? '≥' : t.unit === '%' ? '<' : '≤'} ${show(t.limit, t.unit)}`,
    t.pass ? 'pass' : 'FAIL',
  ])
  const header = ['target', 'measured', 'limit', '']
  return textTable(header, lines)
}

// ------------------------------------------------------------------ main

const FRAMEWORKS: { name: string; bare: string; protectedLabel: string; child: string }[] = [
  {
    name: 'node',
    bare: 'node:http bare',
    protectedLabel: 'standalone protected',
    child: 'standalone',
  },
  { name: 'express', bare: 'express bare', protectedLabel: 'express protected', child: 'express' },
  { name: 'koa', bare: 'koa bare', protectedLabel: 'koa protected', child: 'koa' },
  { name: 'nest', bare: 'nest bare', protectedLabel: 'nest protected', child: 'nest' },
  {
    name: 'nest-fastify',
    bare: 'nest-fastify bare',
    protectedLabel: 'nest-fastify protected',
    child: 'nest-fastify',
  },
]

async function main(): Promise<void> {
  const started = Date.now()
  const env = {
    ...process.env,
    BETTER_AUTH_RESPONSE_KEY: NodeSigningKey.generate().toPem(),
    BETTER_AUTH_ACCESS_KEY: NodeSigningKey.generate().toPem(),
  }
  log(
    `better-auth-protocol benchmark: ${SMOKE ? 'smoke' : 'full'} mode, ${DURATION} s per run, ` +
      `${CONNECTIONS} connections, ${cpus().length} CPUs, node ${process.version}, ` +
      `servers' threadpool ${THREADPOOL}, their ECDSA ${BENCH_ECDSA}`
  )

  const names = new Set<string>(['standalone'])
  for (const f of FRAMEWORKS) {
    if (wanted(f.name) || wanted(f.child)) {
      names.add(f.child)
      // node:http bare: the node group's, and in every adapter's group for target 2.
      names.add('node')
    }
  }
  // With the node group, the standalone server's process also runs its twin with metrics on.
  const twinEnv = { ...env, BENCH_METRICS_TWIN: wanted('node') || wanted('standalone') ? '1' : '0' }
  const servers = new Map<string, Child>()
  await Promise.all(
    [...names].map(async n =>
      servers.set(n, await startChild(n, n === 'standalone' ? twinEnv : env))
    )
  )
  const standalone = servers.get('standalone') as Child

  // Sessions are opened on the standalone server; every target shares its access key.
  const accounts = await createAccounts(standalone.url, 8)
  const sessions = await openSessions(standalone.url, accounts, CONNECTIONS)
  const reference =
    REFERENCE_URL !== undefined && wanted('reference')
      ? await (async () => {
          const refAccounts = await createAccounts(REFERENCE_URL, 8)
          const refSessions = await openSessions(REFERENCE_URL, refAccounts, CONNECTIONS)
          const pid = referencePid(REFERENCE_URL)
          if (pid !== undefined) remotePids.set(REFERENCE_URL, pid)
          log(
            pid === undefined
              ? 'reference server: its process was not found, so no CPU figures for it'
              : `reference server: pid ${pid} (its CPU is read from /proc)`
          )
          return { url: REFERENCE_URL, accounts: refAccounts, sessions: refSessions }
        })()
      : undefined

  const rows: Row[] = []
  const group = async (
    title: string,
    entries: { row: Omit<Row, 'stats'>; measure: Measure }[]
  ): Promise<void> => {
    log(`${title} …`)
    const results = await interleaved(entries.map(e => e.measure))
    entries.forEach((e, i) => rows.push({ ...e.row, stats: results[i] as Stats }))
  }

  for (const f of FRAMEWORKS) {
    if (!wanted(f.name) && !wanted(f.child)) continue
    const bareServer = servers.get(f.name === 'node' ? 'node' : f.child) as Child
    const protectedServer = servers.get(f.child) as Child
    const entries: { row: Omit<Row, 'stats'>; measure: Measure }[] = [
      {
        row: { target: f.bare, framework: f.name, kind: 'bare', server: 'ours' },
        measure: access(bareServer, BARE_PATH, sessions, false),
      },
      {
        row: { target: f.protectedLabel, framework: f.name, kind: 'protected', server: 'ours' },
        measure: access(protectedServer, PROTECTED_PATH, sessions, true),
      },
    ]
    // The header form on the same route, in the same slices (standalone and Express).
    if (f.name === 'node' || f.name === 'express') {
      entries.push({
        row: {
          target: `${f.protectedLabel} (header form)`,
          framework: f.name,
          kind: 'header-protected',
          server: 'ours',
        },
        measure: headerAccess(protectedServer, PROTECTED_PATH, sessions),
      })
    }
    if (f.name !== 'node') {
      // Issue 18's target 2 compares what this adapter adds with what the standalone server
      // adds: both pairs in the same slices, so a change in the machine's load falls on both.
      const standaloneServer = servers.get('standalone') as Child
      entries.push(
        {
          row: {
            target: `node:http bare (${f.name}'s slices)`,
            framework: f.name,
            kind: 'node-bare',
            server: 'ours',
          },
          measure: access(servers.get('node') as Child, BARE_PATH, sessions, false),
        },
        {
          row: {
            target: `standalone protected (${f.name}'s slices)`,
            framework: f.name,
            kind: 'node-protected',
            server: 'ours',
          },
          measure: access(standaloneServer, PROTECTED_PATH, sessions, true),
        }
      )
    }
    if (f.name === 'node') {
      // The twins in the standalone server's process (`measured` reads that process's CPU):
      // metrics on (prom-client), and ECDSA on its event loop (the others': BENCH_ECDSA's).
      const twin = (
        name: 'metrics' | 'inline',
        label: string,
        kind: Row['kind']
      ): { row: Omit<Row, 'stats'>; measure: Measure } => ({
        row: { target: `${f.protectedLabel} (${label})`, framework: f.name, kind, server: 'ours' },
        measure: access(
          { ...protectedServer, url: protectedServer.twins[name] as string },
          PROTECTED_PATH,
          sessions,
          true
        ),
      })
      entries.push(
        twin('metrics', 'metrics on', 'metrics-protected'),
        twin('inline', 'ECDSA inline', 'inline-protected'),
        {
          // The header form on the inline twin: the two forms compared with no hand-over of
          // ECDSA to the threadpool (docs/performance.md, "the placements").
          row: {
            target: `${f.protectedLabel} (ECDSA inline, header form)`,
            framework: f.name,
            kind: 'inline-header-protected',
            server: 'ours',
          },
          measure: headerAccess(
            { ...protectedServer, url: protectedServer.twins.inline as string },
            PROTECTED_PATH,
            sessions
          ),
        },
        {
          // The crypto floor, timed in the standalone server's process.
          row: {
            target: 'crypto floor (verify + sign)',
            framework: f.name,
            kind: 'floor',
            server: 'ours',
          },
          measure: cryptoFloor(protectedServer),
        }
      )
    }
    if (f.name === 'node' && reference !== undefined) {
      entries.push({
        row: {
          target: 'reference protected',
          framework: 'reference',
          kind: 'protected',
          server: 'reference',
        },
        measure: access(reference.url, PROTECTED_PATH, reference.sessions, true),
      })
    }
    await group(entries.map(e => e.row.target).join(' / '), entries)
    if (f.child !== 'standalone') await stopChild(protectedServer)
  }
  // The SHA-256 of the header form's body: what it may add to a classic request.
  const { digestMicros } = await request<{ digestMicros: number }>(standalone, { type: 'digest' })
  if (servers.has('node')) await stopChild(servers.get('node') as Child)
  await request(standalone, { type: 'close-twins' })

  for (const kind of ['sessions', 'refresh'] as const) {
    if (!wanted(kind)) continue
    const label = kind === 'sessions' ? 'sessions (flows/s)' : 'refresh'
    const make = kind === 'sessions' ? sessionFlows : refreshes
    const entries: { row: Omit<Row, 'stats'>; measure: Measure }[] = [
      {
        row: { target: `standalone ${label}`, framework: 'node', kind, server: 'ours' },
        measure: make(standalone, accounts),
      },
      {
        row: {
          target: `${kind === 'sessions' ? 'session flow' : 'refresh'} floor (crypto, gzip)`,
          framework: 'node',
          kind: `${kind}-floor`,
          server: 'ours',
        },
        measure: flowFloor(standalone, kind),
      },
    ]
    if (reference !== undefined) {
      entries.push({
        row: { target: `reference ${label}`, framework: 'reference', kind, server: 'reference' },
        measure: make(reference.url, reference.accounts),
      })
    }
    await group(entries.map(e => e.row.target).join(' / '), entries)
  }
  await stopChild(standalone)

  let memory: Awaited<ReturnType<typeof measureMemory>> | undefined
  let memoryHeaders: typeof memory
  if (wanted('memory')) {
    for (const form of ['classic', 'headers'] as const) {
      log(
        `memory (${form === 'headers' ? 'header form' : 'classic form'}): ` +
          `${MEMORY_WARMUP.toLocaleString('en-US')} warm-up ` +
          `${SMOKE ? '' : `(${MEMORY_STEADY_SECONDS} s at least) `}+ ` +
          `${MEMORY_REQUESTS.toLocaleString('en-US')} protected requests …`
      )
      const measured = await measureMemory(env, form)
      if (form === 'headers') memoryHeaders = measured
      else memory = measured
    }
  }

  // Ratios protected / bare per framework, and ours / reference.
  const find = (framework: string, kind: Row['kind']) =>
    rows.find(r => r.framework === framework && r.kind === kind)?.stats
  const ratios: Record<string, { throughput: number; p99: number }> = {}
  for (const f of FRAMEWORKS) {
    const bare = find(f.name, 'bare')
    const prot = find(f.name, 'protected')
    if (bare !== undefined && prot !== undefined) {
      ratios[f.name] = {
        throughput: round(prot.rps / bare.rps, 3),
        p99: round(prot.p99 / bare.p99, 3),
      }
    }
  }
  // CPU per request of the header form against the classic form, same server, same run.
  const headerForm: Record<string, { bare: number; protected: number; headers: number }> = {}
  for (const f of FRAMEWORKS) {
    const [bare, prot, headers] = [
      find(f.name, 'bare')?.cpuPerRequest,
      find(f.name, 'protected')?.cpuPerRequest,
      find(f.name, 'header-protected')?.cpuPerRequest,
    ]
    if (bare !== undefined && prot !== undefined && headers !== undefined) {
      headerForm[f.name] = { bare: round(bare), protected: round(prot), headers: round(headers) }
    }
  }
  // Ours against the reference: throughput, and CPU per request (theirs / ours) when known.
  const versusReference: Record<string, number> = {}
  const versusReferenceCpu: Record<string, number> = {}
  for (const kind of ['protected', 'sessions', 'refresh'] as const) {
    const ours = find('node', kind)
    const theirs = find('reference', kind)
    if (ours === undefined || theirs === undefined) continue
    versusReference[kind] = round(ours.rps / theirs.rps, 2)
    if (ours.cpuPerRequest !== undefined && theirs.cpuPerRequest !== undefined) {
      versusReferenceCpu[kind] = round(theirs.cpuPerRequest / ours.cpuPerRequest, 2)
    }
  }

  // The targets of docs/performance.md, each with its pass/fail mark (same run).
  const targets: Target[] = []
  const cpu = (framework: string, kind: Row['kind']) => find(framework, kind)?.cpuPerRequest
  const floorCpu = cpu('node', 'floor')
  const standaloneCpu = cpu('node', 'protected')
  if (floorCpu !== undefined && standaloneCpu !== undefined) {
    const ratio = standaloneCpu / floorCpu
    targets.push({
      target: 'standalone protected / crypto floor (CPU)',
      value: round(ratio, 2),
      unit: '×',
      limit: 1.35,
      pass: ratio <= 1.35,
    })
  }
  // Target 2: what each adapter adds (protected − bare) over what the standalone server adds
  // (standalone protected − node:http bare), the latter measured in the adapter's own slices.
  const adds: Record<string, { adapter: number; standalone: number; ratio: number }> = {}
  for (const f of FRAMEWORKS) {
    const [bare, prot] = [cpu(f.name, 'bare'), cpu(f.name, 'protected')]
    const [nodeBare, nodeProt] = [cpu(f.name, 'node-bare'), cpu(f.name, 'node-protected')]
    if ([bare, prot, nodeBare, nodeProt].some(v => v === undefined)) continue
    const adapter = (prot as number) - (bare as number)
    const standalone = (nodeProt as number) - (nodeBare as number)
    const ratio = adapter / standalone
    adds[f.name] = {
      adapter: round(adapter),
      standalone: round(standalone),
      ratio: round(ratio, 2),
    }
    targets.push({
      target: `what ${f.name} adds / what standalone adds (CPU, same slices)`,
      value: round(ratio, 2),
      unit: '×',
      limit: 1.15,
      pass: standalone > 0 && ratio <= 1.15,
    })
  }
  /** `label` (which server, header form − classic) against its limit: the body's digest. */
  const headerLine = (label: string, prot?: number, headers?: number): void => {
    if (prot === undefined || headers === undefined) return
    targets.push({
      target: `${label} (CPU; limit: its body's digest)`,
      value: round(headers - prot, 1),
      unit: 'µs',
      limit: round(digestMicros, 1),
      pass: headers <= prot + digestMicros,
    })
  }
  for (const f of FRAMEWORKS) {
    const label = `${f.name === 'node' ? 'standalone' : f.name} header form − classic`
    headerLine(label, cpu(f.name, 'protected'), cpu(f.name, 'header-protected'))
  }
  // The same line with ECDSA inline on both forms (the standalone server's twin, same slices).
  headerLine(
    'standalone header form − classic, ECDSA inline',
    cpu('node', 'inline-protected'),
    cpu('node', 'inline-header-protected')
  )
  const metricsCpu = cpu('node', 'metrics-protected')
  if (metricsCpu !== undefined && standaloneCpu !== undefined) {
    const share = (100 * (metricsCpu - standaloneCpu)) / metricsCpu
    targets.push({
      target: 'standalone metrics on − off (share of CPU)',
      value: round(share, 1),
      unit: '%',
      limit: 5,
      pass: share < 5,
    })
  }
  // Issue 18's target 3: per session flow and per refresh, the reference's CPU over ours.
  for (const [kind, limit] of [
    ['sessions', 2.5],
    ['refresh', 2],
  ] as const) {
    const ratio = versusReferenceCpu[kind]
    if (ratio === undefined) continue
    targets.push({
      target: `${kind === 'sessions' ? 'session flow' : 'refresh'}: reference CPU / ours`,
      value: ratio,
      unit: '×',
      limit,
      atLeast: true,
      pass: ratio >= limit,
    })
  }
  // How far ahead of the reference any server on node:http could be on this machine: the
  // reference's CPU over the flow's floor (its crypto and gzip, plus a bare node:http exchange
  // per request: two in a session flow, one in a refresh).
  const referenceBounds: Record<string, number> = {}
  const boundLines: string[] = []
  const bareCpu = cpu('node', 'bare')
  for (const [kind, exchanges] of [
    ['sessions', 2],
    ['refresh', 1],
  ] as const) {
    const [floor, theirs] = [cpu('node', `${kind}-floor`), cpu('reference', kind)]
    if (floor === undefined || theirs === undefined || bareCpu === undefined) continue
    const bound = theirs / (floor + exchanges * bareCpu)
    referenceBounds[kind] = round(bound, 2)
    boundLines.push(
      `${kind === 'sessions' ? 'session flow' : 'refresh'} floor: ${round(floor)} µs of crypto ` +
        `and gzip + ${exchanges} × ${round(bareCpu)} µs (bare node:http) → at most ` +
        `${bound.toFixed(2)}× less CPU than the reference for any server on node:http here`
    )
  }
  for (const m of [memory, memoryHeaders]) {
    if (m === undefined) continue
    targets.push({
      target: `RSS growth over ${m.requests.toLocaleString('en-US')} requests, ${m.form === 'headers' ? 'header' : 'classic'} form`,
      value: round(m.rssGrowthMB, 1),
      unit: 'MB',
      limit: 25,
      pass: m.rssGrowthMB <= 25,
    })
  }

  console.log('')
  console.log(
    `${SMOKE ? 'smoke' : 'full'} mode, ${DURATION} s per run, ${CONNECTIONS} connections; ` +
      `${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, node ${process.version} ` +
      `(OpenSSL ${process.versions.openssl}), servers' UV_THREADPOOL_SIZE ${THREADPOOL}, ` +
      `their ECDSA ${BENCH_ECDSA} (crypto.ecdsa; BENCH_ECDSA)`
  )
  console.log(table(rows))
  if (targets.length > 0) {
    console.log('')
    console.log(targetTable(targets))
    if (SMOKE) {
      console.log(
        'smoke mode: 1-second runs check that everything runs; they are too short to judge the ' +
          'targets (make bench)'
      )
    }
  }
  console.log('')
  for (const [name, r] of Object.entries(ratios)) {
    console.log(
      `${name.padEnd(8)} protected/bare: throughput ${r.throughput.toFixed(2)}×, p99 ${r.p99.toFixed(2)}×`
    )
  }
  for (const [name, a] of Object.entries(adds)) {
    console.log(
      `${name.padEnd(8)} adds ${a.adapter} µs/req; the standalone server ${a.standalone} in the ` +
        `same slices (${a.ratio.toFixed(2)}×)`
    )
  }
  for (const [name, r] of Object.entries(headerForm)) {
    console.log(
      `${name.padEnd(8)} CPU µs/req: bare ${r.bare}, protected ${r.protected}, ` +
        `header-protected ${r.headers} (header/classic ${(r.headers / r.protected).toFixed(2)}×)`
    )
  }
  for (const [kind, r] of Object.entries(versusReference)) {
    const cpuRatio = versusReferenceCpu[kind]
    console.log(
      `standalone/reference ${kind}: throughput ${r.toFixed(2)}×` +
        (cpuRatio === undefined ? '' : `, CPU per request ${cpuRatio.toFixed(2)}× less`)
    )
  }
  for (const line of boundLines) console.log(line)
  for (const m of [memory, memoryHeaders]) {
    if (m === undefined) continue
    console.log(
      `memory (${m.form === 'headers' ? 'header' : 'classic'} form): RSS ${m.rssBeforeMB.toFixed(1)} MB ` +
        `after warm-up → ${m.rssAfterMB.toFixed(1)} MB ` +
        `after ${m.requests.toLocaleString('en-US')} protected requests, ` +
        `${m.readings === 1 ? 'one reading each' : `medians of ${m.readings} readings`} (growth ${m.rssGrowthMB.toFixed(1)} MB; single readings ` +
        `${m.rssEndsMB.map(v => v.toFixed(1)).join(' → ')} MB, ${m.rssRangeMB.map(v => v.toFixed(1)).join('–')} MB ` +
        `during the run; heap ${m.heapBeforeMB.toFixed(1)} → ` +
        `${m.heapAfterMB.toFixed(1)} MB; ${m.liveNonces.toLocaleString('en-US')} live nonces; ` +
        `${m.failed} failed); ${m.pacedRps > 0 ? `paced at ${m.pacedRps.toLocaleString('en-US')} req/s (${m.meanRps.toLocaleString('en-US')} over the run), bursts of ` : ''}` +
        `${m.firstRps.toLocaleString('en-US')} req/s in its first ` +
        `segment, ${m.lastRps.toLocaleString('en-US')} in its last`
    )
  }
  console.log(
    JSON.stringify({
      bench: 'better-auth-protocol',
      mode: SMOKE ? 'smoke' : 'full',
      node: process.version,
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model,
      memoryGB: round(totalmem() / 1024 ** 3, 1),
      connections: CONNECTIONS,
      duration: DURATION,
      threadpool: Number(THREADPOOL),
      ecdsa: BENCH_ECDSA,
      seconds: round((Date.now() - started) / 1000),
      results: rows.map(r => ({
        target: r.target,
        framework: r.framework,
        kind: r.kind,
        rps: round(r.stats.rps),
        p50: round(r.stats.p50, 2),
        p99: round(r.stats.p99, 2),
        cpuPerRequest:
          r.stats.cpuPerRequest === undefined ? undefined : round(r.stats.cpuPerRequest),
        requests: r.stats.requests,
        failed: r.stats.failed,
      })),
      ratios,
      adds,
      headerForm,
      versusReference,
      versusReferenceCpu,
      referenceBounds,
      digestMicros: round(digestMicros, 2),
      memory: rounded(memory),
      memoryHeaders: rounded(memoryHeaders),
      targets,
    })
  )
  const failed =
    rows.reduce((n, r) => n + r.stats.failed, 0) +
    (memory?.failed ?? 0) +
    (memoryHeaders?.failed ?? 0)
  if (failed > 0) {
    console.error(`${failed} requests failed`)
    process.exitCode = 1
  }
}

main()
  .catch(error => {
    console.error(error)
    process.exitCode = 1
  })
  .finally(() => {
    for (const child of [...children]) child.process.kill()
  })
