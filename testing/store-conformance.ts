/**
 * The store conformance suite: every contract of `src/stores/types.ts`, written once and run
 * against each store (memory, SQLite, PostgreSQL, Redis, and their combinations) — and against
 * yours: `import { describeStoreConformance } from 'better-auth-protocol/testing'`. It declares
 * Jest-style tests (Jest, or Vitest with `globals: true`).
 *
 *   describeStoreConformance('sqlite', async () => ({ store, advance }), async h => …)
 *
 * The factory runs once per suite (in `beforeAll`); tests use fresh random values, so they do
 * not depend on each other. `advance(ms)` makes time pass for the store: stores with a clock
 * option advance it instantly; Redis, whose TTLs run on the server, really waits, with a
 * short `ttlMs`.
 */
import { randomBytes } from 'node:crypto'
import type {
  AccountStore,
  ChallengeStore,
  DeviceKey,
  KeyStore,
  NewAccount,
  StoredKey,
  TimeLockStore,
} from '../src/stores/types'
import { testGlobals } from './globals'
import { describeAdminConformance } from './store-conformance-admin'

export interface StoreHarness {
  accounts?: AccountStore
  challenges?: ChallengeStore
  refreshKeys?: TimeLockStore
  accessNonces?: TimeLockStore
  keys?: KeyStore
  /** Lets `ms` milliseconds pass for the store (advance its clock, or wait). */
  advance(ms: number): Promise<void>
  /** The store's current time in ms (its clock). @default Date.now() */
  now?(): number
  /** A lifetime for expiry tests; `advance(ttlMs + 1)` must expire it. @default 60000 */
  ttlMs?: number
  /**
   * Durable stores: opens the same data anew, as a restarted server would (a new store object on
   * the same file or schema). Tests that state survives a restart run when it is given.
   */
  reopen?(): Promise<{ accounts: AccountStore; close(): Promise<void> }>
}

/**
 * A contract: `accounts` (AccountStore), `admin` (its administration part, AdminAccountStore),
 * `ephemeral` (challenges and time-locks), `keys` (KeyStore).
 */
export type StorePart = 'accounts' | 'admin' | 'ephemeral' | 'keys'

export interface ConformanceOptions {
  /** Which contracts the store implements. @default ['accounts', 'ephemeral'] */
  parts?: StorePart[]
  /** How many concurrent calls the race tests make. @default 50 */
  concurrency?: number
}

/** A random value shaped like a protocol hash (`E…`, 44 chars). */
export const randomHash = (): string => 'E' + randomBytes(32).toString('base64url').slice(0, 43)
/** A random value shaped like a qualified public key (`1AAI…`, 48 chars). */
export const randomKey = (): string => '1AAI' + randomBytes(33).toString('base64url')

/** A new account with random keys and hashes (stores check no derivations). */
export const randomAccount = () => ({
  identity: randomHash(),
  device: randomHash(),
  publicKey: randomKey(),
  rotationHash: randomHash(),
  recoveryHash: randomHash(),
})
/** A random value shaped like a nonce (`0A…`, 24 chars). */
export const randomNonce = (): string => '0A' + randomBytes(16).toString('base64url').slice(0, 22)

const none = { kind: 'none' } as const

const key = (): DeviceKey => ({ publicKey: randomKey(), rotationHash: randomHash() })

function newAccount(): NewAccount {
  return {
    identity: randomHash(),
    device: randomHash(),
    ...key(),
    recoveryHash: randomHash(),
  }
}

function required<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`the harness has no ${what}`)
  return value
}

function count<T>(values: T[], predicate: (value: T) => boolean): number {
  return values.filter(predicate).length
}

/** Declares the conformance tests of a store. */
export function describeStoreConformance(
  name: string,
  factory: () => Promise<StoreHarness>,
  teardown: (harness: StoreHarness) => Promise<void> = async () => undefined,
  options: ConformanceOptions = {}
): void {
  const { describe, it, expect, beforeAll, afterAll } = testGlobals()
  const parts = new Set(options.parts ?? ['accounts', 'ephemeral'])
  const n = options.concurrency ?? 50

  describe(`store conformance: ${name}`, () => {
    let h: StoreHarness
    const ttl = (): number => h.ttlMs ?? 60_000

    beforeAll(async () => {
      h = await factory()
    })
    afterAll(async () => {
      if (h !== undefined) await teardown(h)
    })

    if (parts.has('accounts')) {
      describe('AccountStore', () => {
        const accounts = (): AccountStore => required(h.accounts, 'accounts')

        /** Creates an account and returns it with its first device's key. */
        async function created(): Promise<NewAccount> {
          const account = newAccount()
          expect(await accounts().createAccount(account)).toBe(true)
          return account
        }

        /** Everything readable about an identity and some of its devices. */
        async function state(identity: string, devices: string[]): Promise<unknown> {
          return {
            exists: await accounts().hasIdentity(identity),
            recoveryHash: await accounts().getRecoveryHash(identity),
            devices: await Promise.all(devices.map(d => accounts().getDeviceKey(identity, d))),
          }
        }

        describe('createAccount', () => {
          it('stores the identity, its recovery hash and its first device', async () => {
            const a = newAccount()
            expect(await accounts().hasIdentity(a.identity)).toBe(false)
            expect(await accounts().createAccount(a)).toBe(true)
            expect(await accounts().hasIdentity(a.identity)).toBe(true)
            expect(await accounts().getRecoveryHash(a.identity)).toBe(a.recoveryHash)
            expect(await accounts().getDeviceKey(a.identity, a.device)).toEqual({
              publicKey: a.publicKey,
              rotationHash: a.rotationHash,
            })
          })

          it('refuses an existing identity and keeps the first account unchanged', async () => {
            const a = await created()
            const before = await state(a.identity, [a.device])
            const again = { ...newAccount(), identity: a.identity }
            expect(await accounts().createAccount(again)).toBe(false)
            expect(await state(a.identity, [a.device, again.device])).toEqual({
              ...(before as object),
              devices: [{ publicKey: a.publicKey, rotationHash: a.rotationHash }, undefined],
            })
          })

          it('answers undefined and false for what does not exist', async () => {
            const a = await created()
            expect(await accounts().hasIdentity(randomHash())).toBe(false)
            expect(await accounts().getRecoveryHash(randomHash())).toBeUndefined()
            expect(await accounts().getDeviceKey(randomHash(), a.device)).toBeUndefined()
            expect(await accounts().getDeviceKey(a.identity, randomHash())).toBeUndefined()
          })

          it(`of ${n} concurrent creations of one identity, exactly one succeeds`, async () => {
            const identity = randomHash()
            const attempts = Array.from({ length: n }, () => ({ ...newAccount(), identity }))
            const results = await Promise.all(attempts.map(a => accounts().createAccount(a)))
            expect(count(results, r => r)).toBe(1)
            const winner = attempts[results.indexOf(true)] as NewAccount
            expect(await accounts().getRecoveryHash(identity)).toBe(winner.recoveryHash)
            const keys = await Promise.all(
              attempts.map(a => accounts().getDeviceKey(identity, a.device))
            )
            expect(count(keys, k => k !== undefined)).toBe(1)
          })
        })

        describe('rotate', () => {
          it('replaces the key when the expected rotation hash matches', async () => {
            const a = await created()
            const next = key()
            expect(await accounts().rotate(a.identity, a.device, a.rotationHash, next, none)).toBe(
              'ok'
            )
            expect(await accounts().getDeviceKey(a.identity, a.device)).toEqual(next)
            // The old commitment is spent: the same rotation again is a mismatch.
            expect(await accounts().rotate(a.identity, a.device, a.rotationHash, key(), none)).toBe(
              'hash-mismatch'
            )
            expect(await accounts().getDeviceKey(a.identity, a.device)).toEqual(next)
          })

          it('answers unknown-device for an unknown identity or device, changing nothing', async () => {
            const a = await created()
            const before = await state(a.identity, [a.device])
            expect(
              await accounts().rotate(randomHash(), a.device, a.rotationHash, key(), none)
            ).toBe('unknown-device')
            expect(
              await accounts().rotate(a.identity, randomHash(), a.rotationHash, key(), none)
            ).toBe('unknown-device')
            expect(await state(a.identity, [a.device])).toEqual(before)
          })

          it('answers hash-mismatch for a wrong expected hash, changing nothing', async () => {
            const a = await created()
            const before = await state(a.identity, [a.device])
            for (const effect of [
              none,
              { kind: 'deleteIdentity' as const },
              { kind: 'changeRecoveryHash' as const, recoveryHash: randomHash() },
              { kind: 'revokeDevice' as const, device: a.device },
              { kind: 'linkDevice' as const, device: randomHash(), ...key() },
            ]) {
              expect(
                await accounts().rotate(a.identity, a.device, randomHash(), key(), effect)
              ).toBe('hash-mismatch')
            }
            expect(await state(a.identity, [a.device])).toEqual(before)
          })

          it('deleteIdentity removes the identity and every device', async () => {
            const a = await created()
            const second = { device: randomHash(), ...key() }
            expect(
              await accounts().rotate(a.identity, a.device, a.rotationHash, key(), {
                kind: 'linkDevice',
                ...second,
              })
            ).toBe('ok')
            const current = (await accounts().getDeviceKey(a.identity, a.device)) as DeviceKey
            expect(
              await accounts().rotate(a.identity, a.device, current.rotationHash, key(), {
                kind: 'deleteIdentity',
              })
            ).toBe('ok')
            expect(await state(a.identity, [a.device, second.device])).toEqual({
              exists: false,
              recoveryHash: undefined,
              devices: [undefined, undefined],
            })
          })

          it('a deleted identity can never be created again, not even from its first message', async () => {
            const a = await created()
            expect(
              await accounts().rotate(a.identity, a.device, a.rotationHash, key(), {
                kind: 'deleteIdentity',
              })
            ).toBe('ok')
            // The original creation replayed, and a creation with other keys: both refused.
            expect(await accounts().createAccount(a)).toBe(false)
            expect(await accounts().createAccount({ ...newAccount(), identity: a.identity })).toBe(
              false
            )
            expect(await state(a.identity, [a.device])).toEqual({
              exists: false,
              recoveryHash: undefined,
              devices: [undefined],
            })
            // Nothing else comes back either.
            expect(
              await accounts().recover(a.identity, a.recoveryHash, randomHash(), {
                device: a.device,
                ...key(),
              })
            ).toBe('unknown-identity')
            expect(await accounts().rotate(a.identity, a.device, a.rotationHash, key(), none)).toBe(
              'unknown-device'
            )
          })

          it('a deleted identity stays deleted after the store is reopened (a restart)', async () => {
            if (h.reopen === undefined) return // not a durable store
            const a = await created()
            expect(
              await accounts().rotate(a.identity, a.device, a.rotationHash, key(), {
                kind: 'deleteIdentity',
              })
            ).toBe('ok')
            const reopened = await h.reopen()
            try {
              expect(await reopened.accounts.createAccount(a)).toBe(false)
              expect(await reopened.accounts.hasIdentity(a.identity)).toBe(false)
              expect(await reopened.accounts.getDeviceKey(a.identity, a.device)).toBeUndefined()
            } finally {
              await reopened.close()
            }
            expect(await accounts().createAccount(a)).toBe(false)
          })

          it(`a deletion racing ${n} replays of the creation leaves no account`, async () => {
            const a = await created()
            const results = await Promise.all([
              accounts().rotate(a.identity, a.device, a.rotationHash, key(), {
                kind: 'deleteIdentity',
              }),
              ...Array.from({ length: n - 1 }, () => accounts().createAccount(a)),
            ])
            expect(results[0]).toBe('ok')
            expect(results.slice(1).every(r => r === false)).toBe(true)
            expect(await accounts().hasIdentity(a.identity)).toBe(false)
            expect(await accounts().createAccount(a)).toBe(false)
          })

          it('revokeDevice rotates and removes the target device', async () => {
            const a = await created()
            const second = { device: randomHash(), ...key() }
            const k1 = key()
            await accounts().rotate(a.identity, a.device, a.rotationHash, k1, {
              kind: 'linkDevice',
              ...second,
            })
            const k2 = key()
            expect(
              await accounts().rotate(a.identity, a.device, k1.rotationHash, k2, {
                kind: 'revokeDevice',
                device: second.device,
              })
            ).toBe('ok')
            expect(await accounts().getDeviceKey(a.identity, a.device)).toEqual(k2)
            expect(await accounts().getDeviceKey(a.identity, second.device)).toBeUndefined()
            expect(await accounts().hasIdentity(a.identity)).toBe(true)
          })

          it('revokeDevice may revoke the rotating device itself', async () => {
            const a = await created()
            expect(
              await accounts().rotate(a.identity, a.device, a.rotationHash, key(), {
                kind: 'revokeDevice',
                device: a.device,
              })
            ).toBe('ok')
            expect(await accounts().getDeviceKey(a.identity, a.device)).toBeUndefined()
          })

          it('revokeDevice of an unknown device answers target-unknown and changes nothing', async () => {
            const a = await created()
            const other = await created()
            const before = await state(a.identity, [a.device, other.device])
            // Unknown anywhere, and a device of another identity.
            for (const target of [randomHash(), other.device]) {
              expect(
                await accounts().rotate(a.identity, a.device, a.rotationHash, key(), {
                  kind: 'revokeDevice',
                  device: target,
                })
              ).toBe('target-unknown')
            }
            expect(await state(a.identity, [a.device, other.device])).toEqual(before)
            expect(await accounts().getDeviceKey(other.identity, other.device)).toEqual({
              publicKey: other.publicKey,
              rotationHash: other.rotationHash,
            })
          })

          it('linkDevice rotates and registers the new device', async () => {
            const a = await created()
            const next = key()
            const linked = { device: randomHash(), ...key() }
            expect(
              await accounts().rotate(a.identity, a.device, a.rotationHash, next, {
                kind: 'linkDevice',
                ...linked,
              })
            ).toBe('ok')
            expect(await accounts().getDeviceKey(a.identity, a.device)).toEqual(next)
            expect(await accounts().getDeviceKey(a.identity, linked.device)).toEqual({
              publicKey: linked.publicKey,
              rotationHash: linked.rotationHash,
            })
            // The linked device rotates on its own.
            expect(
              await accounts().rotate(a.identity, linked.device, linked.rotationHash, key(), none)
            ).toBe('ok')
          })

          it('linkDevice of an existing device answers target-exists and changes nothing', async () => {
            const a = await created()
            const before = await state(a.identity, [a.device])
            expect(
              await accounts().rotate(a.identity, a.device, a.rotationHash, key(), {
                kind: 'linkDevice',
                device: a.device,
                ...key(),
              })
            ).toBe('target-exists')
            expect(await state(a.identity, [a.device])).toEqual(before)
          })

          it('changeRecoveryHash rotates and replaces the recovery hash', async () => {
            const a = await created()
            const next = key()
            const recoveryHash = randomHash()
            expect(
              await accounts().rotate(a.identity, a.device, a.rotationHash, next, {
                kind: 'changeRecoveryHash',
                recoveryHash,
              })
            ).toBe('ok')
            expect(await accounts().getRecoveryHash(a.identity)).toBe(recoveryHash)
            expect(await accounts().getDeviceKey(a.identity, a.device)).toEqual(next)
          })

          it(`of ${n} concurrent rotations revealing the same key, exactly one succeeds`, async () => {
            const a = await created()
            const nexts = Array.from({ length: n }, key)
            const results = await Promise.all(
              nexts.map(next => accounts().rotate(a.identity, a.device, a.rotationHash, next, none))
            )
            expect(count(results, r => r === 'ok')).toBe(1)
            expect(count(results, r => r === 'hash-mismatch')).toBe(n - 1)
            expect(await accounts().getDeviceKey(a.identity, a.device)).toEqual(
              nexts[results.indexOf('ok')]
            )
          })

          it(`of ${n} concurrent links of one new device by two devices, exactly one succeeds`, async () => {
            const a = await created()
            const second = { device: randomHash(), ...key() }
            await accounts().rotate(a.identity, a.device, a.rotationHash, key(), {
              kind: 'linkDevice',
              ...second,
            })
            // Each device rotates once (its own commitment), linking the same new device.
            const linked = { device: randomHash(), ...key() }
            const first = (await accounts().getDeviceKey(a.identity, a.device)) as DeviceKey
            const results = await Promise.all([
              accounts().rotate(a.identity, a.device, first.rotationHash, key(), {
                kind: 'linkDevice',
                ...linked,
              }),
              accounts().rotate(a.identity, second.device, second.rotationHash, key(), {
                kind: 'linkDevice',
                ...linked,
              }),
            ])
            expect(results.slice().sort()).toEqual(['ok', 'target-exists'])
            // The refused rotation changed nothing: its device can still rotate with its hash.
            const refused = results[0] === 'ok' ? second : { device: a.device, ...first }
            expect(
              await accounts().rotate(a.identity, refused.device, refused.rotationHash, key(), none)
            ).toBe('ok')
          })

          it('concurrent rotations and a deletion leave either the rotation or nothing', async () => {
            const a = await created()
            const results = await Promise.all([
              accounts().rotate(a.identity, a.device, a.rotationHash, key(), {
                kind: 'deleteIdentity',
              }),
              ...Array.from({ length: n - 1 }, () =>
                accounts().rotate(a.identity, a.device, a.rotationHash, key(), none)
              ),
            ])
            expect(count(results, r => r === 'ok')).toBe(1)
            const deleted = results[0] === 'ok'
            expect(await accounts().hasIdentity(a.identity)).toBe(!deleted)
          })
        })

        describe('recover', () => {
          it('replaces the recovery hash and revokes every device for the new one', async () => {
            const a = await created()
            const second = { device: randomHash(), ...key() }
            await accounts().rotate(a.identity, a.device, a.rotationHash, key(), {
              kind: 'linkDevice',
              ...second,
            })
            const fresh = { device: randomHash(), ...key() }
            const recoveryHash = randomHash()
            expect(await accounts().recover(a.identity, a.recoveryHash, recoveryHash, fresh)).toBe(
              'ok'
            )
            expect(await state(a.identity, [a.device, second.device, fresh.device])).toEqual({
              exists: true,
              recoveryHash,
              devices: [
                undefined,
                undefined,
                { publicKey: fresh.publicKey, rotationHash: fresh.rotationHash },
              ],
            })
            // The old recovery hash is spent.
            expect(
              await accounts().recover(a.identity, a.recoveryHash, randomHash(), {
                device: randomHash(),
                ...key(),
              })
            ).toBe('hash-mismatch')
          })

          it('may register the device it revokes (recovering onto the same device)', async () => {
            const a = await created()
            const same = { device: a.device, ...key() }
            expect(await accounts().recover(a.identity, a.recoveryHash, randomHash(), same)).toBe(
              'ok'
            )
            expect(await accounts().getDeviceKey(a.identity, a.device)).toEqual({
              publicKey: same.publicKey,
              rotationHash: same.rotationHash,
            })
          })

          it('answers unknown-identity and hash-mismatch, changing nothing', async () => {
            const a = await created()
            const fresh = { device: randomHash(), ...key() }
            const before = await state(a.identity, [a.device, fresh.device])
            expect(
              await accounts().recover(randomHash(), a.recoveryHash, randomHash(), fresh)
            ).toBe('unknown-identity')
            expect(await accounts().recover(a.identity, randomHash(), randomHash(), fresh)).toBe(
              'hash-mismatch'
            )
            expect(await state(a.identity, [a.device, fresh.device])).toEqual(before)
          })

          it(`of ${n} concurrent recoveries with one recovery key, exactly one succeeds`, async () => {
            const a = await created()
            const attempts = Array.from({ length: n }, () => ({
              device: { device: randomHash(), ...key() },
              recoveryHash: randomHash(),
            }))
            const results = await Promise.all(
              attempts.map(t =>
                accounts().recover(a.identity, a.recoveryHash, t.recoveryHash, t.device)
              )
            )
            expect(count(results, r => r === 'ok')).toBe(1)
            const winner = attempts[results.indexOf('ok')] as (typeof attempts)[number]
            expect(await accounts().getRecoveryHash(a.identity)).toBe(winner.recoveryHash)
            const keys = await Promise.all(
              attempts.map(t => accounts().getDeviceKey(a.identity, t.device.device))
            )
            expect(count(keys, k => k !== undefined)).toBe(1)
          })
        })
      })
    }

    if (parts.has('admin')) describeAdminConformance(() => h, n)

    if (parts.has('ephemeral')) {
      describe('ChallengeStore', () => {
        const challenges = (): ChallengeStore => required(h.challenges, 'challenges')

        it('peeks without consuming, then consumes once', async () => {
          const nonce = randomNonce()
          const identity = randomHash()
          expect(await challenges().peek(nonce)).toBeUndefined()
          await challenges().create(nonce, identity, ttl())
          expect(await challenges().peek(nonce)).toBe(identity)
          expect(await challenges().peek(nonce)).toBe(identity)
          expect(await challenges().consume(nonce)).toBe(identity)
          expect(await challenges().consume(nonce)).toBeUndefined()
          expect(await challenges().peek(nonce)).toBeUndefined()
        })

        it('knows nothing of an unknown challenge', async () => {
          expect(await challenges().peek(randomNonce())).toBeUndefined()
          expect(await challenges().consume(randomNonce())).toBeUndefined()
        })

        it('expires a challenge after its lifetime', async () => {
          const nonce = randomNonce()
          const kept = randomNonce()
          await challenges().create(nonce, randomHash(), ttl())
          await challenges().create(kept, randomHash(), ttl() * 20)
          await h.advance(ttl() + 1)
          expect(await challenges().peek(nonce)).toBeUndefined()
          expect(await challenges().consume(nonce)).toBeUndefined()
          expect(await challenges().peek(kept)).toBeDefined()
        })

        it(`of ${n} concurrent consumptions, exactly one gets the identity`, async () => {
          const nonce = randomNonce()
          const identity = randomHash()
          await challenges().create(nonce, identity, ttl() * 20)
          const results = await Promise.all(
            Array.from({ length: n }, () => challenges().consume(nonce))
          )
          expect(count(results, r => r === identity)).toBe(1)
          expect(count(results, r => r === undefined)).toBe(n - 1)
        })
      })

      for (const part of ['refreshKeys', 'accessNonces'] as const) {
        describe(`TimeLockStore (${part})`, () => {
          const locks = (): TimeLockStore => required(h[part], part)

          it('reserves a value once', async () => {
            const value = randomHash()
            expect(await locks().reserve(value, ttl())).toBe(true)
            expect(await locks().reserve(value, ttl())).toBe(false)
            expect(await locks().reserve(randomHash(), ttl())).toBe(true)
          })

          it('frees a value after its lifetime, and it can be reserved again once', async () => {
            const value = randomHash()
            const kept = randomHash()
            expect(await locks().reserve(value, ttl())).toBe(true)
            expect(await locks().reserve(kept, ttl() * 20)).toBe(true)
            await h.advance(ttl() + 1)
            expect(await locks().reserve(kept, ttl())).toBe(false)
            expect(await locks().reserve(value, ttl())).toBe(true)
            expect(await locks().reserve(value, ttl())).toBe(false)
          })

          it(`of ${n} concurrent reservations of one value, exactly one succeeds`, async () => {
            const value = randomHash()
            const results = await Promise.all(
              Array.from({ length: n }, () => locks().reserve(value, ttl() * 20))
            )
            expect(count(results, r => r)).toBe(1)
          })
        })
      }

      it('keeps refresh keys and access nonces apart', async () => {
        const refreshKeys = required(h.refreshKeys, 'refreshKeys')
        const accessNonces = required(h.accessNonces, 'accessNonces')
        const value = randomHash()
        expect(await refreshKeys.reserve(value, ttl())).toBe(true)
        expect(await accessNonces.reserve(value, ttl())).toBe(true)
        expect(await accessNonces.reserve(value, ttl())).toBe(false)
      })
    }

    if (parts.has('keys')) {
      describe('KeyStore', () => {
        const keys = (): KeyStore => required(h.keys, 'keys')
        const now = (): number => h.now?.() ?? Date.now()
        const stored = (at = now()): StoredKey => ({
          publicKey: randomKey(),
          privateKey: `-----BEGIN PRIVATE KEY-----\n${randomBytes(48).toString('base64')}\n-----END PRIVATE KEY-----\n`,
          createdAt: at,
          retireAt: null,
        })

        // Key kinds are global to a store: these tests run in order on one store.
        it('the first stored key of a kind wins, for every instance', async () => {
          const first = stored()
          expect(await keys().initKey('response', first)).toEqual(first)
          expect(await keys().initKey('response', stored())).toEqual(first)
          expect(await keys().listKeys('response', now())).toEqual([first])
          const results = await Promise.all(
            Array.from({ length: n }, () => keys().initKey('access', stored()))
          )
          expect(new Set(results.map(k => k.publicKey)).size).toBe(1)
          expect(await keys().listKeys('access', now())).toEqual([results[0]])
        })

        it('rotation makes a new key current and retires the previous one later', async () => {
          const [previous] = await keys().listKeys('access', now())
          const next = stored()
          const retireAt = now() + ttl()
          await keys().rotateKey('access', next, retireAt)
          expect(await keys().listKeys('access', now())).toEqual([
            next,
            { ...(previous as StoredKey), retireAt },
          ])
          // initKey now returns the rotated key.
          expect(await keys().initKey('access', stored())).toEqual(next)
          // The response key is untouched.
          expect(await keys().listKeys('response', now())).toHaveLength(1)
          await h.advance(ttl() + 1)
          expect(await keys().listKeys('access', now())).toEqual([next])
        })

        it('retires a replaced key at once, never the current one', async () => {
          const [current] = await keys().listKeys('access', now())
          const next = stored()
          await keys().rotateKey('access', next, now() + ttl() * 100)
          expect(await keys().listKeys('access', now())).toHaveLength(2)
          expect(await keys().retireKey('access', next.publicKey, now())).toBe(false)
          expect(await keys().retireKey('access', randomKey(), now())).toBe(false)
          expect(await keys().retireKey('access', (current as StoredKey).publicKey, now())).toBe(
            true
          )
          expect(await keys().listKeys('access', now())).toEqual([next])
        })

        it(`of ${n} concurrent rotations, one key ends up current and the rest retire`, async () => {
          const candidates = Array.from({ length: n }, () => stored())
          await Promise.all(candidates.map(k => keys().rotateKey('access', k, now() + ttl())))
          const list = await keys().listKeys('access', now())
          expect(list.filter(k => k.retireAt === null)).toHaveLength(1)
          expect(list[0]?.retireAt).toBeNull()
          expect(candidates.map(k => k.publicKey)).toContain(list[0]?.publicKey)
        })
      })
    }
  })
}

/** Waits in real time (Redis TTLs run on the server: expiry tests really wait). */
export const sleep = (ms: number) => new Promise<void>(resolve => setTimeout(resolve, ms))

/** Short lifetimes for stores whose expiry runs on a server (Redis). */
export const REAL_TTL_MS = 150

/** The conformance harness of a Redis store (ephemeral parts), cleared and closed afterwards. */
export function redisHarness(store: {
  challenges: StoreHarness['challenges']
  refreshKeys: StoreHarness['refreshKeys']
  accessNonces: StoreHarness['accessNonces']
  clear(): Promise<unknown>
  close(): Promise<void>
}): StoreHarness & { cleanup(): Promise<void> } {
  return {
    challenges: store.challenges,
    refreshKeys: store.refreshKeys,
    accessNonces: store.accessNonces,
    ttlMs: REAL_TTL_MS,
    advance: sleep,
    cleanup: async () => {
      await store.clear()
      await store.close()
    },
  }
}
