/**
 * The load generator: autocannon over keep-alive connections, fed from a pool of bodies built
 * before the timed phase, so the generator never signs while it measures.
 */
import autocannon from 'autocannon'

export interface Sample {
  /** Responses received. */
  requests: number
  /** 2xx responses. */
  ok: number
  /** Non-2xx responses by status, plus socket errors and timeouts. */
  failures: Record<string, number>
  /** Wall time of the run, seconds. */
  elapsed: number
  /** Response latencies, ms. */
  latencies: Float64Array
}

export interface Stats {
  rps: number
  p50: number
  p99: number
  requests: number
  failed: number
  /** Server CPU time (all its threads) per successful request, µs, when the server reports it. */
  cpuPerRequest?: number
}

/** Sends every body in `bodies` once to `path` (POST), `connections` at a time. */
export function blast(
  url: string,
  path: string,
  bodies: readonly (string | Buffer)[],
  connections: number
): Promise<Sample> {
  let next = 0
  return run(url, Math.min(connections, bodies.length), bodies.length, [
    {
      method: 'POST',
      path,
      setupRequest: request => {
        // The pool is sized to the amount, so it never runs dry; if it did, the reused body is
        // refused as a replay and shows up as a failure.
        request.body = bodies[Math.min(next++, bodies.length - 1)]
        return request
      },
    },
  ])
}

/** A flow of dependent requests per connection (e.g. requestSession then createSession). */
export function flow(
  url: string,
  connections: number,
  amount: number,
  steps: autocannon.RequestSpec[]
): Promise<Sample> {
  return run(url, connections, amount, steps)
}

function run(
  url: string,
  connections: number,
  amount: number,
  requests: autocannon.RequestSpec[]
): Promise<Sample> {
  const latencies = new Float64Array(amount + connections)
  const failures: Record<string, number> = {}
  let count = 0
  let ok = 0
  const started = process.hrtime.bigint()
  let last = started
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url,
        connections,
        amount,
        timeout: 30,
        headers: { 'content-type': 'application/json' },
        requests,
      },
      (error, result) => {
        if (error !== null) {
          reject(error)
          return
        }
        // Up to the last response: autocannon notices the end on a one-second tick.
        const elapsed = Number(last - started) / 1e9
        if (result.errors > 0) failures.socket = result.errors - result.timeouts
        if (result.timeouts > 0) failures.timeout = result.timeouts
        resolve({ requests: count, ok, failures, elapsed, latencies: latencies.slice(0, count) })
      }
    )
    instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
      last = process.hrtime.bigint()
      if (count < latencies.length) latencies[count] = ms
      count++
      if (status >= 200 && status < 300) ok++
      else failures[status] = (failures[status] ?? 0) + 1
    })
  })
}

/** Joins the samples of several runs (segments of one measurement). */
export function combine(samples: Sample[]): Sample {
  const failures: Record<string, number> = {}
  for (const s of samples) {
    for (const [k, v] of Object.entries(s.failures)) failures[k] = (failures[k] ?? 0) + v
  }
  const latencies = new Float64Array(samples.reduce((n, s) => n + s.latencies.length, 0))
  let at = 0
  for (const s of samples) {
    latencies.set(s.latencies, at)
    at += s.latencies.length
  }
  return {
    requests: samples.reduce((n, s) => n + s.requests, 0),
    ok: samples.reduce((n, s) => n + s.ok, 0),
    failures,
    elapsed: samples.reduce((n, s) => n + s.elapsed, 0),
    latencies,
  }
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number
}

/** Throughput (2xx per second) and latency percentiles of a sample. */
export function stats(sample: Sample, unitsPerOk = 1): Stats {
  const sorted = sample.latencies.slice().sort()
  const failed = Object.values(sample.failures).reduce((n, v) => n + v, 0)
  return {
    rps: sample.ok / unitsPerOk / sample.elapsed,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    requests: sample.requests,
    failed,
  }
}
