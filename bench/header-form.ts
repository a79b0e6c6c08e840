/**
 * CPU per protected request, classic body form against the header form (HTTP Message
 * Signatures), on the standalone server and on Express: the same route (`POST /foo/bar`, the same
 * JSON body), requests signed beforehand, then sent over keep-alive connections by this process.
 * Reported: the core's own work per request (verification and reply signing, no HTTP), and the
 * whole process's CPU per request over HTTP (server and client in one process: compare the two
 * forms, not the absolute figures with bench/run.ts). Run by hand:
 *
 *   npx tsx bench/header-form.ts        # BENCH_N requests per form (default 2000), median of 3
 */
import express from 'express'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { betterAuth } from '../adapters/express'
import { createServer } from '../adapters/node'
import { signHeaderRequest } from '../src/binding'
import { formatTimestamp } from '../src/codec/timestamp'
import { NodeSigningKey } from '../src/crypto/node'
import type { SigningKey } from '../src/crypto/types'
import { createBetterAuth, MemoryStore, type BetterAuthServer } from '../src'
import { Blake3Hasher } from '../src/crypto/blake3'
import { RandomNoncer } from '../src/crypto/nonce'
import { median } from './load'

const N = Number(process.env.BENCH_N ?? 2000)
const CONCURRENCY = 8
const BODY = '{"foo":"bar","bar":"foo"}'
const hasher = new Blake3Hasher()
const noncer = new RandomNoncer()

export interface Signed {
  method: string
  headers: Record<string, string>
  body: string
}

async function credentials(auth: BetterAuthServer) {
  const key = NodeSigningKey.generate()
  const now = Date.now()
  const token = await auth.issueToken({
    device: hasher.sum('device'),
    identity: hasher.sum('identity'),
    publicKey: key.publicKeyText,
    rotationHash: hasher.sum('rotation'),
    issuedAt: formatTimestamp(now),
    expiry: formatTimestamp(now + 900_000),
    refreshExpiry: formatTimestamp(now + 43_200_000),
    attributes: {},
  })
  return { key, token }
}

/**
 * A header-form request for `POST url` with the benchmark's JSON body, signed now with a fresh
 * nonce: the headers to send (content type included) and the body. Shared with bench/run.ts.
 */
export async function headerFormRequest(
  url: string,
  token: string,
  key: SigningKey,
  body = BODY
): Promise<Signed> {
  const signed = await signHeaderRequest({
    method: 'POST',
    url,
    body: Buffer.from(body),
    token,
    signer: key,
    nonce: noncer.generate128(),
    timestamp: Date.now(),
  })
  return {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...signed.headers },
    body,
  }
}

async function sign(auth: BetterAuthServer, url: string, form: 'body' | 'headers', n: number) {
  const { key, token } = await credentials(auth)
  const out: Signed[] = []
  for (let i = 0; i < n; i++) {
    const nonce = noncer.generate128()
    if (form === 'body') {
      const payload = JSON.stringify({
        access: { nonce, timestamp: formatTimestamp(Date.now()), token },
        request: JSON.parse(BODY) as unknown,
      })
      const signature = key.signSync(Buffer.from(payload))
      const body = `{"payload":${payload},"signature":"${signature}"}`
      out.push({ method: 'POST', headers: { 'content-type': 'application/json' }, body })
    } else {
      out.push(await headerFormRequest(url, token, key))
    }
  }
  return out
}

function cpuMicros(): number {
  const usage = process.cpuUsage()
  return usage.user + usage.system
}

async function overHttp(url: string, requests: Signed[]): Promise<number> {
  let next = 0
  const before = cpuMicros()
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < requests.length) {
        const r = requests[next++] as Signed
        const response = await fetch(url, r)
        await response.arrayBuffer()
        if (response.status !== 200) throw new Error(`HTTP ${response.status}`)
      }
    })
  )
  return (cpuMicros() - before) / requests.length
}

async function inCore(auth: BetterAuthServer, url: string, form: 'body' | 'headers') {
  const requests = await sign(auth, url, form, N)
  const before = cpuMicros()
  for (const r of requests) {
    if (form === 'body') {
      const p = await auth.verifyAccess(r.body)
      await auth.respond(p.nonce, { wasFoo: 'bar', wasBar: 'foo' })
    } else {
      const p = await auth.verifyHeaderAccess({
        method: 'POST',
        url,
        headers: r.headers,
        body: Buffer.from(r.body),
        parsed: JSON.parse(r.body) as unknown,
      })
      await auth.signHeaderResponse({
        status: 200,
        body: Buffer.from('{"wasFoo":"bar","wasBar":"foo"}'),
        requestSignature: p.requestSignature as Uint8Array,
      })
    }
  }
  return (cpuMicros() - before) / N
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return (server.address() as AddressInfo).port
}

async function main(): Promise<void> {
  const auth = createBetterAuth({
    store: new MemoryStore(),
    keys: { env: false },
    rateLimit: false,
  })
  await auth.ready()
  const rows: [string, string, number][] = []
  for (const form of ['body', 'headers'] as const) {
    const runs: number[] = []
    for (let i = 0; i < 3; i++) runs.push(await inCore(auth, 'http://127.0.0.1:1/foo/bar', form))
    rows.push(['core (verify + sign reply)', form, median(runs)])
  }

  const standalone = createServer(auth)
  standalone.protect('/foo/bar', () => ({ wasFoo: 'bar', wasBar: 'foo' }))
  const app = express()
  const adapter = betterAuth(auth)
  app.post('/foo/bar', adapter.requireAccess(), (_req, res) => {
    res.json({ wasFoo: 'bar', wasBar: 'foo' })
  })
  const targets: [string, Server][] = [
    ['standalone', standalone.server],
    ['express', app.listen(0, '127.0.0.1')],
  ]
  for (const [name, server] of targets) {
    const port = server.listening ? (server.address() as AddressInfo).port : await listen(server)
    const url = `http://127.0.0.1:${port}/foo/bar`
    await overHttp(url, await sign(auth, url, 'body', 200)) // warm-up
    await overHttp(url, await sign(auth, url, 'headers', 200))
    for (const form of ['body', 'headers'] as const) {
      const runs: number[] = []
      for (let i = 0; i < 3; i++) runs.push(await overHttp(url, await sign(auth, url, form, N)))
      rows.push([`${name} over HTTP (process)`, form, median(runs)])
    }
    server.closeAllConnections()
    await new Promise(resolve => server.close(resolve))
  }
  await auth.close()
  console.log(`CPU per request, µs (median of 3 runs of ${N}; Node ${process.version})`)
  for (const [what, form, us] of rows)
    console.log(`${what.padEnd(34)} ${form.padEnd(8)} ${us.toFixed(0)}`)
}

// Run by hand; bench/run.ts imports headerFormRequest only.
if (require.main === module) void main()
