/**
 * A benchmark target in its own process, so the load generator never shares its event loop.
 *
 *   node --expose-gc --import tsx bench/child.ts <target> <port>
 *
 * Talks to the runner over IPC: sends `ready`; answers `memory` (after two full GCs) with
 * `process.memoryUsage()` plus the target's own numbers, and `cpu` with the process's CPU time
 * (all threads, µs), `floor` and `digest` with the crypto floor of a protected request and the
 * header form's body digest timed here, `flow-floor` with the floor of a session flow or a
 * refresh; `close-twins` closes the servers that share the process (see Running.twins); exits on
 * `stop` or when the runner goes.
 */
import { generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto'
import { gzipSync, gunzipSync } from 'node:zlib'
import {
  publicKeyObject,
  qualifiedPublicKey,
  sha256Base64,
  uncompressedPoint,
} from '../src/crypto/node'
import type { Running, Start } from './targets/common'

const TARGETS: Record<string, () => Promise<{ start: Start }>> = {
  node: () => import('./targets/node.js'),
  standalone: () => import('./targets/standalone.js'),
  express: () => import('./targets/express.js'),
  koa: () => import('./targets/koa.js'),
  nest: () => import('./targets/nest.js'),
  'nest-fastify': () => import('./targets/nest-fastify.js'),
}

interface Message {
  type: 'memory' | 'cpu' | 'floor' | 'flow-floor' | 'digest' | 'close-twins' | 'stop'
  /** For `floor` and `flow-floor`: how many units. */
  count?: number
  /** For `flow-floor`: which flow. */
  flow?: 'sessions' | 'refresh'
}

/** What a protected request signs and verifies: the access payload, the reply, the body. */
const FLOOR_REQUEST = Buffer.alloc(760, 'a') // an access request's payload text (token included)
const FLOOR_REPLY = Buffer.alloc(150, 'b') // a reply's payload
const FLOOR_BODY = Buffer.from('{"foo":"bar","bar":"foo"}') // the header form's body
let floorKeys: { privateKey: KeyObject; publicKey: KeyObject; signature: Buffer } | undefined

/** The key pair the floors sign with (made once), and a signature of FLOOR_REQUEST by it. */
function serverKeys(): NonNullable<typeof floorKeys> {
  if (floorKeys === undefined) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const signature = sign('sha256', FLOOR_REQUEST, { key: privateKey, dsaEncoding: 'ieee-p1363' })
    floorKeys = { privateKey, publicKey, signature }
  }
  return floorKeys
}

/**
 * The crypto floor of a protected request, on this thread: `count` times one ECDSA P-256 verify
 * on a cached KeyObject and one signature, nothing else. Wall seconds; the runner reads the CPU
 * around it.
 */
function floor(count: number): { elapsed: number } {
  const keys = serverKeys()
  const { signature } = keys
  const verifyKey = { key: keys.publicKey, dsaEncoding: 'ieee-p1363' } as const
  const signKey = { key: keys.privateKey, dsaEncoding: 'ieee-p1363' } as const
  const started = performance.now()
  for (let i = 0; i < count; i++) {
    if (!verify('sha256', FLOOR_REQUEST, verifyKey, signature))
      throw new Error('floor: bad signature')
    sign('sha256', FLOOR_REPLY, signKey)
  }
  return { elapsed: (performance.now() - started) / 1000 }
}

// A token's claims as the server gzips them (the bench's attributes), ~400 bytes of JSON.
const CLAIMS = Buffer.from(
  JSON.stringify({
    serverIdentity: '1AAI' + 'B'.repeat(44),
    device: 'E' + 'd'.repeat(43),
    identity: 'E' + 'i'.repeat(43),
    publicKey: '1AAI' + 'k'.repeat(44),
    rotationHash: 'E' + 'r'.repeat(43),
    issuedAt: '2026-12-02T01:00:00.000000000Z',
    expiry: '2026-12-02T01:15:00.000000000Z',
    refreshExpiry: '2026-12-02T13:00:00.000000000Z',
    attributes: { permissionsByRole: { admin: ['read', 'write'] } },
  })
)
const TOKEN_GZIP = gzipSync(CLAIMS)
const FLOW_REPLY = Buffer.alloc(900, 'c') // createSession's and refresh's reply (token inside)
const FLOW_REQUEST = Buffer.alloc(500, 'd') // a signed session request's payload
const NEW_KEYS = 64
let flowKeys:
  { texts: string[]; signatures: Buffer[]; cached: KeyObject; cachedSignature: Buffer } | undefined

/** A P-256 key pair, with its public key as qualified text (`1AAI…`, as the protocol sends it). */
function newKey(): { text: string; privateKey: KeyObject; publicKey: KeyObject } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  return { text: qualifiedPublicKey(publicKey), privateKey, publicKey }
}

const p1363 = (key: KeyObject) => ({ key, dsaEncoding: 'ieee-p1363' }) as const

/**
 * What a session flow (requestSession + createSession) or a refresh cannot do without, on this
 * thread, `count` times, nothing else (bench/run.ts adds a bare HTTP exchange per request):
 *   sessions: 3 signatures (the challenge's reply, the token, createSession's reply), 1 verify
 *     on a cached key (the device's), the new access key's point check (decompression), 1 gzip
 *     of the token's claims;
 *   refresh: 1 verify on a cached key (the token's), the new access key's point check and
 *     import (JWK, the cheapest import measured) and a verify with it, 2 signatures (token,
 *     reply), 1 gunzip (the old token) and 1 gzip (the new one).
 * New keys come from a pool (node does not cache an import, so reusing them costs the same).
 * Wall seconds; the runner reads the CPU around it.
 */
function flowFloor(flow: 'sessions' | 'refresh', count: number): { elapsed: number } {
  const signKey = p1363(serverKeys().privateKey)
  if (flowKeys === undefined) {
    const pool = Array.from({ length: NEW_KEYS }, newKey)
    const device = newKey()
    flowKeys = {
      texts: pool.map(k => k.text),
      signatures: pool.map(k => sign('sha256', FLOW_REQUEST, p1363(k.privateKey))),
      cached: device.publicKey,
      cachedSignature: sign('sha256', FLOW_REQUEST, p1363(device.privateKey)),
    }
  }
  const keys = flowKeys
  const started = performance.now()
  for (let i = 0; i < count; i++) {
    // The server's own point check and import (src/crypto/node.ts).
    const fresh = keys.texts[i % NEW_KEYS] as string
    if (flow === 'sessions' && uncompressedPoint(fresh) === undefined) {
      throw new Error('flow floor: not a point')
    }
    if (!verify('sha256', FLOW_REQUEST, p1363(keys.cached), keys.cachedSignature)) {
      throw new Error('flow floor: bad signature')
    }
    if (flow === 'sessions') {
      sign('sha256', FLOOR_REPLY, signKey)
      gzipSync(CLAIMS)
      sign('sha256', TOKEN_GZIP, signKey)
      sign('sha256', FLOW_REPLY, signKey)
      continue
    }
    const key = publicKeyObject(fresh)
    if (key === undefined) throw new Error('flow floor: not a point')
    if (!verify('sha256', FLOW_REQUEST, p1363(key), keys.signatures[i % NEW_KEYS] as Buffer)) {
      throw new Error('flow floor: bad signature')
    }
    gunzipSync(TOKEN_GZIP)
    gzipSync(CLAIMS)
    sign('sha256', TOKEN_GZIP, signKey)
    sign('sha256', FLOW_REPLY, signKey)
  }
  return { elapsed: (performance.now() - started) / 1000 }
}

/**
 * CPU µs of the SHA-256 of the header form's body (`Content-Digest`: what that form adds), computed
 * as the server computes it: its base64 text (`sha256Base64`), which the server compares with the
 * field's. (node:crypto's `hash` giving a Buffer instead costs ~1 µs more here, for the Buffer.)
 */
function digest(): { digestMicros: number } {
  const digests = 50_000
  const before = process.cpuUsage()
  for (let i = 0; i < digests; i++) sha256Base64(FLOOR_BODY)
  const used = process.cpuUsage(before)
  return { digestMicros: (used.user + used.system) / digests }
}

async function main(): Promise<void> {
  const [name, portText] = process.argv.slice(2)
  const load = TARGETS[name ?? '']
  if (load === undefined || portText === undefined) {
    throw new Error(`usage: child.ts <${Object.keys(TARGETS).join('|')}> <port>`)
  }
  const running: Running = await (await load()).start(Number(portText))
  const send = (message: object) => process.send?.(message)
  process.on('message', (message: Message) => {
    if (message.type === 'memory') {
      const gc = (globalThis as { gc?: () => void }).gc
      gc?.()
      gc?.()
      send({ type: 'memory', ...process.memoryUsage(), ...running.stats?.() })
    } else if (message.type === 'cpu') {
      const { user, system } = process.cpuUsage()
      send({ type: 'cpu', micros: user + system })
    } else if (message.type === 'floor') {
      send({ type: 'floor', ...floor(message.count ?? 1000) })
    } else if (message.type === 'flow-floor') {
      send({ type: 'flow-floor', ...flowFloor(message.flow ?? 'sessions', message.count ?? 100) })
    } else if (message.type === 'digest') {
      send({ type: 'digest', ...digest() })
    } else if (message.type === 'close-twins') {
      void (running.closeTwins?.() ?? Promise.resolve()).then(() => send({ type: 'close-twins' }))
    } else if (message.type === 'stop') {
      running.close().finally(() => process.exit(0))
    }
  })
  process.on('disconnect', () => process.exit(0))
  send({ type: 'ready', pid: process.pid, port: running.port, twins: running.twins ?? {} })
}

main().catch(error => {
  console.error(error)
  process.exit(1)
})
