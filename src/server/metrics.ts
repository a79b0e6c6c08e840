/**
 * Metrics in the Prometheus text format, through prom-client.
 *
 * prom-client is an optional peer dependency, loaded only when `createMetrics()` is called: it is
 * the de facto Prometheus client for Node.js (what Express, Koa and NestJS exporters use), so an
 * application's own metrics and ours can share one registry and one `/metrics`. An application
 * that wants OpenTelemetry instead can implement `MetricsRecorder` itself.
 *
 *   const metrics = createMetrics()                  // or { registry, prefix }
 *   const auth = createBetterAuth({ metrics })
 *   app.get('/metrics', metricsHandler(metrics))     // from better-auth-protocol/node
 *
 * Every label value is bounded: operations, error codes, store names, `hit`/`miss`, and routes
 * given as patterns or names by the application (never a request path, never an identity).
 */
import type * as PromClient from 'prom-client'
import type { MetricsRecorder } from './observe'

export type { MetricsRecorder } from './observe'

export interface MetricsOptions {
  /** The registry to register in (the application's, to share one `/metrics`). @default a new one */
  registry?: PromClient.Registry
  /** Prepended to every metric name. @default 'better_auth_' */
  prefix?: string
  /** Histogram buckets, in seconds. @default 0.5 ms to 2.5 s */
  buckets?: number[]
  /** The prom-client module, if it cannot be loaded by name. @default require('prom-client') */
  client?: typeof PromClient
}

/** Metrics for the core's `metrics` option, with what a `/metrics` endpoint needs. */
export interface BetterAuthMetrics extends MetricsRecorder {
  /** The registry holding them. */
  readonly registry: PromClient.Registry
  /** The `Content-Type` of `render()`'s text. */
  readonly contentType: string
  /** The registry's metrics in the Prometheus text format. */
  render(): Promise<string>
}

/** The default latency buckets, in seconds (requests take a millisecond or two). */
export const DEFAULT_BUCKETS: readonly number[] = Object.freeze([
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
])

function loadPromClient(): typeof PromClient {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('prom-client') as typeof PromClient
  } catch (error) {
    throw new Error('createMetrics needs prom-client: npm install prom-client', { cause: error })
  }
}

/** Creates the core's metrics in a prom-client registry. */
export function createMetrics(options: MetricsOptions = {}): BetterAuthMetrics {
  const prefix = options.prefix ?? 'better_auth_'
  if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(prefix)) {
    throw new TypeError(`metrics prefix must be a metric name prefix ([a-zA-Z_:][a-zA-Z0-9_:]*)`)
  }
  const client = options.client ?? loadPromClient()
  const registry = options.registry ?? new client.Registry()
  const registers = [registry]
  const buckets = [...(options.buckets ?? DEFAULT_BUCKETS)]
  const requests = new client.Counter({
    name: `${prefix}requests_total`,
    help: 'Protocol operations, by operation and outcome (ok or the error code).',
    labelNames: ['operation', 'code'] as const,
    registers,
  })
  const accessChecks = new client.Counter({
    name: `${prefix}access_checks_total`,
    help: 'Access checks of protected routes, by outcome (ok or the error code) and route.',
    labelNames: ['code', 'route'] as const,
    registers,
  })
  const rateLimited = new client.Counter({
    name: `${prefix}rate_limited_total`,
    help: 'Requests refused by a rate limit, by operation (access for access checks).',
    labelNames: ['operation'] as const,
    registers,
  })
  const storeErrors = new client.Counter({
    name: `${prefix}store_errors_total`,
    help: 'Store calls that failed (answered 503 BA602), by store.',
    labelNames: ['store'] as const,
    registers,
  })
  const operationDuration = new client.Histogram({
    name: `${prefix}operation_duration_seconds`,
    help: 'Duration of protocol operations, in seconds.',
    labelNames: ['operation'] as const,
    buckets,
    registers,
  })
  const accessDuration = new client.Histogram({
    name: `${prefix}access_check_duration_seconds`,
    help: 'Duration of access checks, in seconds.',
    buckets,
    registers,
  })
  const tokenCache = new client.Counter({
    name: `${prefix}token_cache_requests_total`,
    help: 'Lookups in the verified-token cache, by result (hit or miss).',
    labelNames: ['result'] as const,
    registers,
  })
  const keyCache = new client.Counter({
    name: `${prefix}key_cache_requests_total`,
    help: "Lookups of a token's access key among the keys loaded, by result (hit or miss).",
    labelNames: ['result'] as const,
    registers,
  })
  // Children bound once per label set: recording is then one map lookup and an addition.
  const hitMiss = (counter: PromClient.Counter<'result'>) => ({
    hit: counter.labels('hit'),
    miss: counter.labels('miss'),
  })
  // The same for label pairs met at run time (bounded: see the module's comment).
  const bound = <C>(make: (a: string, b: string) => C) => {
    const children = new Map<string, C>()
    return (a: string, b: string): C => {
      const key = `${a}\u0000${b}`
      let child = children.get(key)
      if (child === undefined) children.set(key, (child = make(a, b)))
      return child
    }
  }
  const requestsOf = bound((operation, code) => ({
    count: requests.labels(operation, code),
    duration: operationDuration.labels(operation),
  }))
  const accessOf = bound((code, route) => accessChecks.labels(code, route))
  const tokenResults = hitMiss(tokenCache)
  const keyResults = hitMiss(keyCache)
  return {
    registry,
    get contentType() {
      return registry.contentType as string
    },
    render: () => registry.metrics(),
    operation(operation, code, seconds) {
      const child = requestsOf(operation, code)
      child.count.inc()
      child.duration.observe(seconds)
    },
    access(route, code, seconds) {
      accessOf(code, route).inc()
      accessDuration.observe(seconds)
    },
    rateLimited(operation) {
      rateLimited.labels(operation).inc()
    },
    storeError(store) {
      storeErrors.labels(store).inc()
    },
    tokenCache(hit) {
      ;(hit ? tokenResults.hit : tokenResults.miss).inc()
    },
    keyCache(hit) {
      ;(hit ? keyResults.hit : keyResults.miss).inc()
    },
  }
}
