/**
 * The load generator: keep-alive HTTP/1.1 connections on plain `net` sockets, one request in
 * flight per connection (no pipelining). Request bytes are built before the clock starts, and
 * responses are read with a minimal parser (status, Content-Length or chunked), so the generator
 * costs ~13 µs of CPU per request and leaves the rest to the server it measures. (autocannon,
 * with its JavaScript HTTP parser and per-request rebuilding, cost 22-40 µs per request here.)
 */
import { connect, type Socket } from 'node:net'

export interface Sample {
  /** Responses received. */
  requests: number
  /** 2xx responses. */
  ok: number
  /** Non-2xx responses by status, plus socket errors. */
  failures: Record<string, number>
  /** Wall time from the first request to the last response, seconds. */
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

/** One request of a flow; `body` builds it from the connection's context. */
export interface Step {
  path: string
  body(context: Record<string, unknown>): string
  onResponse?(status: number, body: string, context: Record<string, unknown>): void
}

const CRLF2 = Buffer.from('\r\n\r\n')
const CRLF = Buffer.from('\r\n')
const CONTENT_LENGTH = Buffer.from('\r\nContent-Length: ')
const EMPTY = Buffer.alloc(0)

/** The bytes of a POST with a JSON body. */
export function httpRequest(host: string, path: string, body: string | Buffer): Buffer {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body
  const head =
    `POST ${path} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${bytes.length}\r\n\r\n`
  return Buffer.concat([Buffer.from(head, 'latin1'), bytes])
}

interface Response {
  status: number
  body: Buffer
}

/** Reads one HTTP/1.1 response at a time from a byte stream. */
class ResponseReader {
  private data: Buffer = EMPTY

  /** Adds bytes; returns the response once it is complete. */
  push(chunk: Buffer): Response | undefined {
    this.data = this.data.length === 0 ? chunk : Buffer.concat([this.data, chunk])
    const data = this.data
    const headerEnd = data.indexOf(CRLF2)
    if (headerEnd < 0) return undefined
    const status = Number(data.toString('latin1', 9, 12))
    const start = headerEnd + 4
    // node:http's own `Content-Length`, found as bytes: the head is not decoded, lower-cased
    // and searched as text, which cost this process more for a longer head (the header form's
    // reply has three more fields) and took that CPU from the server under measurement.
    const at = data.indexOf(CONTENT_LENGTH)
    const lineEnd = at >= 0 && at < headerEnd ? data.indexOf(CRLF, at + CONTENT_LENGTH.length) : -1
    const declared =
      lineEnd < 0 ? NaN : Number(data.toString('latin1', at + CONTENT_LENGTH.length, lineEnd))
    if (Number.isSafeInteger(declared) && declared >= 0) {
      const end = start + declared
      if (data.length < end) return undefined
      return this.done(status, data.subarray(start, end), end)
    }
    const head = data.toString('latin1', 0, headerEnd).toLowerCase()
    const length = /\ncontent-length:\s*(\d+)/.exec(head)
    if (length !== null) {
      const end = start + Number(length[1])
      if (data.length < end) return undefined
      return this.done(status, data.subarray(start, end), end)
    }
    if (/\ntransfer-encoding:\s*chunked/.test(head)) {
      const parts: Buffer[] = []
      let at = start
      for (;;) {
        const lineEnd = data.indexOf('\r\n', at)
        if (lineEnd < 0) return undefined
        const size = parseInt(data.toString('latin1', at, lineEnd), 16)
        if (size === 0) {
          if (data.length < lineEnd + 4) return undefined // the final CRLF (no trailers)
          return this.done(status, Buffer.concat(parts), lineEnd + 4)
        }
        if (data.length < lineEnd + 2 + size + 2) return undefined
        parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size))
        at = lineEnd + 2 + size + 2
      }
    }
    return this.done(status, EMPTY, start) // no body (204, 304, or none declared)
  }

  private done(status: number, body: Buffer, end: number): Response {
    this.data = end < this.data.length ? this.data.subarray(end) : EMPTY
    return { status, body }
  }
}

/**
 * Runs `connections` connections; each calls `next(connection)` for its next request bytes
 * (undefined when it is done) and `handle` with every response.
 */
function run(
  url: string,
  connections: number,
  capacity: number,
  next: (connection: number) => Buffer | undefined,
  handle?: (connection: number, response: Response) => void
): Promise<Sample> {
  const { hostname, port } = new URL(url)
  const latencies = new Float64Array(capacity)
  const failures: Record<string, number> = {}
  let count = 0
  let ok = 0
  let open = 0
  let started = 0n
  let last = 0n
  return new Promise((resolve, reject) => {
    const finish = () => {
      if (--open > 0) return
      resolve({
        requests: count,
        ok,
        failures,
        elapsed: Number(last - started) / 1e9,
        latencies: latencies.slice(0, Math.min(count, capacity)),
      })
    }
    const start = (index: number) => {
      const socket: Socket = connect({ host: hostname, port: Number(port), noDelay: true })
      const reader = new ResponseReader()
      let sentAt = 0n
      let closed = false
      const close = () => {
        if (closed) return
        closed = true
        socket.end()
        finish()
      }
      const send = () => {
        const bytes = next(index)
        if (bytes === undefined) {
          close()
          return
        }
        sentAt = process.hrtime.bigint()
        socket.write(bytes)
      }
      socket.on('connect', send)
      socket.on('data', chunk => {
        const response = reader.push(chunk)
        if (response === undefined) return
        last = process.hrtime.bigint()
        if (count < capacity) latencies[count] = Number(last - sentAt) / 1e6
        count++
        if (response.status >= 200 && response.status < 300) ok++
        else failures[response.status] = (failures[response.status] ?? 0) + 1
        handle?.(index, response)
        send()
      })
      socket.on('error', error => {
        failures.socket = (failures.socket ?? 0) + 1
        if (count === 0 && open === connections) {
          reject(error)
          return
        }
        close()
      })
      socket.on('close', close)
    }
    started = process.hrtime.bigint()
    last = started
    open = connections
    for (let i = 0; i < connections; i++) start(i)
  })
}

/** The bytes of a request with its own header fields (the header form), body sent as is. */
export function rawRequest(
  host: string,
  method: string,
  path: string,
  headers: Readonly<Record<string, string>>,
  body: string
): Buffer {
  const bytes = Buffer.from(body)
  let head = `${method} ${path} HTTP/1.1\r\nHost: ${host}\r\n`
  for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`
  head += `Content-Length: ${bytes.length}\r\n\r\n`
  return Buffer.concat([Buffer.from(head, 'latin1'), bytes])
}

/** Sends every request (complete bytes, see rawRequest) once, `connections` at a time. */
export async function blastRaw(
  url: string,
  requests: readonly Buffer[],
  connections: number
): Promise<Sample> {
  let next = 0
  const sample = await run(url, Math.min(connections, requests.length), requests.length, () =>
    next < requests.length ? requests[next++] : undefined
  )
  const unanswered = requests.length - sample.requests
  if (unanswered > 0) sample.failures.unanswered = unanswered
  return sample
}

/** Sends every body in `bodies` once to `path` (POST), `connections` at a time. */
export async function blast(
  url: string,
  path: string,
  bodies: readonly (string | Buffer)[],
  connections: number
): Promise<Sample> {
  const host = new URL(url).host
  const requests = bodies.map(body => httpRequest(host, path, body))
  let next = 0
  const sample = await run(url, Math.min(connections, requests.length), requests.length, () =>
    next < requests.length ? requests[next++] : undefined
  )
  const unanswered = requests.length - sample.requests
  if (unanswered > 0) sample.failures.unanswered = unanswered
  return sample
}

/**
 * Runs `cycles` times the sequence `steps` on each of `connections` connections, each with its
 * own context (e.g. requestSession, then createSession over the challenge it returned).
 */
export function flow(
  url: string,
  connections: number,
  cycles: number,
  steps: Step[]
): Promise<Sample> {
  const host = new URL(url).host
  const state = Array.from({ length: connections }, () => ({
    step: 0,
    done: 0,
    context: {} as Record<string, unknown>,
  }))
  return run(
    url,
    connections,
    connections * cycles * steps.length,
    index => {
      const s = state[index] as (typeof state)[number]
      if (s.done >= cycles) return undefined
      const step = steps[s.step] as Step
      return httpRequest(host, step.path, step.body(s.context))
    },
    (index, response) => {
      const s = state[index] as (typeof state)[number]
      const step = steps[s.step] as Step
      step.onResponse?.(response.status, response.body.toString(), s.context)
      s.step = (s.step + 1) % steps.length
      if (s.step === 0) {
        s.done++
        s.context = {}
      }
    }
  )
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

/** How many requests of a sample failed, whatever the reason. */
export function failedCount(sample: Sample): number {
  return Object.values(sample.failures).reduce((n, v) => n + v, 0)
}

/** The middle value (the upper of the two middle ones for an even count). */
export const median = (values: readonly number[]): number =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number

/** Throughput (2xx per second, or flows when `unitsPerOk` requests make one) and percentiles. */
export function stats(sample: Sample, unitsPerOk = 1): Stats {
  const sorted = sample.latencies.slice().sort()
  const failed = failedCount(sample)
  return {
    rps: sample.ok / unitsPerOk / sample.elapsed,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    requests: sample.requests,
    failed,
  }
}
