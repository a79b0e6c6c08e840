import { createBetterAuth, type BetterAuthOptions } from '../src'

describe('core options are validated once, in the constructor', () => {
  const bad: [string, BetterAuthOptions][] = [
    ['lifetimes.accessToken', { lifetimes: { accessToken: Number.NaN } }],
    ['lifetimes.refresh', { lifetimes: { refresh: -1 } }],
    ['lifetimes.clockSkew', { lifetimes: { clockSkew: Infinity } }],
    ['limits.maxBodyBytes', { limits: { maxBodyBytes: 0 } }],
    ['limits.maxBodyBytes', { limits: { maxBodyBytes: 1.5 } }],
    ['limits.maxDepth', { limits: { maxDepth: Number.NaN } }],
    ['limits.maxTokenLength', { limits: { maxTokenLength: -5 } }],
    ['tokenCompressionLevel', { tokenCompressionLevel: 12 }],
    ['tokenCacheSize', { tokenCacheSize: -1 }],
  ]
  it.each(bad)('a TypeError names %s', (name, options) => {
    expect(() => createBetterAuth({ ...options, keys: { env: false, store: false } })).toThrow(
      new RegExp(`^${name.replace('.', '\\.')} must be`)
    )
    expect(() => createBetterAuth({ ...options, keys: { env: false, store: false } })).toThrow(
      TypeError
    )
  })

  it('fills in the defaults once: the body limit and the lifetimes', async () => {
    const auth = createBetterAuth({ keys: { env: false, store: false } })
    expect(auth.limits.maxBodyBytes).toBe(64 * 1024)
    expect(auth.ms).toEqual({
      accessToken: 900_000,
      refresh: 43_200_000,
      challenge: 60_000,
      accessWindow: 30_000,
      clockSkew: 5_000,
    })
    await auth.close()
  })

  it('keeps valid values', async () => {
    const auth = createBetterAuth({
      keys: { env: false, store: false },
      limits: { maxBodyBytes: 512, maxDepth: 3 },
      lifetimes: { accessToken: 0.5, clockSkew: 0 },
      tokenCompressionLevel: 9,
      tokenCacheSize: 0,
    })
    expect(auth.limits).toEqual({ maxBodyBytes: 512, maxDepth: 3 })
    expect(auth.ms.accessToken).toBe(500)
    expect(auth.ms.clockSkew).toBe(0)
    await auth.close()
  })
})
