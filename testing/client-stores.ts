/**
 * The conformance suite of client stores (identity, device, token, both key chains, the lock):
 * what BetterAuthClient relies on, for any implementation (memory, IndexedDB, files, your own).
 * It uses no test framework and no Node module, so it runs under Jest as in a browser page:
 *
 *   for (const c of clientStoreCases(factory)) it(c.name, c.run)
 */
import type { ClientStores } from '../src/client/client'
import type { ClientLock } from '../src/client/stores'
import { Blake3Hasher, WebCryptoVerifier } from '../src/client/webcrypto'
import type { Verifier } from '../src/crypto/types'

export type ClientStoreSet = Required<Omit<ClientStores, 'lock'>> & { lock?: ClientLock }

export interface ClientStoreFixture {
  /** Stores at a fresh location (a new database, directory…). */
  stores: ClientStoreSet
  /** New handles on the same location (a reload, another tab, another run of the program). */
  reopen(): ClientStoreSet | Promise<ClientStoreSet>
  /**
   * Damages the saved authentication key chain, where the stores persist anything; reading it
   * must then fail with an error naming the corruption (a ClientStoreError).
   */
  corrupt?(): Promise<void>
  dispose?(): Promise<void>
}

export interface ClientStoreCase {
  name: string
  run(): Promise<void>
}

export interface ClientStoreSuiteOptions {
  /** Verifies the keys' signatures. @default WebCryptoVerifier */
  verifier?: Verifier
}

function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`client store conformance: ${message}`)
}

async function rejects(promise: Promise<unknown>, what: string, pattern?: RegExp): Promise<Error> {
  try {
    await promise
  } catch (error) {
    if (pattern !== undefined) {
      check(
        pattern.test(`${(error as Error).name}: ${(error as Error).message}`),
        `${what}: unexpected error ${(error as Error).message}`
      )
    }
    return error as Error
  }
  throw new Error(`client store conformance: ${what} should fail`)
}

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

/** The cases, each opening its own fixture from `factory` (and disposing of it). */
export function clientStoreCases(
  factory: () => Promise<ClientStoreFixture>,
  options: ClientStoreSuiteOptions = {}
): ClientStoreCase[] {
  const hasher = new Blake3Hasher()
  const verifier = options.verifier ?? new WebCryptoVerifier()
  const message = new TextEncoder().encode('{"conformance":true}')

  const withFixture =
    (body: (fixture: ClientStoreFixture) => Promise<void>) => async (): Promise<void> => {
      const fixture = await factory()
      try {
        await body(fixture)
      } finally {
        await fixture.dispose?.()
      }
    }

  const cases: [string, (fixture: ClientStoreFixture) => Promise<void>][] = [
    [
      'starts empty',
      async ({ stores }) => {
        check((await stores.identity.get()) === undefined, 'identity is set')
        check((await stores.device.get()) === undefined, 'device is set')
        check((await stores.accessToken.get()) === undefined, 'token is set')
        await rejects(stores.authenticationKeys.signer(), 'signer() before initialize()')
        await rejects(stores.accessKeys.next(), 'next() before initialize()')
      },
    ],
    [
      'keeps values, replaces and clears them',
      async ({ stores }) => {
        await stores.identity.store('identity-1')
        await stores.device.store('device-1')
        await stores.accessToken.store('token-1')
        check((await stores.identity.get()) === 'identity-1', 'identity round trip')
        check((await stores.device.get()) === 'device-1', 'device round trip')
        check((await stores.accessToken.get()) === 'token-1', 'token round trip')
        await stores.accessToken.store('token-2')
        check((await stores.accessToken.get()) === 'token-2', 'token replaced')
        check((await stores.identity.get()) === 'identity-1', 'identity kept')
        if (stores.accessToken.clear !== undefined) {
          await stores.accessToken.clear()
          check((await stores.accessToken.get()) === undefined, 'token cleared')
          check((await stores.device.get()) === 'device-1', 'device kept after clearing the token')
        }
      },
    ],
    [
      'initialize() returns a consistent identity, key and commitment',
      async ({ stores }) => {
        const [identity, publicKey, rotationHash] =
          await stores.authenticationKeys.initialize('extra')
        check(identity === hasher.sum(publicKey + rotationHash + 'extra'), 'identity derivation')
        const signer = await stores.authenticationKeys.signer()
        check((await signer.publicKey()) === publicKey, 'signer is the initialized key')
        const [next] = await stores.authenticationKeys.next()
        check(hasher.sum(await next.publicKey()) === rotationHash, 'rotation hash commits to next')
        check((await next.publicKey()) !== publicKey, 'next key differs from the current key')
      },
    ],
    [
      'next() is stable until rotate()',
      async ({ stores }) => {
        await stores.accessKeys.initialize()
        const [a, hashA] = await stores.accessKeys.next()
        const [b, hashB] = await stores.accessKeys.next()
        check((await a.publicKey()) === (await b.publicKey()), 'next key changed')
        check(hashA === hashB, 'next rotation hash changed')
      },
    ],
    [
      'rotate() moves the chain forward and keeps the commitments',
      async ({ stores }) => {
        await stores.authenticationKeys.initialize()
        for (let i = 0; i < 3; i++) {
          const [next, nextHash] = await stores.authenticationKeys.next()
          await stores.authenticationKeys.rotate()
          const signer = await stores.authenticationKeys.signer()
          check((await signer.publicKey()) === (await next.publicKey()), 'signer is the old next')
          const [after] = await stores.authenticationKeys.next()
          check(hasher.sum(await after.publicKey()) === nextHash, 'new next matches commitment')
        }
      },
    ],
    [
      'rotate() without next() fails',
      async ({ stores }) => {
        await stores.authenticationKeys.initialize()
        await rejects(stores.authenticationKeys.rotate(), 'rotate() without next()')
      },
    ],
    [
      'keys make signatures that verify',
      async ({ stores }) => {
        await stores.authenticationKeys.initialize()
        const signer = await stores.authenticationKeys.signer()
        const signature = await signer.sign(message)
        check(/^0I[A-Za-z0-9_-]{86}$/.test(signature), 'signature is qualified (0I…)')
        check(await verifier.verify(message, signature, await signer.publicKey()), 'verifies')
        const [next] = await stores.authenticationKeys.next()
        check(
          !(await verifier.verify(message, signature, await next.publicKey())),
          'verifies under another key'
        )
      },
    ],
    [
      'state persists across handles on the same location',
      async fixture => {
        const { stores } = fixture
        await stores.identity.store('identity-1')
        await stores.accessToken.store('token-1')
        const [, publicKey] = await stores.authenticationKeys.initialize()
        const [next, nextHash] = await stores.authenticationKeys.next()
        await stores.accessKeys.initialize()
        const other = await fixture.reopen()
        check((await other.identity.get()) === 'identity-1', 'identity after reopen')
        check((await other.accessToken.get()) === 'token-1', 'token after reopen')
        const signer = await other.authenticationKeys.signer()
        check((await signer.publicKey()) === publicKey, 'signer after reopen')
        const [sameNext, sameHash] = await other.authenticationKeys.next()
        check((await sameNext.publicKey()) === (await next.publicKey()), 'next after reopen')
        check(sameHash === nextHash, 'commitment after reopen')
        check(await verifier.verify(message, await signer.sign(message), publicKey), 'signs')
        // A rotation through one handle is seen by the other.
        await other.authenticationKeys.rotate()
        const seen = await stores.authenticationKeys.signer()
        check((await seen.publicKey()) === (await next.publicKey()), 'rotation seen by first')
      },
    ],
    [
      'the two chains are independent',
      async ({ stores }) => {
        const [, authKey] = await stores.authenticationKeys.initialize()
        const [, accessKey] = await stores.accessKeys.initialize()
        check(authKey !== accessKey, 'chains share a key')
        await stores.accessKeys.next()
        await stores.accessKeys.rotate()
        const signer = await stores.authenticationKeys.signer()
        check((await signer.publicKey()) === authKey, 'access rotation moved authentication')
      },
    ],
    [
      'initialize() starts a new chain',
      async ({ stores }) => {
        const [, first] = await stores.accessKeys.initialize()
        await stores.accessKeys.next()
        const [, second, rotationHash] = await stores.accessKeys.initialize()
        check(first !== second, 'same key after initialize()')
        const [next] = await stores.accessKeys.next()
        check(hasher.sum(await next.publicKey()) === rotationHash, 'stale next after initialize()')
      },
    ],
    [
      'the lock runs tasks of one name one at a time',
      async ({ stores }) => {
        const lock = stores.lock
        if (lock === undefined) return
        let inside = 0
        let most = 0
        const task = async () => {
          inside++
          most = Math.max(most, inside)
          await sleep(5)
          inside--
        }
        await Promise.all(Array.from({ length: 5 }, () => lock.run('conformance', task)))
        check(most === 1, 'tasks overlapped')
        const failed = lock.run('conformance', async () => {
          throw new Error('task failed')
        })
        await rejects(failed, 'a failing task', /task failed/)
        check((await lock.run('conformance', async () => 42)) === 42, 'lock usable after a failure')
      },
    ],
    [
      'a pending rotation keeps both outcomes, across handles, until rotate() settles it',
      async fixture => {
        const keys = fixture.stores.authenticationKeys
        if (keys.pending === undefined || keys.ahead === undefined) return
        const [, publicKey] = await keys.initialize()
        check(!(await keys.pending()), 'pending after initialize()')
        const [next, nextHash] = await keys.next()
        check(await keys.pending(), 'not pending after next()')
        const other = (await fixture.reopen()).authenticationKeys
        check((await other.pending?.()) === true, 'pending not seen by another handle')
        // The other outcome: the key after next, committed to by next's rotation hash.
        const [ahead, aheadHash] = await other.ahead!()
        check(hasher.sum(await ahead.publicKey()) === nextHash, 'ahead key is not committed to')
        const [again, againHash] = await keys.ahead()
        check((await again.publicKey()) === (await ahead.publicKey()), 'ahead() changed')
        check(againHash === aheadHash, 'ahead() commitment changed')
        // Both outcomes stay: the current key, and next() as it was.
        check((await (await keys.signer()).publicKey()) === publicKey, 'current key moved')
        const [sameNext, sameHash] = await keys.next()
        check((await sameNext.publicKey()) === (await next.publicKey()), 'next() changed')
        check(sameHash === nextHash, 'next() commitment changed')
        // Two rotations move the chain to the ahead outcome.
        await keys.rotate()
        check(await keys.pending(), 'the ahead outcome was dropped by the first rotate()')
        const [step, stepHash] = await keys.next()
        check((await step.publicKey()) === (await ahead.publicKey()), 'next is not the ahead key')
        check(stepHash === aheadHash, 'next commitment is not the ahead one')
        await keys.rotate()
        check(!(await keys.pending()), 'still pending after two rotate()')
        const signer = await other.signer()
        check((await signer.publicKey()) === (await ahead.publicKey()), 'not at the ahead key')
        const [after] = await other.next()
        check(hasher.sum(await after.publicKey()) === aheadHash, 'chain broken after settling')
      },
    ],
    [
      'rotate() and initialize() settle a pending rotation',
      async ({ stores }) => {
        const keys = stores.accessKeys
        if (keys.pending === undefined) return
        await keys.initialize()
        await keys.next()
        await keys.rotate()
        check(!(await keys.pending()), 'pending after rotate()')
        await keys.next()
        await keys.ahead?.()
        await keys.initialize()
        check(!(await keys.pending()), 'pending after initialize()')
        await rejects(keys.ahead?.() ?? Promise.reject(new Error('x')), 'ahead() when settled')
      },
    ],
    [
      'a corrupted key chain is reported as such',
      async fixture => {
        if (fixture.corrupt === undefined) return
        await fixture.stores.authenticationKeys.initialize()
        await fixture.corrupt()
        const reopened = await fixture.reopen()
        await rejects(reopened.authenticationKeys.signer(), 'reading a corrupted chain', /corrupt/i)
      },
    ],
  ]
  return cases.map(([name, body]) => ({ name, run: withFixture(body) }))
}
