/**
 * `serve --workers N`: N processes of the standalone server on one port, with node:cluster.
 *
 * The primary process serves no requests: it forks the workers (each runs `serve` as a single
 * process would, on a store they share), hands them the connections (node:cluster's round-robin),
 * and stops them. What it does besides:
 *
 * - It waits until every worker listens and checks that they all sign with the same response key
 *   (keys kept in the shared store); a worker that differs, or exits before it listens, stops the
 *   start-up: every worker is stopped and the primary exits 1.
 * - SIGTERM / SIGINT: each worker is told to shut down gracefully (stop accepting, finish the
 *   requests in flight, cut the rest at the deadline, close the store); the primary exits once
 *   all have exited: 0 if every one exited 0, else 1. A worker still running `CLOSE_GRACE_MS`
 *   after the deadline is killed. A second signal cuts every connection at once.
 * - A worker that exits while the server runs (a crash, or a signal sent to that worker alone) is
 *   replaced at once, up to `MAX_RESTARTS` times within `RESTART_WINDOW_MS`; one more exit in
 *   that window means something a restart will not fix: the others are stopped and the primary
 *   exits 1 (a supervisor — systemd, Kubernetes — then restarts the whole server).
 * - Metrics: each worker records its own; `/metrics` answers the sum over every worker
 *   (prom-client's AggregatorRegistry: the primary collects each worker's registry over IPC),
 *   on the API port (whichever worker answers asks the primary) or, with `--metrics-port`, on
 *   the primary's own listener.
 * - Rate limits without Redis are counted in the primary (rate-limiter-flexible's cluster mode),
 *   so they hold across the workers.
 *
 * Workers are told apart in the log: each of their lines ends with `pid=<pid>`.
 */
import cluster, { type Worker } from 'node:cluster'
import { createServer as createHttpServer, type Server } from 'node:http'
import type * as PromClient from 'prom-client'
import { RateLimiterClusterMaster } from 'rate-limiter-flexible'
import type { GracefulShutdown } from '../adapters/node'
import type { BetterAuthMetrics } from '../src/server/metrics'

/** A worker that exits while the server runs is replaced at most this often per window. */
export const MAX_RESTARTS = 5
export const RESTART_WINDOW_MS = 60_000
/** Time given to the workers past the shutdown deadline (to close their stores) before a kill. */
export const CLOSE_GRACE_MS = 5_000

const LISTENING = 'better-auth:listening'
const SHUTDOWN = 'better-auth:shutdown'
const CUT = 'better-auth:cut'
const METRICS = 'better-auth:metrics'

interface Message {
  type?: unknown
  id?: unknown
  port?: unknown
  responseKey?: unknown
  text?: unknown
  error?: unknown
}

type Log = (object: object, message: string) => void

export interface PrimaryOptions {
  /** How many workers (2 or more). */
  workers: number
  /** The command line script the workers run, and its arguments (`serve …`). */
  script: string
  args: string[]
  /** The workers' environment (added to this process's). */
  env: Record<string, string | undefined>
  /** The shutdown deadline of each worker, ms. */
  deadlineMs: number
  logger: { info: Log; warn: Log; error: Log }
  /** Count the workers' rate limits here (they are not in Redis). */
  rateLimits: boolean
  /** Aggregated metrics: on the workers' API port, or on the primary's own `port`. */
  metrics?: { host: string; path: string; port?: number }
}

export interface Started {
  /** The port every worker listens on. */
  port: number
  /** The response public key every worker signs with. */
  responseKey: string
  /** The port of the primary's metrics listener (`metrics.port`). */
  metricsPort?: number
}

/** Whether this process is a worker of `serve --workers`. */
export function isWorker(): boolean {
  return cluster.isWorker
}

/**
 * Starts the workers; resolves once every one listens. From then on the primary runs until a
 * signal (or a worker exiting too often) makes it stop them, and then exits the process.
 */
export function runPrimary(options: PrimaryOptions): Promise<Started> {
  const { logger } = options
  cluster.setupPrimary({ exec: options.script, args: options.args })
  const env: Record<string, string> = {}
  for (const [name, value] of Object.entries(options.env)) {
    if (value !== undefined) env[name] = value
  }
  const aggregator = options.metrics === undefined ? undefined : aggregatorRegistry()
  // Answers the workers' RateLimiterCluster limiters (see RateLimitOptions.cluster).
  if (options.rateLimits) new RateLimiterClusterMaster()
  const running = new Set<Worker>()
  const listening = new Set<Worker>()
  const exits: number[] = []
  let started: Started | undefined
  let metricsServer: Server | undefined
  let stopping = false
  let exitCode = 0
  /** Why the start-up failed (reported by the command line). */
  let failure: string | undefined
  let settle: { resolve(value: Started): void; reject(error: Error): void } | undefined

  const stop = (code: number): void => {
    exitCode = Math.max(exitCode, code)
    if (stopping) return
    stopping = true
    for (const worker of running) {
      // One still starting has nothing to finish (nor a handler for the word yet): SIGTERM ends it.
      if (listening.has(worker)) tell(worker, SHUTDOWN)
      else worker.process.kill('SIGTERM')
    }
    const timer = setTimeout(() => {
      for (const worker of running) {
        logger.error({}, `worker pid ${worker.process.pid} still running: killed`)
        worker.process.kill('SIGKILL')
      }
      exitCode = 1
    }, options.deadlineMs + CLOSE_GRACE_MS)
    timer.unref()
    if (running.size === 0) finish()
  }

  const finish = (): void => {
    metricsServer?.close()
    if (settle !== undefined && failure !== undefined) {
      // Start-up failed: the command line reports why and exits 1.
      settle.reject(new Error(failure))
      settle = undefined
      return
    }
    logger.info({}, 'closed')
    process.exit(exitCode)
  }

  const fail = (message: string): void => {
    if (settle !== undefined) failure ??= message
    else logger.error({}, message)
    stop(1)
  }

  const fork = (): void => {
    const worker = cluster.fork(env)
    running.add(worker)
    worker.on('message', (message: Message) => onMessage(worker, message))
    worker.once('exit', (code, signal) => onExit(worker, code, signal))
  }

  const onMessage = (worker: Worker, message: Message): void => {
    if (message === null || typeof message !== 'object') return
    if (message.type === LISTENING) {
      const port = Number(message.port)
      const responseKey = String(message.responseKey)
      const first = started ?? { port, responseKey }
      if (responseKey !== first.responseKey) {
        fail(
          `worker pid ${worker.process.pid} signs with response key ${responseKey}, the others ` +
            `with ${first.responseKey}: the workers must share their keys (the store's, or ` +
            'BETTER_AUTH_RESPONSE_KEY)'
        )
        return
      }
      listening.add(worker)
      logger.info({}, `worker pid ${worker.process.pid} listening`)
      if (started === undefined && listening.size === options.workers && !stopping) {
        started = first
        void startMetrics().then(
          metricsPort => {
            if (metricsPort !== undefined) started = { ...first, metricsPort }
            settle?.resolve(started ?? first)
            settle = undefined
          },
          (error: unknown) => fail(`metrics listener: ${(error as Error).message}`)
        )
      }
    } else if (message.type === METRICS && aggregator !== undefined) {
      aggregator.clusterMetrics().then(
        text => send(worker, { type: METRICS, id: message.id, text }),
        (error: unknown) => send(worker, { type: METRICS, id: message.id, error: String(error) })
      )
    }
  }

  const onExit = (worker: Worker, code: number | null, signal: string | null): void => {
    running.delete(worker)
    const wasListening = listening.delete(worker)
    const how = signal === null ? `with code ${code}` : `on ${signal}`
    if (stopping) {
      if (code !== 0 && wasListening) exitCode = 1
      if (running.size === 0) finish()
      return
    }
    if (!wasListening) {
      fail(`worker pid ${worker.process.pid} exited ${how} before it listened`)
      return
    }
    const now = Date.now()
    exits.push(now)
    while (exits.length > 0 && (exits[0] as number) <= now - RESTART_WINDOW_MS) exits.shift()
    if (exits.length > MAX_RESTARTS) {
      fail(
        `worker pid ${worker.process.pid} exited ${how}: ${exits.length} workers exited within ` +
          `${RESTART_WINDOW_MS / 1000} s, stopping`
      )
      return
    }
    logger.warn({}, `worker pid ${worker.process.pid} exited ${how}: starting another`)
    fork()
  }

  const startMetrics = async (): Promise<number | undefined> => {
    const metrics = options.metrics
    if (metrics?.port === undefined || aggregator === undefined) return undefined
    const server = createHttpServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0]
      if (path !== metrics.path) return void res.writeHead(404).end()
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        return void res.writeHead(405, { allow: 'GET, HEAD' }).end()
      }
      aggregator.clusterMetrics().then(
        text => void res.writeHead(200, { 'content-type': aggregator.contentType }).end(text),
        () => void res.writeHead(500).end()
      )
    })
    metricsServer = server
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(metrics.port, metrics.host, () => resolve())
    })
    const address = server.address()
    return typeof address === 'object' && address !== null ? address.port : metrics.port
  }

  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      // A second signal: every connection is cut now.
      for (const worker of running) tell(worker, CUT)
      return
    }
    logger.info(
      { signal, deadlineMs: options.deadlineMs },
      `${signal}: stopping ${running.size} workers`
    )
    stop(0)
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)

  return new Promise<Started>((resolve, reject) => {
    settle = { resolve, reject }
    for (let i = 0; i < options.workers; i++) fork()
  })
}

function send(worker: Worker, message: object): void {
  if (worker.isConnected()) worker.send(message)
}

/** Tells a worker to shut down (or to cut its connections); one without IPC gets SIGTERM. */
function tell(worker: Worker, type: typeof SHUTDOWN | typeof CUT): void {
  if (worker.isConnected()) worker.send({ type })
  else if (type === SHUTDOWN) worker.process.kill('SIGTERM')
}

function loadPromClient(): typeof PromClient {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('prom-client') as typeof PromClient
}

function aggregatorRegistry(): PromClient.AggregatorRegistry<PromClient.PrometheusContentType> {
  return new (loadPromClient().AggregatorRegistry)()
}

// ------------------------------------------------------------------------------------- worker

/** Tells the primary this worker listens on `port` and signs with `responseKey`. */
export function announceListening(port: number, responseKey: string): void {
  process.send?.({ type: LISTENING, port, responseKey })
}

/**
 * The worker's shutdown: on the primary's word, or on SIGTERM / SIGINT sent to the worker itself
 * (a terminal's Ctrl-C reaches every process of the group): one graceful close, then exit 0 (1 if
 * closing failed). Only the primary's second word cuts the connections still open.
 */
export function workerShutdown(
  shutdown: GracefulShutdown,
  server: Server,
  logger: { info: Log; error: Log }
): void {
  let begun = false
  const begin = (why: string): void => {
    if (begun) return
    begun = true
    logger.info({ deadlineMs: shutdown.deadlineMs }, `${why}: shutting down`)
    shutdown.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed')
        process.exit(1)
      }
    )
  }
  process.on('SIGTERM', () => begin('SIGTERM'))
  process.on('SIGINT', () => begin('SIGINT'))
  process.on('message', (message: Message) => {
    if (message?.type === SHUTDOWN) begin('stopping')
    else if (message?.type === CUT) server.closeAllConnections()
  })
}

/**
 * The worker's metrics: recorded in its own registry, which the primary collects; `render()`
 * (this worker's `/metrics`) answers the sum over every worker, asked of the primary.
 */
export function clusterMetrics(recorder: BetterAuthMetrics): BetterAuthMetrics {
  const { AggregatorRegistry } = loadPromClient()
  // Answers the primary's requests for this worker's registry.
  new AggregatorRegistry()
  AggregatorRegistry.setRegistries([recorder.registry])
  const pending = new Map<number, { resolve(text: string): void; reject(error: Error): void }>()
  let next = 0
  process.on('message', (message: Message) => {
    if (message?.type !== METRICS || typeof message.id !== 'number') return
    const waiting = pending.get(message.id)
    if (waiting === undefined) return
    pending.delete(message.id)
    if (typeof message.text === 'string') waiting.resolve(message.text)
    else waiting.reject(new Error(String(message.error ?? 'no metrics')))
  })
  const render = (): Promise<string> =>
    new Promise<string>((resolve, reject) => {
      const id = next++
      const timer = setTimeout(() => {
        pending.delete(id)
        reject(new Error('the primary did not answer with the metrics in time'))
      }, 6000)
      pending.set(id, {
        resolve: text => (clearTimeout(timer), resolve(text)),
        reject: error => (clearTimeout(timer), reject(error)),
      })
      process.send?.({ type: METRICS, id })
    })
  return { ...recorder, contentType: recorder.contentType, render }
}
