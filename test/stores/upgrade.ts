/**
 * What the SQLite and PostgreSQL upgrade tests expect of an account a schema-2 store wrote (its
 * identity created at 7, no other times recorded) once the schema is 3.
 */
import type { AccountStore, AdminAccountStore } from '../../src'

/** Its device key as it was, and null for every time schema 2 did not record. */
export async function expectSchema2AccountUpgraded(
  accounts: AccountStore & AdminAccountStore,
  a: { identity: string; device: string; publicKey: string; rotationHash: string }
): Promise<void> {
  expect(await accounts.getDeviceKey(a.identity, a.device)).toEqual({
    publicKey: a.publicKey,
    rotationHash: a.rotationHash,
  })
  expect(await accounts.getIdentityRecord(a.identity)).toEqual({
    identity: a.identity,
    createdAt: 7,
    suspendedAt: null,
    suspendedReason: null,
    sessionsEndedAt: null,
    devices: [
      {
        device: a.device,
        createdAt: null,
        rotatedAt: null,
        lastSessionAt: null,
        sessionsEndedAt: null,
      },
    ],
  })
}
