/** The hand-written serializer of `@signature-params` agrees with structured-headers. */
import fc from 'fast-check'
import { serializeInnerList, type BareItem, type Item } from 'structured-headers'
import { REQUEST_SIGNATURE_COMPONENT, serializeSignatureParams } from '../../src/binding/base'

const library = (components: Item[], params: Map<string, BareItem>): string | Error => {
  try {
    return serializeInnerList([components, params])
  } catch (error) {
    return error as Error
  }
}
const ours = (components: Item[], params: Map<string, BareItem>): string | Error => {
  try {
    return serializeSignatureParams(components, params)
  } catch (error) {
    return error as Error
  }
}

describe('serializeSignatureParams', () => {
  it('serializes what the binding emits as the library does', () => {
    const components: Item[] = [
      ['@status', new Map()],
      ['content-digest', new Map()],
      REQUEST_SIGNATURE_COMPONENT,
    ]
    const params = new Map<string, BareItem>([
      ['created', 1700000000],
      ['keyid', '1AAI-abc_def'],
      ['alg', 'ecdsa-p256-sha256'],
      ['tag', 'better-auth-response'],
    ])
    expect(ours(components, params)).toBe(library(components, params))
  })

  it('agrees with the library (or refuses with it) on arbitrary strings, keys and integers', () => {
    const value = fc.oneof(
      fc.string({ maxLength: 12 }),
      fc.string({ unit: 'binary', maxLength: 6 }),
      fc.integer({ min: -1e16, max: 1e16 }),
      fc.constant(true),
      fc.constant(false),
      fc.double({ noNaN: true })
    )
    const key = fc.oneof(fc.constantFrom('created', 'nonce', 'keyid', 'a*', 'x-y.z'), fc.string())
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.string({ maxLength: 10 }), fc.array(fc.tuple(key, value)))),
        fc.array(fc.tuple(key, value), { maxLength: 6 }),
        (items, params) => {
          const components: Item[] = items.map(([name, p]) => [name, new Map(p)])
          const parameters = new Map(params)
          const expected = library(components, parameters)
          const got = ours(components, parameters)
          if (expected instanceof Error) expect(got).toBeInstanceOf(Error)
          else expect(got).toBe(expected)
        }
      ),
      { numRuns: 2000 }
    )
  })
})
