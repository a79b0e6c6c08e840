/**
 * Detection of the optional administration part of an account store (`AdminAccountStore`), and
 * what its implementations share.
 */
import type { AccountStore, AdminAccountStore } from './types'

/** The methods of `AdminAccountStore`: a store has all of them, or it has no admin support. */
export const ADMIN_METHODS = [
  'getIdentityRecord',
  'getSessionState',
  'recordSession',
  'revokeDevice',
  'endSessions',
  'suspendIdentity',
  'reinstateIdentity',
  'deleteIdentity',
] as const satisfies readonly (keyof AdminAccountStore)[]

/** Whether an account store implements every method of `AdminAccountStore`. */
export function supportsAdmin(
  accounts: AccountStore
): accounts is AccountStore & AdminAccountStore {
  const store = accounts as unknown as Record<string, unknown>
  return ADMIN_METHODS.every(name => typeof store[name] === 'function')
}

/** The later of two optional moments. */
export function later(a: number | null, b: number | null): number | null {
  if (a === null) return b
  if (b === null) return a
  return Math.max(a, b)
}
