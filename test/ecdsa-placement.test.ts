/**
 * Where the server's ECDSA runs (`crypto.ecdsa`, src/crypto/node.ts): on the event loop, on
 * libuv's threadpool, or chosen by the event loop's load. Every placement makes signatures the
 * client accepts; `'inline'` hands nothing to the threadpool and `'threadpool'` everything.
 */
import { createHook } from 'node:async_hooks'
import { availableParallelism } from 'node:os'
import {
  NodeP256Verifier,
  NodeSigningKey,
  ecdsaScheduler,
  signPlaced,
  signBase64Placed,
  type EcdsaPlacement,
} from '../src/crypto/node'
import { createBetterAuth } from '../src'
import { hash, makeClient, makeServer } from './helpers'

/**
 * node:crypto's sign and verify jobs that ran on the threadpool while `run` ran: the `SignJob`s
 * whose callback came back (a synchronous one makes a job too, but calls nothing back).
 */
async function signJobsDuring(run: () => Promise<unknown>): Promise<number> {
  const started = new Set<number>()
  let jobs = 0
  const hook = createHook({
    init(id, type) {
      if (type === 'SIGNREQUEST') started.add(id)
    },
    before(id) {
      if (started.delete(id)) jobs++
    },
  })
  hook.enable()
  try {
    await run()
  } finally {
    hook.disable()
  }
  return jobs
}

const message = Buffer.from('a message to sign')
const key = NodeSigningKey.generate()
const verifier = new NodeP256Verifier()

describe('crypto.ecdsa', () => {
  it.each(['inline', 'threadpool', 'auto'] as const)(
    'the flows and a protected request work with ECDSA %s',
    async (ecdsa: EcdsaPlacement) => {
      const server = makeServer({ crypto: { ecdsa } })
      // Counts the server's jobs only: the client signs on the threadpool too.
      let jobs = 0
      const serverAccess = server.access
      server.access = async body => {
        let result: Awaited<ReturnType<typeof serverAccess>> | undefined
        jobs += await signJobsDuring(async () => (result = await serverAccess(body)))
        return result as Awaited<ReturnType<typeof serverAccess>>
      }
      const client = makeClient(server)
      await client.createAccount(hash(NodeSigningKey.generate().publicKeyText))
      await client.createSession()
      await client.refreshSession()
      const reply = await client.accessRequest('/foo/bar', { foo: 'x', bar: 'y' })
      expect(reply).toEqual({ wasFoo: 'x', wasBar: 'y' })
      // The token's signature (first seen), the request's, and the reply's.
      if (ecdsa === 'inline') expect(jobs).toBe(0)
      if (ecdsa === 'threadpool') expect(jobs).toBe(3)
    }
  )

  it('refuses a placement it does not know, with a TypeError naming the option', () => {
    expect(() => createBetterAuth({ crypto: { ecdsa: 'fast' as EcdsaPlacement } })).toThrow(
      /crypto\.ecdsa must be 'auto', 'threadpool' or 'inline'/
    )
  })
})

describe('signPlaced and signBase64Placed', () => {
  it.each(['inline', 'threadpool'] as const)(
    'sign with a node:crypto key %s, and the signatures verify',
    async placement => {
      const scheduler = ecdsaScheduler(placement)
      const jobs = await signJobsDuring(async () => {
        const text = await signPlaced(key, message, scheduler)
        expect(verifier.verify(message, text, key.publicKeyText)).toBe(true)
        const raw = await signBase64Placed(key, message, scheduler)
        expect(raw).toMatch(/^[A-Za-z0-9+/]{86}==$/)
        const bytes = Buffer.from(raw as string, 'base64')
        expect(verifier.verifyRaw(message, bytes, key.publicKeyText)).toBe(true)
      })
      expect(jobs).toBe(placement === 'inline' ? 0 : 2)
    }
  )

  it('leave any other key to sign as it signs', async () => {
    const other = {
      sign: jest.fn((bytes: Uint8Array) => key.sign(bytes)),
      publicKey: () => key.publicKey(),
    }
    const inline = ecdsaScheduler('inline')
    const text = await signPlaced(other, message, inline)
    const raw = await signBase64Placed(other, message, inline)
    expect(other.sign).toHaveBeenCalledTimes(2)
    expect(verifier.verify(message, text, key.publicKeyText)).toBe(true)
    const bytes = Buffer.from(raw as string, 'base64')
    expect(verifier.verifyRaw(message, bytes, key.publicKeyText)).toBe(true)
  })
})

describe("ecdsaScheduler('auto')", () => {
  const spin = (ms: number) => {
    const until = performance.now() + ms
    while (performance.now() < until) {
      // the event loop is busy
    }
  }
  const idle = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

  it('offloads while the event loop is busy and goes back inline once it is idle', async () => {
    const auto = ecdsaScheduler('auto')
    if (availableParallelism() < 2) {
      // One CPU: nothing to offload to.
      expect(auto.placement).toBe('inline')
      return
    }
    expect(auto.placement).toBe('auto')
    await idle(150)
    expect(auto.offload()).toBe(false)
    spin(150)
    expect(auto.offload()).toBe(true)
    // Within the window the decision stands.
    expect(auto.offload()).toBe(true)
    await idle(150)
    expect(auto.offload()).toBe(false)
  })

  it('is one per process, like the event loop it reads', () => {
    expect(ecdsaScheduler('auto')).toBe(ecdsaScheduler())
    expect(ecdsaScheduler('inline').offload()).toBe(false)
    expect(ecdsaScheduler('threadpool').offload()).toBe(true)
  })
})
