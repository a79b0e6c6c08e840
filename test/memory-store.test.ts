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

  it('sweeps the head where it stopped last, not from the start of the map each time', () => {
    // A Map keeps deleted entries as holes until it is rebuilt; a sweep that began a new walk at
    // every insert would step over all of them each time.
    const clock = new Clock(0)
    const map = new TtlMap<true>({ now: clock.now })
    const stream = (from: number, count: number): void => {
      for (let i = from; i < from + count; i++) {
        map.set(`k${i}`, true, 100)
        clock.ms += 0.1
      }
    }
    stream(0, 3000)
    const walks = [
      jest.spyOn(Map.prototype, 'entries'),
      jest.spyOn(Map.prototype, Symbol.iterator),
      jest.spyOn(Map.prototype, 'keys'),
      jest.spyOn(Map.prototype, 'forEach'),
    ]
    try {
      stream(3000, 5000)
      expect(walks.reduce((n, spy) => n + spy.mock.calls.length, 0)).toBeLessThanOrEqual(1)
    } finally {
      for (const spy of walks) spy.mockRestore()
    }
    // Still only the window's entries are held.
    expect(map.size).toBeGreaterThanOrEqual(990)
    expect(map.size).toBeLessThanOrEqual(1010)
  })

  it('the head sweep copes with entries taken, set anew, and a map that empties', () => {
    const clock = new Clock(0)
    const map = new TtlMap<string>({ now: clock.now })
    map.set('a', 'A', 10)
    map.set('b', 'B', 10)
    map.set('c', 'C', 1000)
    map.set('x', 'X', 5) // the sweep now stops at 'a' (live), and keeps it as the head
    expect(map.take('a')).toBe('A')
    map.set('b', 'B2', 1000) // set anew: moves to the end with a later expiry
    clock.ms = 20
    map.set('y', 'Y', 1000) // 'a' is gone and 'b' was set anew; 'x' has expired
    // b, c, y and the expired x, which waits behind the live c (insertion order ≈ expiry order)
    expect(map.size).toBe(4)
    expect(map.get('b')).toBe('B2')
    expect(map.get('c')).toBe('C')
    expect(map.get('x')).toBeUndefined()
    clock.ms = 2000
    map.set('z', 'Z', 10) // everything before has expired: the sweep reaches the end
    expect(map.size).toBe(1)
    clock.ms = 3000
    map.set('w', 'W', 10) // a new walk after the map emptied
    expect(map.size).toBe(1)
    expect(map.get('w')).toBe('W')
    map.sweep()
    clock.ms = 4000
    map.set('v', 'V', 10)
    expect(map.size).toBe(1)
    expect(map.get('v')).toBe('V')
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
