/**
 * One ServerStore from two: durable state (accounts, keys) from one store and ephemeral state
 * (challenges, time-locks) from another, e.g. PostgreSQL or SQLite with Redis.
 */
import type { EphemeralStore, ServerStore } from './types'

/** Accounts and keys of `durable`, challenges and time-locks of `ephemeral`; closes both. */
export function combineStores(
  durable: Pick<ServerStore, 'accounts' | 'keys' | 'close'>,
  ephemeral: EphemeralStore
): ServerStore {
  const store: ServerStore = {
    accounts: durable.accounts,
    challenges: ephemeral.challenges,
    refreshKeys: ephemeral.refreshKeys,
    accessNonces: ephemeral.accessNonces,
    async close() {
      const results = await Promise.allSettled([ephemeral.close?.(), durable.close?.()])
      const failed = results.find(r => r.status === 'rejected')
      if (failed !== undefined) throw (failed as PromiseRejectedResult).reason
    },
  }
  if (durable.keys !== undefined) store.keys = durable.keys
  return store
}
