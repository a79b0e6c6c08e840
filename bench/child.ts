/**
 * A benchmark target in its own process, so the load generator never shares its event loop.
 *
 *   node --expose-gc --import tsx bench/child.ts <target> <port>
 *
 * Talks to the runner over IPC: sends `ready`; answers `memory` (after two full GCs) with
 * `process.memoryUsage()` plus the target's own numbers, and `cpu` with the process's CPU time
 * (all threads, µs), `floor` and `digest` with the crypto floor of a protected request and the
 * header form's body digest timed here; `close-twins` closes the servers that share the process
 * (see Running.twins); exits on `stop` or when the runner goes.
 */
import { generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto'
import { sha256 } from '../src/crypto/node'
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
  type: 'memory' | 'cpu' | 'floor' | 'digest' | 'close-twins' | 'stop'
  /** For `floor`: how many verify + sign pairs. */
  count?: number
}

/** What a protected request signs and verifies: the access payload, the reply, the body. */
const FLOOR_REQUEST = Buffer.alloc(760, 'a') // an access request's payload text (token included)
const FLOOR_REPLY = Buffer.alloc(150, 'b') // a reply's payload
const FLOOR_BODY = Buffer.from('{"foo":"bar","bar":"foo"}') // the header form's body
let floorKeys: { privateKey: KeyObject; publicKey: KeyObject; signature: Buffer } | undefined

/**
 * The crypto floor of a protected request, on this thread: `count` times one ECDSA P-256 verify
 * on a cached KeyObject and one signature, nothing else. Wall seconds; the runner reads the CPU
 * around it.
 */
function floor(count: number): { elapsed: number } {
  if (floorKeys === undefined) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const signature = sign('sha256', FLOOR_REQUEST, { key: privateKey, dsaEncoding: 'ieee-p1363' })
    floorKeys = { privateKey, publicKey, signature }
  }
  const { signature } = floorKeys
  const verifyKey = { key: floorKeys.publicKey, dsaEncoding: 'ieee-p1363' } as const
  const signKey = { key: floorKeys.privateKey, dsaEncoding: 'ieee-p1363' } as const
  const started = performance.now()
  for (let i = 0; i < count; i++) {
    if (!verify('sha256', FLOOR_REQUEST, verifyKey, signature))
      throw new Error('floor: bad signature')
    sign('sha256', FLOOR_REPLY, signKey)
  }
  return { elapsed: (performance.now() - started) / 1000 }
}

/**
 * CPU µs of the SHA-256 of the header form's body (`Content-Digest`: what that form adds), computed
 * as the server computes it.
 */
function digest(): { digestMicros: number } {
  const digests = 50_000
  const before = process.cpuUsage()
  for (let i = 0; i < digests; i++) sha256(FLOOR_BODY)
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
