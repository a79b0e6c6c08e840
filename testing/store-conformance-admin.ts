/**
 * The conformance tests of the administration part of an account store (`AdminAccountStore`),
 * declared by `describeStoreConformance` with the `'admin'` part: what is recorded of identities
 * and devices, each action and its refusals (which change nothing), and the races between actions
 * and the protocol's own operations.
 */
import { randomBytes } from 'node:crypto'
import { supportsAdmin } from '../src/stores/admin'
import type {
  AccountStore,
  AdminAccountStore,
  DeviceKey,
  NewAccount,
  NewDevice,
} from '../src/stores/types'
import { testGlobals } from './globals'

/** What the admin tests need of the suite's harness. */
export interface AdminHarness {
  accounts?: AccountStore
  advance(ms: number): Promise<void>
  now?(): number
  reopen?(): Promise<{ accounts: AccountStore; close(): Promise<void> }>
}

const hash = (): string => 'E' + randomBytes(32).toString('base64url').slice(0, 43)
const publicKey = (): string => '1AAI' + randomBytes(33).toString('base64url')
const key = (): DeviceKey => ({ publicKey: publicKey(), rotationHash: hash() })
const device = (): NewDevice => ({ device: hash(), ...key() })
const none = { kind: 'none' } as const

const count = <T>(values: T[], predicate: (value: T) => boolean): number =>
  values.filter(predicate).length

/** The suspension and end of sessions of an identity record. */
const standing = (
  record: { suspendedAt: unknown; suspendedReason: unknown; sessionsEndedAt: unknown } | undefined
) =>
  record === undefined
    ? undefined
    : {
        suspendedAt: record.suspendedAt,
        suspendedReason: record.suspendedReason,
        sessionsEndedAt: record.sessionsEndedAt,
      }

/** Declares the admin tests, inside the suite's `describe`; `harness()` is set by its `beforeAll`. */
export function describeAdminConformance(harness: () => AdminHarness, n: number): void {
  const { describe, it, expect } = testGlobals()

  describe('AdminAccountStore', () => {
    const admin = (): AccountStore & AdminAccountStore => {
      const accounts = harness().accounts
      if (accounts === undefined) throw new Error('the harness has no accounts')
      if (!supportsAdmin(accounts)) {
        throw new Error('the accounts store lacks methods of AdminAccountStore')
      }
      return accounts
    }
    const now = (): number => harness().now?.() ?? Date.now()

    async function created(): Promise<NewAccount> {
      const account = { identity: hash(), ...device(), recoveryHash: hash() }
      expect(await admin().createAccount(account)).toBe(true)
      return account
    }

    /** Links a new device through `a`'s first device (rotating it); returns the new device. */
    async function linked(a: NewAccount): Promise<NewDevice> {
      const current = (await admin().getDeviceKey(a.identity, a.device)) as DeviceKey
      const added = device()
      const result = await admin().rotate(a.identity, a.device, current.rotationHash, key(), {
        kind: 'linkDevice',
        ...added,
      })
      expect(result).toBe('ok')
      return added
    }

    /** Everything readable of an identity and some devices, to compare before and after. */
    async function everything(identity: string, devices: string[]): Promise<unknown> {
      const store = admin()
      return {
        exists: await store.hasIdentity(identity),
        recoveryHash: await store.getRecoveryHash(identity),
        record: await store.getIdentityRecord(identity),
        state: await store.getSessionState(identity),
        devices: await Promise.all(
          devices.map(async d => ({
            key: await store.getDeviceKey(identity, d),
            state: await store.getSessionState(identity, d),
          }))
        ),
      }
    }

    it('implements every method', () => {
      expect(supportsAdmin(admin())).toBe(true)
    })

    describe('records', () => {
      it('when an identity and its first device were created', async () => {
        const at = now()
        const a = await created()
        const record = await admin().getIdentityRecord(a.identity)
        const createdAt = record?.createdAt
        expect(typeof createdAt).toBe('number')
        if (harness().now !== undefined) expect(createdAt).toBe(at)
        expect(record).toEqual({
          identity: a.identity,
          createdAt,
          suspendedAt: null,
          suspendedReason: null,
          sessionsEndedAt: null,
          devices: [
            {
              device: a.device,
              createdAt,
              rotatedAt: null,
              lastSessionAt: null,
              sessionsEndedAt: null,
            },
          ],
        })
        expect(await admin().getSessionState(a.identity)).toEqual({
          suspendedAt: null,
          sessionsEndedAt: null,
          lastSessionAt: null,
        })
        expect(await admin().getSessionState(a.identity, a.device)).toEqual({
          suspendedAt: null,
          sessionsEndedAt: null,
          lastSessionAt: null,
        })
      })

      it('nothing of an unknown identity or device', async () => {
        const a = await created()
        expect(await admin().getIdentityRecord(hash())).toBeUndefined()
        expect(await admin().getSessionState(hash())).toBeUndefined()
        expect(await admin().getSessionState(hash(), a.device)).toBeUndefined()
        expect(await admin().getSessionState(a.identity, hash())).toBeUndefined()
      })

      it('rotations, linked devices (oldest first) and recovered devices', async () => {
        const a = await created()
        const created0 = now()
        await harness().advance(1000)
        const added = await linked(a)
        const linkedAt = now()
        let record = await admin().getIdentityRecord(a.identity)
        expect(record?.devices.map(d => d.device)).toEqual([a.device, added.device])
        const times = record?.devices.map(d => [d.createdAt, d.rotatedAt])
        if (harness().now !== undefined) {
          expect(times).toEqual([
            [created0, linkedAt],
            [linkedAt, null],
          ])
        } else {
          expect(typeof record?.devices[0]?.rotatedAt).toBe('number')
        }
        await harness().advance(1000)
        const fresh = device()
        expect(await admin().recover(a.identity, a.recoveryHash, hash(), fresh)).toBe('ok')
        record = await admin().getIdentityRecord(a.identity)
        expect(record?.devices.map(d => d.device)).toEqual([fresh.device])
        expect([record?.devices[0]?.rotatedAt, record?.devices[0]?.lastSessionAt]).toEqual([
          null,
          null,
        ])
        if (harness().now !== undefined) expect(record?.devices[0]?.createdAt).toBe(now())
      })

      it('the last session of a device, never moving it back', async () => {
        const a = await created()
        const at = now()
        await admin().recordSession(a.identity, a.device, at)
        expect((await admin().getSessionState(a.identity, a.device))?.lastSessionAt).toBe(at)
        await admin().recordSession(a.identity, a.device, at - 60_000)
        expect((await admin().getSessionState(a.identity, a.device))?.lastSessionAt).toBe(at)
        await admin().recordSession(a.identity, a.device, at + 60_000)
        const record = await admin().getIdentityRecord(a.identity)
        expect(record?.devices[0]?.lastSessionAt).toBe(at + 60_000)
        // Of an unknown device: nothing, and no error.
        await admin().recordSession(a.identity, hash(), at)
        await admin().recordSession(hash(), a.device, at)
        expect((await admin().getIdentityRecord(a.identity))?.devices).toHaveLength(1)
      })
    })

    describe('revokeDevice', () => {
      it('removes one active device; it can no longer rotate', async () => {
        const a = await created()
        const added = await linked(a)
        expect(await admin().revokeDevice(a.identity, added.device)).toBe('ok')
        expect(await admin().getDeviceKey(a.identity, added.device)).toBeUndefined()
        expect(await admin().getSessionState(a.identity, added.device)).toBeUndefined()
        expect(
          await admin().rotate(a.identity, added.device, added.rotationHash, key(), none)
        ).toBe('unknown-device')
        const record = await admin().getIdentityRecord(a.identity)
        expect(record?.devices.map(d => d.device)).toEqual([a.device])
        expect(await admin().revokeDevice(a.identity, added.device)).toBe('unknown-device')
      })

      it('may revoke the last device: the identity stays, for recovery', async () => {
        const a = await created()
        expect(await admin().revokeDevice(a.identity, a.device)).toBe('ok')
        expect(await admin().hasIdentity(a.identity)).toBe(true)
        expect((await admin().getIdentityRecord(a.identity))?.devices).toEqual([])
        expect(await admin().recover(a.identity, a.recoveryHash, hash(), device())).toBe('ok')
      })

      it('answers unknown-identity and unknown-device, changing nothing', async () => {
        const a = await created()
        const other = await created()
        const before = await everything(a.identity, [a.device])
        const otherBefore = await everything(other.identity, [other.device])
        expect(await admin().revokeDevice(hash(), a.device)).toBe('unknown-identity')
        expect(await admin().revokeDevice(a.identity, hash())).toBe('unknown-device')
        // A device of another identity.
        expect(await admin().revokeDevice(a.identity, other.device)).toBe('unknown-device')
        expect(await everything(a.identity, [a.device])).toEqual(before)
        expect(await everything(other.identity, [other.device])).toEqual(otherBefore)
      })
    })

    describe('endSessions', () => {
      it('of an identity and of a device, keeping a later moment', async () => {
        const a = await created()
        const added = await linked(a)
        const at = now()
        expect(await admin().endSessions(a.identity, at + 5000, added.device)).toBe('ok')
        expect((await admin().getSessionState(a.identity, added.device))?.sessionsEndedAt).toBe(
          at + 5000
        )
        expect((await admin().getSessionState(a.identity, a.device))?.sessionsEndedAt).toBeNull()
        expect((await admin().getSessionState(a.identity))?.sessionsEndedAt).toBeNull()
        expect(await admin().endSessions(a.identity, at)).toBe('ok')
        // The later of the identity's and the device's.
        expect((await admin().getSessionState(a.identity))?.sessionsEndedAt).toBe(at)
        expect((await admin().getSessionState(a.identity, a.device))?.sessionsEndedAt).toBe(at)
        expect((await admin().getSessionState(a.identity, added.device))?.sessionsEndedAt).toBe(
          at + 5000
        )
        // An earlier moment never moves it back.
        expect(await admin().endSessions(a.identity, at - 1000)).toBe('ok')
        expect(await admin().endSessions(a.identity, at - 1000, added.device)).toBe('ok')
        const record = await admin().getIdentityRecord(a.identity)
        expect(record?.sessionsEndedAt).toBe(at)
        expect(record?.devices.find(d => d.device === added.device)?.sessionsEndedAt).toBe(
          at + 5000
        )
        expect(record?.devices.find(d => d.device === a.device)?.sessionsEndedAt).toBeNull()
      })

      it('answers unknown-identity and unknown-device, changing nothing', async () => {
        const a = await created()
        const other = await created()
        const before = await everything(a.identity, [a.device])
        expect(await admin().endSessions(hash(), now())).toBe('unknown-identity')
        expect(await admin().endSessions(hash(), now(), a.device)).toBe('unknown-identity')
        expect(await admin().endSessions(a.identity, now(), hash())).toBe('unknown-device')
        expect(await admin().endSessions(a.identity, now(), other.device)).toBe('unknown-device')
        expect(await everything(a.identity, [a.device])).toEqual(before)
      })
    })

    describe('suspendIdentity and reinstateIdentity', () => {
      it('suspends once, ending sessions; reinstating keeps them ended', async () => {
        const a = await created()
        const at = now()
        expect(await admin().suspendIdentity(a.identity, at, 'fraud review')).toBe('ok')
        expect(await admin().getSessionState(a.identity, a.device)).toEqual({
          suspendedAt: at,
          sessionsEndedAt: at,
          lastSessionAt: null,
        })
        expect(standing(await admin().getIdentityRecord(a.identity))).toEqual({
          suspendedAt: at,
          suspendedReason: 'fraud review',
          sessionsEndedAt: at,
        })
        // Again: the first suspension's time and reason stay.
        expect(await admin().suspendIdentity(a.identity, at + 1000, 'other')).toBe(
          'already-suspended'
        )
        expect(standing(await admin().getIdentityRecord(a.identity))).toEqual({
          suspendedAt: at,
          suspendedReason: 'fraud review',
          sessionsEndedAt: at,
        })
        // The devices and keys are untouched.
        expect(await admin().getDeviceKey(a.identity, a.device)).toEqual({
          publicKey: a.publicKey,
          rotationHash: a.rotationHash,
        })
        expect(await admin().reinstateIdentity(a.identity)).toBe('ok')
        expect(standing(await admin().getIdentityRecord(a.identity))).toEqual({
          suspendedAt: null,
          suspendedReason: null,
          sessionsEndedAt: at,
        })
        expect(await admin().reinstateIdentity(a.identity)).toBe('not-suspended')
        // Without a reason, and keeping a later end of sessions.
        expect(await admin().endSessions(a.identity, at + 9000)).toBe('ok')
        expect(await admin().suspendIdentity(a.identity, at + 2000)).toBe('ok')
        expect(standing(await admin().getIdentityRecord(a.identity))).toEqual({
          suspendedAt: at + 2000,
          suspendedReason: null,
          sessionsEndedAt: at + 9000,
        })
      })

      it('answers unknown-identity, changing nothing', async () => {
        const a = await created()
        const before = await everything(a.identity, [a.device])
        expect(await admin().suspendIdentity(hash(), now(), 'x')).toBe('unknown-identity')
        expect(await admin().reinstateIdentity(hash())).toBe('unknown-identity')
        expect(await everything(a.identity, [a.device])).toEqual(before)
      })
    })

    describe('deleteIdentity', () => {
      it('removes the identity and its devices, for good', async () => {
        const a = await created()
        const added = await linked(a)
        expect(await admin().deleteIdentity(a.identity, now())).toBe('ok')
        expect(await everything(a.identity, [a.device, added.device])).toEqual({
          exists: false,
          recoveryHash: undefined,
          record: undefined,
          state: undefined,
          devices: [
            { key: undefined, state: undefined },
            { key: undefined, state: undefined },
          ],
        })
        // Tombstoned: the original creation, replayed, is refused.
        expect(await admin().createAccount(a)).toBe(false)
        expect(await admin().deleteIdentity(a.identity, now())).toBe('unknown-identity')
        expect(await admin().recover(a.identity, a.recoveryHash, hash(), device())).toBe(
          'unknown-identity'
        )
      })

      it('answers unknown-identity, changing nothing', async () => {
        const a = await created()
        const before = await everything(a.identity, [a.device])
        expect(await admin().deleteIdentity(hash(), now())).toBe('unknown-identity')
        expect(await everything(a.identity, [a.device])).toEqual(before)
      })

      it('stays deleted after the store is reopened (a restart)', async () => {
        const reopen = harness().reopen
        if (reopen === undefined) return // not a durable store
        const a = await created()
        expect(await admin().deleteIdentity(a.identity, now())).toBe('ok')
        const reopened = await reopen()
        try {
          expect(await reopened.accounts.createAccount(a)).toBe(false)
          expect(await reopened.accounts.hasIdentity(a.identity)).toBe(false)
        } finally {
          await reopened.close()
        }
      })
    })

    describe('races', () => {
      it(`a revocation racing ${n - 1} rotations of the device: it ends revoked, and cannot rotate after`, async () => {
        const a = await created()
        const nexts = Array.from({ length: n - 1 }, key)
        const [revoked, ...rotations] = await Promise.all([
          admin().revokeDevice(a.identity, a.device),
          ...nexts.map(next => admin().rotate(a.identity, a.device, a.rotationHash, next, none)),
        ])
        expect(revoked).toBe('ok')
        expect(count(rotations, r => r === 'ok')).toBeLessThan(2)
        expect(rotations.every(r => ['ok', 'hash-mismatch', 'unknown-device'].includes(r))).toBe(
          true
        )
        expect(await admin().getDeviceKey(a.identity, a.device)).toBeUndefined()
        // Whichever key won, the device can no longer rotate.
        for (const next of [a, ...nexts]) {
          expect(await admin().rotate(a.identity, a.device, next.rotationHash, key(), none)).toBe(
            'unknown-device'
          )
        }
      })

      it('a revoked device cannot link a device: a link racing the revocation finished first or left nothing', async () => {
        for (let i = 0; i < 5; i++) {
          const a = await created()
          const added = device()
          const [revoked, rotated] = await Promise.all([
            admin().revokeDevice(a.identity, a.device),
            admin().rotate(a.identity, a.device, a.rotationHash, key(), {
              kind: 'linkDevice',
              ...added,
            }),
          ])
          expect(revoked).toBe('ok')
          expect(['ok', 'unknown-device']).toContain(rotated)
          const linkedKey = await admin().getDeviceKey(a.identity, added.device)
          expect(linkedKey === undefined).toBe(rotated === 'unknown-device')
          expect(await admin().getDeviceKey(a.identity, a.device)).toBeUndefined()
        }
      })

      it('a revocation racing a deletion by the same device: exactly one wins', async () => {
        for (let i = 0; i < 5; i++) {
          const a = await created()
          const [revoked, deleted] = await Promise.all([
            admin().revokeDevice(a.identity, a.device),
            admin().rotate(a.identity, a.device, a.rotationHash, key(), { kind: 'deleteIdentity' }),
          ])
          expect(count([revoked, deleted], r => r === 'ok')).toBe(1)
          const exists = await admin().hasIdentity(a.identity)
          if (deleted === 'ok') {
            expect(revoked).toBe('unknown-identity')
            expect(exists).toBe(false)
          } else {
            expect(deleted).toBe('unknown-device')
            expect(exists).toBe(true)
          }
          expect(await admin().getDeviceKey(a.identity, a.device)).toBeUndefined()
        }
      })

      it(`of ${n} concurrent revocations of a device, exactly one succeeds`, async () => {
        const a = await created()
        const added = await linked(a)
        const results = await Promise.all(
          Array.from({ length: n }, () => admin().revokeDevice(a.identity, added.device))
        )
        expect(count(results, r => r === 'ok')).toBe(1)
        expect(count(results, r => r === 'unknown-device')).toBe(n - 1)
        expect((await admin().getIdentityRecord(a.identity))?.devices).toHaveLength(1)
      })

      it(`of ${n} concurrent suspensions and endings of sessions, one suspension wins and the latest end holds`, async () => {
        const a = await created()
        const base = now()
        const half = Math.max(1, Math.floor(n / 2))
        const suspensions = Array.from({ length: half }, (_, i) => base + i)
        const ends = Array.from({ length: half }, (_, i) => base + 1000 + i * 7)
        const [suspended, ended] = await Promise.all([
          Promise.all(
            suspensions.map(at => admin().suspendIdentity(a.identity, at, `reason ${at}`))
          ),
          Promise.all(
            ends.map((at, i) =>
              admin().endSessions(a.identity, at, i % 2 === 0 ? a.device : undefined)
            )
          ),
        ])
        expect(count(suspended, r => r === 'ok')).toBe(1)
        expect(count(suspended, r => r === 'already-suspended')).toBe(half - 1)
        expect(ended.every(r => r === 'ok')).toBe(true)
        const winner = suspensions[suspended.indexOf('ok')] as number
        const record = await admin().getIdentityRecord(a.identity)
        expect([record?.suspendedAt, record?.suspendedReason]).toEqual([winner, `reason ${winner}`])
        const identityEnds = ends.filter((_, i) => i % 2 === 1)
        const deviceEnds = ends.filter((_, i) => i % 2 === 0)
        expect(record?.sessionsEndedAt).toBe(Math.max(winner, ...identityEnds))
        expect(record?.devices[0]?.sessionsEndedAt).toBe(Math.max(...deviceEnds))
        expect((await admin().getSessionState(a.identity, a.device))?.sessionsEndedAt).toBe(
          Math.max(winner, ...ends)
        )
      })

      it(`of ${n} concurrent suspensions and reinstatements, the state matches the last to run`, async () => {
        const a = await created()
        const results = await Promise.all(
          Array.from({ length: n }, (_, i) =>
            i % 2 === 0
              ? admin().suspendIdentity(a.identity, now() + i)
              : admin().reinstateIdentity(a.identity)
          )
        )
        // Every 'ok' flips the state, from not suspended: suspensions and reinstatements that
        // took effect alternate, so there is one more of the former, or as many.
        const suspends = results.filter((r, i) => i % 2 === 0 && r === 'ok').length
        const reinstates = results.filter((r, i) => i % 2 === 1 && r === 'ok').length
        expect(suspends).toBeGreaterThan(0)
        expect([0, 1]).toContain(suspends - reinstates)
        const record = await admin().getIdentityRecord(a.identity)
        expect(record?.suspendedAt !== null).toBe(suspends - reinstates === 1)
      })

      it(`of ${n} concurrent deletions, exactly one succeeds`, async () => {
        const a = await created()
        const results = await Promise.all(
          Array.from({ length: n }, () => admin().deleteIdentity(a.identity, now()))
        )
        expect(count(results, r => r === 'ok')).toBe(1)
        expect(await admin().createAccount(a)).toBe(false)
      })
    })
  })
}
