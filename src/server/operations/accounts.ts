/** Accounts: creating, deleting and recovering an identity, and changing its recovery key. */
import {
  ConflictError,
  InvalidHashError,
  InvalidIdentityError,
  InvalidMessageError,
  UnknownAccountError,
} from '../../errors'
import { verifySigned } from '../../messages/envelope'
import {
  readChangeRecoveryKey,
  readCreateAccount,
  readDeleteAccount,
  readRecoverAccount,
} from '../../messages/requests'
import { EMPTY, object, ref } from '../schema'
import { checkDevice, rotateWith, seen } from './shared'
import { defineOperation } from './types'

export const ACCOUNT_OPERATIONS = {
  createAccount: defineOperation({
    area: 'accounts',
    path: '/account/create',
    summary: 'Create an identity with its first device and recovery hash',
    signed: true,
    event: 'account.created',
    rateLimit: { ip: { points: 30, duration: 60 } },
    conflicts: true,
    schemas: {
      request: object({ authentication: ref('NewAccountAuthentication') }),
      response: EMPTY,
    },
    read: readCreateAccount,
    async handle({ services: s, envelope, trace, limitIdentity }, { nonce, authentication: a }) {
      seen(trace, a.identity, a.device)
      await verifySigned(s.verifier, envelope, a.publicKey)
      await limitIdentity(a.identity)
      if (!(await s.identityVerifier(a.identity, a.publicKey, a.rotationHash, a.recoveryHash))) {
        throw new InvalidIdentityError()
      }
      checkDevice(s, a.device, a.publicKey, a.rotationHash)
      if (!(await s.store.accounts.createAccount(a))) throw new ConflictError('identity')
      return s.respond(nonce, {})
    },
  }),

  deleteAccount: defineOperation({
    area: 'accounts',
    path: '/account/delete',
    summary: 'Delete an identity and all its devices (rotates the signing device)',
    signed: true,
    event: 'account.deleted',
    rateLimit: {},
    schemas: { request: object({ authentication: ref('Authentication') }), response: EMPTY },
    read: readDeleteAccount,
    async handle(call, { nonce, authentication }) {
      await rotateWith(call, authentication, { kind: 'deleteIdentity' })
      return call.services.respond(nonce, {})
    },
  }),

  recoverAccount: defineOperation({
    area: 'accounts',
    path: '/account/recover',
    summary: 'Recover an identity with its recovery key; revokes every device',
    signed: true,
    event: 'account.recovered',
    rateLimit: { ip: { points: 10, duration: 60 }, identity: { points: 5, duration: 60 } },
    conflicts: true,
    schemas: {
      request: object({ authentication: ref('RecoveryAuthentication') }),
      response: EMPTY,
    },
    read: readRecoverAccount,
    async handle({ services: s, envelope, trace, limitIdentity }, { nonce, authentication: a }) {
      seen(trace, a.identity, a.device)
      await verifySigned(s.verifier, envelope, a.recoveryKey)
      const recoveryKeyHash = s.hasher.sum(a.recoveryKey)
      // A recovery that keeps the same recovery hash could be replayed, revoking every device
      // each time: the new hash must commit to a new recovery key.
      if (a.recoveryHash === recoveryKeyHash) {
        throw new InvalidMessageError(
          'payload.request.authentication.recoveryHash',
          'must commit to a new recovery key'
        )
      }
      checkDevice(s, a.device, a.publicKey, a.rotationHash)
      await limitIdentity(a.identity)
      const result = await s.store.accounts.recover(a.identity, recoveryKeyHash, a.recoveryHash, {
        device: a.device,
        publicKey: a.publicKey,
        rotationHash: a.rotationHash,
      })
      if (result === 'unknown-identity') throw new UnknownAccountError('identity')
      if (result === 'hash-mismatch') throw new InvalidHashError('recovery')
      return s.respond(nonce, {})
    },
  }),

  changeRecoveryKey: defineOperation({
    area: 'accounts',
    path: '/recovery/change',
    summary: 'Replace the recovery hash (rotates the signing device)',
    signed: true,
    event: 'recovery.changed',
    rateLimit: {},
    schemas: {
      request: object({ authentication: ref('NewAccountAuthentication') }),
      response: EMPTY,
    },
    read: readChangeRecoveryKey,
    async handle(call, { nonce, authentication: a }) {
      await rotateWith(call, a, { kind: 'changeRecoveryHash', recoveryHash: a.recoveryHash })
      return call.services.respond(nonce, {})
    },
  }),
}
