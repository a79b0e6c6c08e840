/** The store as the core sees it: failures that are not the protocol's become 503s (fail closed). */
import { BetterAuthError, StorageUnavailableError } from '../errors'
import type { ServerStore } from '../stores/types'

/**
 * Converts store failures that are not ours into 503s (fail closed); `onError` hears which store
 * failed (for metrics).
 */
export function guardStore(
  store: ServerStore,
  onError?: (store: 'accounts' | 'challenges' | 'refreshKeys' | 'accessNonces') => void
): ServerStore {
  const wrap = <T extends object>(
    target: T,
    name: 'accounts' | 'challenges' | 'refreshKeys' | 'accessNonces'
  ): T =>
    new Proxy(target, {
      get(object, property, receiver) {
        const value = Reflect.get(object, property, receiver) as unknown
        if (typeof value !== 'function') return value
        return async (...args: unknown[]) => {
          try {
            return await (value as (...a: unknown[]) => unknown).apply(object, args)
          } catch (error) {
            if (error instanceof BetterAuthError) throw error
            onError?.(name)
            throw new StorageUnavailableError({ cause: error })
          }
        }
      },
    })
  return {
    accounts: wrap(store.accounts, 'accounts'),
    challenges: wrap(store.challenges, 'challenges'),
    refreshKeys: wrap(store.refreshKeys, 'refreshKeys'),
    accessNonces: wrap(store.accessNonces, 'accessNonces'),
    close: () => store.close?.() ?? Promise.resolve(),
  }
}
