/** The default store's bounds and eviction, and how the core reports store failures. */
import { MemoryStore, TtlMap, type ServerStore } from '../src'
import { Clock, TestAccount, errorOf, makeServer } from './helpers'

describe('TtlMap', () => {
  it('expires entries and evicts them', () => {
    const clock = new Clock(0)
    const map = new TtlMap<string>({ now: clock.now, maxEntries: 10 })
    map.set('a', 'x', 1000)
    expect(map.get('a')).toBe('x')
    clock.advance(1)
    expect(map.get('a')).toBeUndefined()
    expect(map.size).toBe(0)
  })

  it('refuses new entries when full of live ones (fail closed), and frees expired ones', () => {
    const clock = new Clock(0)
    const map = new TtlMap<true>({ now: clock.now, maxEntries: 3 })
    for (const key of ['a', 'b', 'c']) expect(map.setIfAbsent(key, true, 1000)).toBe(true)
    expect(() => map.setIfAbsent('d', true, 1000)).toThrow(
      expect.objectContaining({ code: 'BA602' })
    )
    // A used nonce is never forgotten early: 'a' is still reserved.
    expect(map.setIfAbsent('a', true, 1000)).toBe(false)
    clock.advance(1)
    expect(map.setIfAbsent('d', true, 1000)).toBe(true)
    expect(map.size).toBe(1)
  })

  it('when full of live entries, scans for expired ones at most once a second', () => {
    const clock = new Clock(0)
    const map = new TtlMap<true>({ now: clock.now, maxEntries: 50 })
    for (let i = 0; i < 50; i++) map.set(`k${i}`, true, 60_000)
    const sweep = jest.spyOn(map, 'sweep')
    for (let i = 0; i < 100; i++) {
      expect(() => map.set(`new${i}`, true, 60_000)).toThrow(
        expect.objectContaining({ code: 'BA602' })
      )
    }
    expect(sweep).toHaveBeenCalledTimes(1)
    clock.ms += 1000
    expect(() => map.set('later', true, 60_000)).toThrow(expect.objectContaining({ code: 'BA602' }))
    expect(sweep).toHaveBeenCalledTimes(2)
  })

  it('sweeps expired entries at the head as new ones arrive', () => {
    const clock = new Clock(0)
    const map = new TtlMap<true>({ now: clock.now })
    for (let i = 0; i < 1000; i++) {
      map.set(`k${i}`, true, 10)
      clock.ms += 1
    }
    // Only about the last ten are live; the rest were evicted incrementally.
    expect(map.size).toBeLessThan(30)
  })

  it('keeps values of any kind, and `true` without storing it', () => {
    const map = new TtlMap<unknown>()
    const values: [string, unknown][] = [
      ['t', true],
      ['f', false],
      ['z', null],
      ['o', { a: 1 }],
      ['s', 'identity'],
    ]
    for (const [key, value] of values) map.set(key, value, 1000)
    for (const [key, value] of values) expect([key, map.get(key)]).toEqual([key, value])
    map.set('s', true, 1000)
    expect(map.get('s')).toBe(true)
    expect(map.size).toBe(values.length)
  })

  it('a key sliced from a long text is stored on its own and found by an equal string', () => {
    const body = `{"nonce":"0A${'x'.repeat(22)}","padding":"${'p'.repeat(4096)}"}`
    const nonce = JSON.parse(body).nonce as string
    const map = new TtlMap<true>()
    expect(map.setIfAbsent(body.slice(10, 34), true, 1000)).toBe(true)
    expect(map.setIfAbsent(nonce, true, 1000)).toBe(false)
    expect(map.keys()).toEqual([nonce])
  })

  it('take() removes a live entry exactly once', () => {
    const map = new TtlMap<string>()
    map.set('n', 'identity', 1000)
    expect(map.take('n')).toBe('identity')
    expect(map.take('n')).toBeUndefined()
  })
})

describe('store failures', () => {
  it('a store that cannot answer gives 503 BA602, not 500', async () => {
    const memory = new MemoryStore({ sweepIntervalMs: 0 })
    const broken: ServerStore = {
      ...memory,
      accounts: new Proxy(memory.accounts, {
        get: () => () => Promise.reject(new Error('connection refused')),
      }),
      challenges: memory.challenges,
      refreshKeys: memory.refreshKeys,
      accessNonces: memory.accessNonces,
    }
    const server = makeServer({ store: broken })
    const result = await server.call('createAccount', new TestAccount().createAccountBody())
    expect(result.status).toBe(503)
    expect(errorOf(result)).toEqual({ code: 'BA602', message: 'storage unavailable' })
  })

  it('a full memory store fails closed with 503', async () => {
    const server = makeServer({ store: new MemoryStore({ maxIdentities: 1, sweepIntervalMs: 0 }) })
    expect((await server.call('createAccount', new TestAccount().createAccountBody())).status).toBe(
      200
    )
    const result = await server.call('createAccount', new TestAccount().createAccountBody())
    expect([result.status, errorOf(result).code]).toEqual([503, 'BA602'])
  })
})
