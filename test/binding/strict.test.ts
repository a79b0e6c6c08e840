/**
 * The strict parser of the header form's fields (src/binding/strict.ts) against the generic
 * path it replaced on requests (`structured-headers` through `parseSignatureFields`, which
 * replies still use): for random valid and mutated inputs both accept or both refuse, and
 * accepted inputs give the same values.
 */
import fc from 'fast-check'
import { parseDictionary } from 'structured-headers'
import { REQUEST_COMPONENTS, REQUEST_TAG } from '../../src/binding'
import { digestProblem } from '../../src/binding/digest'
import { checkComponents, parseSignatureFields } from '../../src/binding/signature'
import { decodeBase64, parseRequestSignature } from '../../src/binding/strict'
import { contentDigest } from '../../src/binding/digest'
import { dictionaryKeys } from '../../src/binding/fields'

const RUNS = Math.max(1, Number(process.env.FUZZ_RUNS ?? 1000)) * 5
const SEED = process.env.FUZZ_SEED === undefined ? 20251019 : Number(process.env.FUZZ_SEED)

const COMPONENTS = new Set<string>([...REQUEST_COMPONENTS, 'content-digest'])
const PARAMS = new Set(['created', 'nonce', 'keyid', 'alg', 'tag'])

type Outcome = { ok: false } | { ok: true; value: unknown }

function generic(input: string, signature: string): Outcome {
  try {
    const p = parseSignatureFields(input, signature, REQUEST_TAG, PARAMS)
    checkComponents(p.names, COMPONENTS, [])
    return {
      ok: true,
      value: {
        names: p.names,
        params: [...p.params],
        paramsText: p.paramsText,
        created: p.created,
        signature: [...p.signature],
      },
    }
  } catch {
    return { ok: false }
  }
}

function strict(input: string, signature: string): Outcome {
  try {
    const p = parseRequestSignature(input, signature, REQUEST_TAG, COMPONENTS, PARAMS)
    return {
      ok: true,
      value: {
        names: p.names,
        params: [...p.params],
        paramsText: p.paramsText,
        created: p.created,
        signature: [...p.signature],
      },
    }
  } catch (error) {
    // Refusals are FieldErrors (BA101), never anything else.
    expect((error as Error).constructor.name).toBe('FieldError')
    return { ok: false }
  }
}

const sfString = (value: string): string => '"' + value.replace(/["\\]/g, '\\$&') + '"'
const printable = fc.string({
  unit: fc.constantFrom(...'abcAZ09-_=+/"\\ ;,()*:.?@%\t'.split('')),
  maxLength: 24,
})
const spaces = fc.constantFrom('', '', '', ' ', '  ')
const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64')

/** A Signature-Input of the allowed shape, with random order, values and optional whitespace. */
const validInput = fc
  .record({
    names: fc.shuffledSubarray([...COMPONENTS], { minLength: 1 }),
    created: fc.oneof(fc.integer({ min: 0, max: 2 ** 40 }), fc.constant(0)),
    zeros: fc.constantFrom('', '', '0', '00'),
    nonce: fc.option(fc.oneof(fc.constant('0AABAQEBAQEBAQEBAQEBAQEB'), printable)),
    keyid: fc.option(fc.oneof(fc.constant('1AAI' + 'A'.repeat(44)), printable)),
    alg: fc.constantFrom('ecdsa-p256-sha256', 'ecdsa-p256-sha256', 'rsa'),
    tag: fc.constantFrom(REQUEST_TAG, REQUEST_TAG, 'better-auth-response'),
    lead: spaces,
    inner: fc.array(spaces, { minLength: 8, maxLength: 8 }),
    after: fc.array(spaces, { minLength: 6, maxLength: 6 }),
    order: fc.array(fc.nat(), { minLength: 5, maxLength: 5 }),
    trail: fc.constantFrom('', ' ', '\t', ' \t'),
  })
  .map(r => {
    const params: [string, string][] = [
      ['created', r.zeros + String(r.created)],
      ['alg', sfString(r.alg)],
      ['tag', sfString(r.tag)],
    ]
    if (r.nonce !== null) params.push(['nonce', sfString(r.nonce)])
    if (r.keyid !== null) params.push(['keyid', sfString(r.keyid)])
    const ordered = params
      .map((p, i) => [r.order[i] ?? 0, p] as const)
      .sort((a, b) => a[0] - b[0])
      .map(e => e[1])
    const items = r.names.map((n, i) => (i === 0 ? '' : ' ' + r.inner[i]) + sfString(n))
    return (
      r.lead +
      'ba=(' +
      r.inner[0] +
      items.join('') +
      r.inner[7] +
      ')' +
      ordered.map(([k, v], i) => ';' + r.after[i] + k + '=' + v).join('') +
      r.trail
    )
  })

/**
 * A Signature-Input in the order clients send (created, nonce, an optional keyid, alg, tag), the
 * shape the strict parser reads with one pattern: mostly canonical, sometimes with a leading
 * zero, an escape, another alg or tag, or optional whitespace, which the pattern leaves to the
 * general loop.
 */
const usualInput = fc
  .record({
    names: fc.shuffledSubarray([...COMPONENTS], { minLength: 1 }),
    created: fc.integer({ min: 0, max: 2 ** 45 }),
    zeros: fc.constantFrom('', '', '', '', '0'),
    nonce: fc.oneof(fc.constant('0AABAQEBAQEBAQEBAQEBAQEB'), printable),
    keyid: fc.option(fc.oneof(fc.constant('1AAI' + 'A'.repeat(44)), printable)),
    alg: fc.constantFrom('ecdsa-p256-sha256', 'ecdsa-p256-sha256', 'ecdsa-p256-sha256', 'rsa'),
    tag: fc.constantFrom(REQUEST_TAG, REQUEST_TAG, REQUEST_TAG, 'better-auth-response'),
    space: fc.constantFrom('', '', '', '', ' '),
    trail: fc.constantFrom('', '', ' ', '\t', ';', ';x=1', ';tag="better-auth"'),
  })
  .map(
    r =>
      'ba=(' +
      r.names.map(sfString).join(' ') +
      ');created=' +
      r.zeros +
      String(r.created) +
      ';' +
      r.space +
      'nonce=' +
      sfString(r.nonce) +
      (r.keyid === null ? '' : ';keyid=' + sfString(r.keyid)) +
      ';alg=' +
      sfString(r.alg) +
      ';tag=' +
      sfString(r.tag) +
      r.trail
  )

const validSignature = fc
  .record({
    bytes: fc.oneof(
      { arbitrary: fc.uint8Array({ minLength: 64, maxLength: 64 }), weight: 4 },
      { arbitrary: fc.uint8Array({ minLength: 62, maxLength: 66 }), weight: 1 }
    ),
    pad: fc.boolean(),
    lead: spaces,
    trail: fc.constantFrom('', ' ', '\t'),
  })
  .map(r => {
    const text = b64(r.bytes)
    return r.lead + 'ba=:' + (r.pad ? text : text.replace(/=+$/, '')) + ':' + r.trail
  })

/** Random edits at random places, with the characters that matter to the grammar. */
const mutate = (text: fc.Arbitrary<string>): fc.Arbitrary<string> =>
  fc
    .tuple(
      text,
      fc.array(
        fc.record({
          at: fc.nat(),
          kind: fc.constantFrom('insert', 'delete', 'replace', 'duplicate'),
          with: fc.oneof(
            fc.constantFrom(
              ' ',
              '\t',
              '"',
              '\\',
              ';',
              ',',
              '(',
              ')',
              ':',
              '=',
              '.',
              '-',
              '?1',
              'ba=',
              ',ba=("@method")',
              ';created=1',
              ';nonce="x"',
              ';alg="ecdsa-p256-sha256"',
              ';expires=1',
              '"@path"',
              ';req',
              'A',
              '==',
              '1.0',
              '9999999999999999',
              'é'
            ),
            fc.string({ maxLength: 3 })
          ),
          length: fc.integer({ min: 1, max: 6 }),
        }),
        { minLength: 1, maxLength: 3 }
      )
    )
    .map(([t, edits]) => {
      for (const e of edits) {
        const at = t.length === 0 ? 0 : e.at % (t.length + 1)
        if (e.kind === 'insert') t = t.slice(0, at) + e.with + t.slice(at)
        else if (e.kind === 'delete') t = t.slice(0, at) + t.slice(at + e.length)
        else if (e.kind === 'replace') t = t.slice(0, at) + e.with + t.slice(at + e.length)
        else t = t.slice(0, at) + t.slice(at, at + e.length) + t.slice(at)
      }
      return t
    })

const pairs = fc.oneof(
  fc.tuple(validInput, validSignature),
  fc.tuple(mutate(validInput), validSignature),
  fc.tuple(validInput, mutate(validSignature)),
  fc.tuple(mutate(validInput), mutate(validSignature))
)

describe('strict header-form parser', () => {
  it('parses the vectors’ shape', () => {
    const sig = 'ba=:' + b64(new Uint8Array(64).fill(7)) + ':'
    const input =
      'ba=("@method" "@authority" "@path" "@query" "authorization");created=1760894788;' +
      'nonce="0AABAQEBAQEBAQEBAQEBAQEB";alg="ecdsa-p256-sha256";tag="better-auth"'
    expect(strict(input, sig)).toEqual(generic(input, sig))
    expect(strict(input, sig).ok).toBe(true)
  })

  it('accepts and refuses exactly what structured-headers does, with the same values', () => {
    let accepted = 0
    let refused = 0
    fc.assert(
      fc.property(pairs, ([input, signature]) => {
        const expected = generic(input, signature)
        expect(strict(input, signature)).toEqual(expected)
        if (expected.ok) accepted++
        else refused++
      }),
      { numRuns: RUNS, seed: SEED }
    )
    // Both kinds are exercised, not only one.
    expect(accepted).toBeGreaterThan(RUNS / 50)
    expect(refused).toBeGreaterThan(RUNS / 50)
  })

  it('reads the parameters in the order clients send as structured-headers does', () => {
    let accepted = 0
    fc.assert(
      fc.property(fc.oneof(usualInput, mutate(usualInput)), validSignature, (input, signature) => {
        const expected = generic(input, signature)
        expect(strict(input, signature)).toEqual(expected)
        if (expected.ok) accepted++
      }),
      { numRuns: RUNS, seed: SEED }
    )
    expect(accepted).toBeGreaterThan(RUNS / 10)
  })

  it('decodes base64 exactly as the byte sequences of structured-headers', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 40 }).map(b64),
          mutate(fc.uint8Array({ maxLength: 40 }).map(b64))
        ),
        text => {
          let expected: number[] | undefined
          try {
            const item = parseDictionary('x=:' + text + ':').get('x')
            expected = [...new Uint8Array(item?.[0] as ArrayBuffer)]
          } catch {
            expected = undefined
          }
          const ours = /^[A-Za-z0-9+/=]*$/.test(text) ? decodeBase64(text) : undefined
          expect(ours === undefined ? undefined : [...ours]).toEqual(expected)
        }
      ),
      { numRuns: RUNS, seed: SEED }
    )
  })

  it('decodes a range of a longer text as it decodes that range on its own', () => {
    const chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=:-'
    const text = fc.oneof(
      fc.uint8Array({ maxLength: 70 }).map(b64),
      fc.string({ unit: fc.constantFrom(...chars), maxLength: 20 })
    )
    const around = fc.string({ unit: fc.constantFrom(...chars), maxLength: 6 })
    fc.assert(
      fc.property(around, text, around, (before, middle, after) => {
        const ranged = decodeBase64(
          before + middle + after,
          before.length,
          before.length + middle.length
        )
        const alone = decodeBase64(middle)
        expect(ranged === undefined ? undefined : [...ranged]).toEqual(
          alone === undefined ? undefined : [...alone]
        )
      }),
      { numRuns: RUNS, seed: SEED }
    )
  })

  it('decodes base64 as atob does, any character anywhere', () => {
    // atob strips ASCII whitespace first, which a field's byte sequence cannot hold: left out.
    const chars =
      'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_.:\u00e9\u0100'
    const reference = (text: string): number[] | undefined => {
      try {
        return [...atob(text)].map(c => c.charCodeAt(0))
      } catch {
        return undefined
      }
    }
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 70 }).map(b64),
          mutate(fc.uint8Array({ maxLength: 70 }).map(b64)).filter(t => !/[\t\n\f\r ]/.test(t)),
          fc.string({ unit: fc.constantFrom(...chars), maxLength: 20 })
        ),
        text => {
          const ours = decodeBase64(text)
          expect(ours === undefined ? undefined : [...ours]).toEqual(reference(text))
        }
      ),
      { numRuns: RUNS, seed: SEED }
    )
  })

  it('reads Content-Digest as the generic parser does', () => {
    const body = new TextEncoder().encode('{"a":1}')
    const reference = (header: string): string | undefined => {
      try {
        dictionaryKeys(header, 'content-digest')
        const member = parseDictionary(header).get('sha-256')
        if (member === undefined || Array.isArray(member[0]) || member[1].size !== 0)
          return 'malformed'
        const bytes = member[0]
        if (!(bytes instanceof ArrayBuffer) || bytes.byteLength !== 32) return 'malformed'
        return contentDigest(body) === 'sha-256=:' + b64(new Uint8Array(bytes)) + ':'
          ? undefined
          : 'mismatch'
      } catch {
        return 'malformed'
      }
    }
    const digests = fc.oneof(
      fc.constant(contentDigest(body)),
      fc.uint8Array({ minLength: 31, maxLength: 33 }).map(b => 'sha-256=:' + b64(b) + ':'),
      mutate(fc.constant(contentDigest(body))),
      mutate(fc.constant(contentDigest(body) + ', sha-512=:AAAA:'))
    )
    fc.assert(
      fc.property(digests, header => {
        // Headers reach the reader trimmed and without control characters.
        // eslint-disable-next-line no-control-regex
        if (header !== header.trim() || /[\u0000-\u0008\u000a-\u001f\u007f]/.test(header)) return
        expect(digestProblem(header, body)?.problem).toBe(reference(header))
      }),
      { numRuns: RUNS, seed: SEED }
    )
  })
})
