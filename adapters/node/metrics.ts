/**
 * `/metrics` in the Prometheus text format on node:http: `metricsHandler` for any node:http
 * middleware stack (Express, Koa through `koa-connect`-style mounting, NestJS), and what the
 * standalone server uses for its `metrics` option.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createMetrics, type BetterAuthMetrics } from '../../src/server/metrics'
import { BetterAuthServer, type BetterAuthOptions, type HandlerResult } from '../../src/server/core'
import { writeResult } from '../shared/node'

/** The default path of the metrics endpoint. */
export const DEFAULT_METRICS_PATH = '/metrics'

/** The standalone server's `metrics` option. */
export type StandaloneMetricsOption =
  | boolean
  | {
      /** @default '/metrics' */
      path?: string
      /** Serve them on a listener of their own, on this port (same host): not on the API's. */
      port?: number
    }

/** Where metrics come from: a `createMetrics()` object, or a core (or adapter) given one. */
export type MetricsSource =
  | BetterAuthMetrics
  | { readonly metrics?: unknown }
  | { readonly core: { readonly metrics?: unknown } }

const isMetrics = (value: unknown): value is BetterAuthMetrics =>
  typeof value === 'object' &&
  value !== null &&
  typeof (value as BetterAuthMetrics).render === 'function' &&
  'contentType' in value

/** The metrics of a source; a `TypeError` says what is missing. */
export function metricsOf(source: MetricsSource): BetterAuthMetrics {
  if (isMetrics(source)) return source
  const direct = (source as { metrics?: unknown }).metrics
  if (isMetrics(direct)) return direct
  const core = (source as { core?: { metrics?: unknown } }).core
  if (isMetrics(core?.metrics)) return core.metrics
  throw new TypeError(
    'no metrics to serve: create the core with `metrics: createMetrics()` (prom-client)'
  )
}

/** The answer of a metrics endpoint: the registry's text, or 500 if it cannot be read. */
export async function metricsAnswer(metrics: BetterAuthMetrics): Promise<HandlerResult> {
  try {
    const body = await metrics.render()
    return { status: 200, headers: { 'content-type': metrics.contentType }, body }
  } catch {
    return { status: 500, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: '' }
  }
}

/**
 * `GET /metrics` as a node:http handler: `(req, res, next)` answers the metrics path (`GET` and
 * `HEAD`; 405 for other methods) and calls `next()` for any other path (so it mounts as Express
 * middleware as it is; without `next`, other paths get 404).
 *
 *   app.use(metricsHandler(auth))    // auth: a core created with `metrics: createMetrics()`
 */
export function metricsHandler(
  source: MetricsSource,
  options: { path?: string } = {}
): (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void) => void {
  const metrics = metricsOf(source)
  const path = options.path ?? DEFAULT_METRICS_PATH
  return (req, res, next) => {
    const url = req.url ?? '/'
    const query = url.indexOf('?')
    if ((query === -1 ? url : url.slice(0, query)) !== path) {
      if (next !== undefined) next()
      else writeResult(res, { status: 404, headers: {}, body: '' })
      return
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      writeResult(res, { status: 405, headers: { allow: 'GET, HEAD' }, body: '' })
      return
    }
    void metricsAnswer(metrics).then(result => {
      if (!res.headersSent && !res.destroyed) writeResult(res, result)
    })
  }
}

/**
 * The core options with metrics added when the standalone server is to serve them and they
 * name none; a core is returned as it is.
 */
export function withMetrics<Attributes>(
  auth: BetterAuthServer<Attributes> | BetterAuthOptions<Attributes>,
  option: StandaloneMetricsOption | undefined
): BetterAuthServer<Attributes> | BetterAuthOptions<Attributes> {
  if (option === undefined || option === false || auth instanceof BetterAuthServer) return auth
  return auth.metrics === undefined ? { ...auth, metrics: createMetrics() } : auth
}
