/**
 * Server keys in a shared key store: a retired access key is refused by every running instance
 * within the reload interval, and private keys stored unsealed are reported, once.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  DEFAULT_RELOAD_INTERVAL_MS,
  ServerKeys,
  UNSEALED_KEYS_WARNING,
} from '../../src/server/keys'
import { PostgresStore } from '../../src/stores/postgres'
import { SqliteStore } from '../../src/stores/sqlite'
import type { KeyStore } from '../../src/stores/types'
import { POSTGRES_URL, dropSchema, uniqueName } from './services'

const dir = mkdtempSync(join(tmpdir(), 'better-auth-keys-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** Two store objects on one database, as two server processes have. */
interface Backend {
  name: string
  open(): Promise<{ first: KeyStore; second: KeyStore; close(): Promise<void> }>
}

const backends: Backend[] = [
  {
    name: 'SQLite file',
    open: async () => {
      const path = join(dir, `${uniqueName('keys')}.db`)
      const a = new SqliteStore({ path, sweepIntervalMs: 0 })
      const b = new SqliteStore({ path, sweepIntervalMs: 0 })
      return {
        first: a.keys,
        second: b.keys,
        close: async () => {
          await a.close()
          await b.close()
        },
      }
    },
  },
  {
    name: 'PostgreSQL schema',
    open: async () => {
      const schema = uniqueName('keys')
      const a = new PostgresStore({ connectionString: POSTGRES_URL, schema, sweepIntervalMs: 0 })
      const b = new PostgresStore({ connectionString: POSTGRES_URL, schema, sweepIntervalMs: 0 })
      return {
        first: a.keys,
        second: b.keys,
        close: async () => {
          await a.close()
          await b.close()
          await dropSchema(schema)
        },
      }
    },
  },
]

const quiet = { env: false as const, onWarning: () => undefined }

/** Waits until `condition` holds, checking every 20 ms; resolves to the time it took. */
async function within(ms: number, condition: () => boolean): Promise<number> {
  const started = Date.now()
  while (!condition()) {
    if (Date.now() - started > ms) throw new Error(`not within ${ms} ms`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  return Date.now() - started
}

describe.each(backends)('a retired access key, on a $name', backend => {
  it('is refused by another running instance within its reload interval', async () => {
    const { first, second, close } = await backend.open()
    const a = await ServerKeys.load({ ...quiet, store: first, reloadIntervalMs: 200 })
    const b = await ServerKeys.load({ ...quiet, store: second, reloadIntervalMs: 200 })
    try {
      const old = a.accessIdentity
      expect(b.accessIdentity).toBe(old)
      await a.rotateAccessKey(undefined, { retireAfterMs: 3_600_000 })
      // B follows the rotation and keeps trusting the replaced key.
      await within(2000, () => b.accessIdentity === a.accessIdentity)
      expect(b.isTrustedAccessKey(old)).toBe(true)
      // Retired through A (as `retire-access-key` does through the store): B refuses it soon,
      // without anything calling B.
      expect(await a.retireAccessKey(old)).toBe(true)
      expect(a.isTrustedAccessKey(old)).toBe(false)
      await within(2000, () => !b.isTrustedAccessKey(old))
      expect(b.accessVerificationKeys()).toEqual([a.accessIdentity])
    } finally {
      a.close()
      b.close()
      await close()
    }
  })
})

describe('the default reload interval', () => {
  afterEach(() => jest.useRealTimers())

  it('is at most 5 s: a key retired elsewhere is refused after it, with no call in between', async () => {
    expect(DEFAULT_RELOAD_INTERVAL_MS).toBeLessThanOrEqual(5000)
    const path = join(dir, 'default-interval.db')
    const one = new SqliteStore({ path, sweepIntervalMs: 0 })
    const two = new SqliteStore({ path, sweepIntervalMs: 0 })
    const a = await ServerKeys.load({ ...quiet, store: one.keys, reloadIntervalMs: 0 })
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] })
    const b = await ServerKeys.load({ ...quiet, store: two.keys })
    try {
      const old = a.accessIdentity
      await a.rotateAccessKey(undefined, { retireAfterMs: 3_600_000 })
      await b.reload()
      expect(b.isTrustedAccessKey(old)).toBe(true)
      await a.retireAccessKey(old)
      expect(b.isTrustedAccessKey(old)).toBe(true) // not reloaded yet
      await jest.advanceTimersByTimeAsync(DEFAULT_RELOAD_INTERVAL_MS)
      expect(b.isTrustedAccessKey(old)).toBe(false)
    } finally {
      a.close()
      b.close()
      await one.close()
      await two.close()
    }
  })
})

describe('private keys stored unsealed', () => {
  it('are reported once per load, for both keys together, and not on reloads', async () => {
    const store = new SqliteStore({ path: join(dir, 'unsealed.db'), sweepIntervalMs: 0 })
    const warnings: string[] = []
    const onWarning = (message: string): void => {
      warnings.push(message)
    }
    const keys = await ServerKeys.load({ env: false, store: store.keys, onWarning })
    expect(warnings).toEqual([UNSEALED_KEYS_WARNING])
    expect(UNSEALED_KEYS_WARNING).toMatch(/unsealed/)
    expect(UNSEALED_KEYS_WARNING).toMatch(/BETTER_AUTH_KEY_SECRET/)
    await keys.reload()
    await keys.rotateAccessKey()
    await keys.reload()
    expect(warnings).toHaveLength(1)
    keys.close()
    await store.close()
  })

  it('are reported when keys stored before a secret was set are loaded with one', async () => {
    const store = new SqliteStore({ path: ':memory:', sweepIntervalMs: 0 })
    const first = await ServerKeys.load({ ...quiet, store: store.keys, reloadIntervalMs: 0 })
    first.close()
    const warnings: string[] = []
    const later = await ServerKeys.load({
      env: false,
      store: store.keys,
      secret: 'correct horse',
      reloadIntervalMs: 0,
      onWarning: message => warnings.push(message),
    })
    expect(warnings).toEqual([UNSEALED_KEYS_WARNING])
    later.close()
    await store.close()
  })

  it('sealed keys, keys from the environment and keys not stored are not reported', async () => {
    const warnings: string[] = []
    const onWarning = (message: string): void => {
      warnings.push(message)
    }
    const store = new SqliteStore({ path: ':memory:', sweepIntervalMs: 0 })
    const sealed = await ServerKeys.load({
      env: { BETTER_AUTH_KEY_SECRET: 'correct horse' },
      store: store.keys,
      reloadIntervalMs: 0,
      onWarning,
    })
    sealed.close()
    const again = await ServerKeys.load({
      env: false,
      secret: 'correct horse',
      store: store.keys,
      reloadIntervalMs: 0,
      onWarning,
    })
    again.close()
    const unstored = await ServerKeys.load({ env: false, store: false, onWarning })
    unstored.close()
    expect(warnings).toEqual([])
    await store.close()
  })

  it('without onWarning, are reported as a process warning', async () => {
    const store = new SqliteStore({ path: ':memory:', sweepIntervalMs: 0 })
    const emitted = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined)
    try {
      const keys = await ServerKeys.load({ env: false, store: store.keys, reloadIntervalMs: 0 })
      keys.close()
      expect(emitted).toHaveBeenCalledTimes(1)
      expect(emitted).toHaveBeenCalledWith(UNSEALED_KEYS_WARNING, {
        code: 'BETTER_AUTH_UNSEALED_KEYS',
      })
    } finally {
      emitted.mockRestore()
      await store.close()
    }
  })
})
