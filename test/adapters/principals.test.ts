/**
 * Where the adapters keep a request's principal (adapters/shared/principals.ts): on an object its
 * constructor built, under a private symbol; in a WeakMap for an object whose prototype was
 * swapped (Express's requests and responses), one made by `Object.create` (Koa's context), a
 * frozen one and one with no prototype. Every kind reads back what was set.
 */
import { IncomingMessage } from 'node:http'
import { Socket } from 'node:net'
import { principals } from '../../adapters/shared/principals'
import type { AccessPrincipal } from '../../src/server/core'

const principal = (identity: string) =>
  ({ identity }) as unknown as AccessPrincipal<unknown, unknown>
const ownSymbols = (key: object) => Object.getOwnPropertySymbols(key).length

class Built {
  constructor(readonly name: string) {}
}

test.each([
  ['node request', () => new IncomingMessage(new Socket())],
  ['class instance', () => new Built('a')],
  ['fetch Request', () => new Request('http://example.test/')],
  ['object literal', () => ({})],
])('%s: kept on the object', (_, make) => {
  const key = make()
  const before = ownSymbols(key)
  expect(principals.get(key)).toBeUndefined()
  principals.set(key, principal('on it'))
  expect(principals.get(key)).toEqual({ identity: 'on it' })
  expect(ownSymbols(key)).toBe(before + 1)
  // Another object of the same kind has its own (or none).
  expect(principals.get(make())).toBeUndefined()
})

test.each([
  [
    'prototype swapped (Express)',
    () => {
      const req = new IncomingMessage(new Socket())
      Object.setPrototypeOf(req, Object.create(IncomingMessage.prototype))
      return req
    },
  ],
  ['made by Object.create (Koa)', () => Object.create({ request: {} }) as object],
  ['frozen', () => Object.freeze(new Built('frozen'))],
  ['sealed', () => Object.seal({ a: 1 })],
  ['no prototype', () => Object.create(null) as object],
])('%s: kept in the WeakMap, never on the object', (_, make) => {
  const key = make()
  const before = ownSymbols(key)
  principals.set(key, principal('aside'))
  expect(principals.get(key)).toEqual({ identity: 'aside' })
  expect(ownSymbols(key)).toBe(before)
  expect(principals.get(make())).toBeUndefined()
})

test('setting again replaces the principal, in either place', () => {
  const built = new Built('b')
  const swapped = Object.setPrototypeOf(new Built('c'), { extra: true }) as object
  for (const key of [built, swapped]) {
    principals.set(key, principal('first'))
    principals.set(key, principal('second'))
    expect(principals.get(key)).toEqual({ identity: 'second' })
  }
})
