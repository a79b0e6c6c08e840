/**
 * A strict parser for exactly the shape the header form allows in `Signature-Input`,
 * `Signature` and (its common case) `Content-Digest`, used by `readHeaderAccess` on every
 * request.
 *
 * Why by hand: `structured-headers` parses the whole RFC 8941/9651 grammar (lists, dictionaries,
 * decimals, tokens, booleans, dates, display strings) into generic maps, and that generality
 * cost ≈ 10 µs of the ≈ 20–30 µs `readHeaderAccess` took per request. The shape accepted here is
 * closed (docs/http-binding.md §2): one dictionary member labelled `ba`; an inner list of plain
 * sf-strings naming allowed components; the parameters `created` (integer), `nonce`, `keyid`,
 * `alg`, `tag` (strings), each at most once; one byte sequence of 64 bytes. Anything outside it
 * is refused with a FieldError (BA101 on the request side), as the generic path refused it; there
 * is no fallback, because a message outside the shape is refused anyway. What is accepted, and
 * the values read, are those of the generic path (`parseSignatureFields`, which replies still
 * use): test/binding/strict.test.ts checks both agree on random valid and mutated inputs.
 *
 * Whitespace follows RFC 8941 and the library: spaces before the member, spaces between inner
 * list items and after `(` or `;`, spaces or tabs after the member; nothing else.
 */
import { ALGORITHM, LABEL, serializeSignatureParams } from './base'
import { FieldError } from './fields'

/** A parsed request signature (the values `parseSignatureFields` gives, without item objects). */
export interface StrictSignature {
  /** The covered component names, in order (shared by every request that sends the same list). */
  names: readonly string[]
  /** The parameters in the order sent: `created` a number, the others strings. */
  params: Map<string, string | number>
  /** `@signature-params`: the inner list re-serialized (canonical form). */
  paramsText: string
  /** created, in seconds. */
  created: number
  signature: Uint8Array
}

const SPACE = 0x20
const TAB = 0x09
const QUOTE = 0x22
const BACKSLASH = 0x5c

// base64 (standard alphabet) digit values; -1 for anything else.
const DIGITS = new Int8Array(128).fill(-1)
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
for (let i = 0; i < ALPHABET.length; i++) DIGITS[ALPHABET.charCodeAt(i)] = i

/**
 * Decodes base64 as a structured-field byte sequence's content is read (`atob`, the WHATWG
 * "forgiving" decoder, after the RFC's alphabet check): `=` padding only as the last one or two
 * characters of a multiple of four, or no padding at all; unused trailing bits ignored.
 * Undefined when the text is not base64. Reads `text` from `start` to `stop` in place: a slice
 * of a header value is a view V8 resolves on every character read (~30 % slower here).
 */
export function decodeBase64(text: string, start = 0, stop = text.length): Uint8Array | undefined {
  let end = stop
  if ((end - start) % 4 === 0 && end > start && text.charCodeAt(end - 1) === 0x3d) {
    end--
    if (text.charCodeAt(end - 1) === 0x3d) end--
  }
  const tail = (end - start) % 4
  if (tail === 1) return undefined
  const out = new Uint8Array(((end - start) * 3) >> 2)
  // Four characters (24 bits, three bytes) at a time, then the last two or three.
  const whole = end - tail
  let at = 0
  let i = start
  for (; i < whole; i += 4) {
    const bits =
      (digit(text.charCodeAt(i)) << 18) |
      (digit(text.charCodeAt(i + 1)) << 12) |
      (digit(text.charCodeAt(i + 2)) << 6) |
      digit(text.charCodeAt(i + 3))
    if (bits < 0) return undefined // a character outside the alphabet (its digit is -1)
    out[at] = bits >> 16
    out[at + 1] = (bits >> 8) & 0xff
    out[at + 2] = bits & 0xff
    at += 3
  }
  if (tail > 0) {
    let bits = (digit(text.charCodeAt(i)) << 6) | digit(text.charCodeAt(i + 1))
    if (tail === 3) bits = (bits << 6) | digit(text.charCodeAt(i + 2))
    if (bits < 0) return undefined
    // The unused low bits (4 of 12, 2 of 18) are dropped, as atob does.
    if (tail === 2) out[at] = bits >> 4
    else {
      out[at] = bits >> 10
      out[at + 1] = (bits >> 2) & 0xff
    }
  }
  return out
}

/** A base64 digit's value, or -1 (which makes any word it is or-ed into negative). */
const digit = (c: number): number => (c < 128 ? (DIGITS[c] as number) : -1)

const isKeyChar = (c: number): boolean =>
  (c >= 0x61 && c <= 0x7a) || // a-z
  (c >= 0x30 && c <= 0x39) || // 0-9
  c === 0x5f || // _
  c === 0x2d || // -
  c === 0x2e || // .
  c === 0x2a // *

const notDictionary = (field: string): FieldError =>
  new FieldError(`${field} is not a structured dictionary`)

/** Skips spaces (SP only) from `i`. */
function spaces(text: string, i: number): number {
  while (text.charCodeAt(i) === SPACE) i++
  return i
}

/** Skips the member's leading spaces and `ba=`; the index after `=`. */
function label(text: string, field: string): number {
  const i = spaces(text, 0)
  if (
    text.charCodeAt(i) === 0x62 && // b
    text.charCodeAt(i + 1) === 0x61 && // a
    text.charCodeAt(i + 2) === 0x3d // =
  ) {
    return i + 3
  }
  throw new FieldError(`${field} must hold exactly one signature, labelled ${LABEL}`)
}

/** Only spaces or tabs may follow the member (RFC 8941 §4.2.2). */
function end(text: string, i: number, field: string): void {
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c !== SPACE && c !== TAB) {
      // A second member (another label, or `ba` again) is a second signature.
      if (c === 0x2c) throw new FieldError(`${field} must hold exactly one signature`)
      throw notDictionary(field)
    }
  }
}

/** An sf-string starting at the quote at `i`: its value and the index after the closing quote. */
function sfString(text: string, i: number, field: string): [string, number] {
  let value = ''
  let start = ++i
  for (;;) {
    if (i >= text.length) throw notDictionary(field)
    const c = text.charCodeAt(i)
    if (c === QUOTE) return [value + text.slice(start, i), i + 1]
    if (c === BACKSLASH) {
      const next = text.charCodeAt(i + 1)
      if (next !== QUOTE && next !== BACKSLASH) throw notDictionary(field)
      value += text.slice(start, i) + text[i + 1]
      i += 2
      start = i
    } else if (c < 0x20 || c > 0x7e) {
      throw notDictionary(field)
    } else i++
  }
}

/** A covered-components inner list parsed before: its text from `(` to `)`, and what it holds. */
interface ParsedList {
  text: string
  names: readonly string[]
  /** Written with no optional whitespace. */
  canonical: boolean
  /** The allowed components it was checked against. */
  components: ReadonlySet<string>
}

/**
 * The last few inner lists parsed: a client sends the same list on every request (one for
 * requests with a body, one without), so it is parsed once and then matched by its text. A list
 * is kept only once it parsed and passed the component checks; the result of parsing depends on
 * nothing but the text up to its `)` and the allowed set, so a text that starts with a kept list
 * parses to that list.
 */
const lists: ParsedList[] = []
const LISTS_KEPT = 4
let nextList = 0

/** A kept list that `input` holds at `open` (its `(`), checked against `components`. */
function seenList(
  input: string,
  open: number,
  components: ReadonlySet<string>
): ParsedList | undefined {
  for (const list of lists) {
    const end = open + list.text.length
    // The text's last character, then the text itself: a substring compared with `===` (one
    // comparison of the two) executed ~480 instructions a request here, where `startsWith` at a
    // position, which V8 runs character by character, executed ~4,300.
    if (
      list.components === components &&
      input.charCodeAt(end - 1) === 0x29 &&
      input.substring(open, end) === list.text
    ) {
      return list
    }
  }
  return undefined
}

/**
 * The allowed set's own string equal to `name`: a kept list holds these, so the look-ups its
 * names go through on every request (the allowed set, the required list, the components' ids)
 * compare them by identity rather than character by character.
 */
function allowedName(components: ReadonlySet<string>, name: string): string {
  for (const allowed of components) if (allowed === name) return allowed
  return name
}

/**
 * Parses the inner list of covered components at `open` (its `(`): plain sf-strings, each in
 * `components`, none twice. Keeps it (see `lists`). Throws FieldError.
 */
function innerList(input: string, open: number, components: ReadonlySet<string>): ParsedList {
  const field = 'signature-input'
  let canonical = true
  const names: string[] = []
  let i = open + 1
  for (;;) {
    const before = i
    i = spaces(input, i)
    const c = input.charCodeAt(i)
    if (c === 0x29) {
      if (i !== before) canonical = false
      i++
      break
    }
    if (i - before !== (names.length === 0 ? 0 : 1)) canonical = false
    if (c !== QUOTE) {
      if (Number.isNaN(c)) throw notDictionary(field)
      throw new FieldError('a covered component is not a string')
    }
    const [name, next] = sfString(input, i, field)
    i = next
    const after = input.charCodeAt(i)
    if (after === 0x3b) throw new FieldError(`covered component ${name} has parameters`)
    if (after !== SPACE && after !== 0x29) throw notDictionary(field)
    if (name === '') throw new FieldError('a covered component is not a string')
    if (!components.has(name)) throw new FieldError(`component ${name} may not be covered`)
    if (names.includes(name)) throw new FieldError(`${field} repeats a component`)
    names.push(allowedName(components, name))
  }
  // Not frozen, though shared by every request that sends this list and only ever read: V8's
  // optimized code reads a frozen array's elements through its generic keyed-load handler (~2,300
  // instructions a request in `readHeaderAccess`'s loop over them, by callgrind).
  const list: ParsedList = { text: input.slice(open, i), names, canonical, components }
  lists[nextList] = list
  nextList = (nextList + 1) % LISTS_KEPT
  return list
}

// An sf-string's content without escapes: printable ASCII but the quote and the backslash.
const PLAIN_STRING = '([\\x20\\x21\\x23-\\x5b\\x5d-\\x7e]*)'

/** The sticky pattern of `usualParams` for each tag (a constant in practice). */
const usualPatterns = new Map<string, RegExp | null>()

function usualPattern(tag: string): RegExp | null {
  let pattern = usualPatterns.get(tag)
  if (pattern === undefined) {
    pattern = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/.test(tag)
      ? new RegExp(
          `;created=(0|[1-9][0-9]{0,14});nonce="${PLAIN_STRING}"(?:;keyid="${PLAIN_STRING}")?` +
            `;alg="${ALGORITHM}";tag="${tag.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&')}"`,
          'y'
        )
      : null
    if (usualPatterns.size < 8) usualPatterns.set(tag, pattern)
  }
  return pattern
}

/**
 * The value of decimal digits, at most 15 (exact in a double), as `usualParams`' pattern and
 * `parseRequestSignature`'s own reading of `created` admit them.
 * `parseInt` of a ten-digit `created` went to V8's runtime and its `Strtod` (~0.2 µs a request
 * by `perf`).
 */
function digitsValue(digits: string): number {
  let value = 0
  for (let i = 0; i < digits.length; i++) value = value * 10 + (digits.charCodeAt(i) - 0x30)
  return value
}

/**
 * The parameters in the order and form clients send them, read with one pattern: `created`
 * (canonical digits), `nonce`, an optional `keyid`, `alg` and `tag` with their required values,
 * no escapes, no optional whitespace. What it reads is what the general loop below reads from
 * the same text (test/binding/strict.test.ts), and that loop goes on from where it stopped (a
 * further parameter, a repeated one); any other shape (another order, an escape, a leading zero)
 * is left to the loop from the start, which also names what is wrong. Undefined then.
 */
function usualParams(
  input: string,
  at: number,
  tag: string,
  allowed: ReadonlySet<string>
): { params: Map<string, string | number>; end: number } | undefined {
  const pattern = usualPattern(tag)
  if (pattern === null) return undefined
  pattern.lastIndex = at
  const m = pattern.exec(input)
  if (m === null) return undefined
  const keyid = m[3]
  for (const key of ['created', 'nonce', 'alg', 'tag']) if (!allowed.has(key)) return undefined
  if (keyid !== undefined && !allowed.has('keyid')) return undefined
  const params = new Map<string, string | number>()
  params.set('created', digitsValue(m[1] as string))
  params.set('nonce', m[2] as string)
  if (keyid !== undefined) params.set('keyid', keyid)
  params.set('alg', ALGORITHM)
  params.set('tag', tag)
  return { params, end: pattern.lastIndex }
}

/**
 * Parses `Signature-Input` and `Signature` of a request: the rules of `parseSignatureFields`
 * (one `ba` member each; plain component names without repeats, each in `components`;
 * parameters in `params`, without repeats; `created` a non-negative integer of at most 15
 * digits; `nonce`, `keyid` strings; `alg` = `ecdsa-p256-sha256`; `tag` = `tag`; 64 bytes).
 * Throws FieldError for anything else.
 */
export function parseRequestSignature(
  input: string,
  signature: string,
  tag: string,
  components: ReadonlySet<string>,
  allowedParams: ReadonlySet<string>
): StrictSignature {
  const field = 'signature-input'
  let i = label(input, field)
  if (input.charCodeAt(i) !== 0x28) throw new FieldError(`${field} is not an inner list`)
  const open = i
  const list = seenList(input, open, components) ?? innerList(input, open, components)
  const names = list.names
  // Whether the member is already in canonical form (no optional whitespace, no leading zeros):
  // then `@signature-params` is its text as sent, with no re-serialization.
  let canonical = list.canonical
  i = open + list.text.length

  const fast = usualParams(input, i, tag, allowedParams)
  const params = fast?.params ?? new Map<string, string | number>()
  if (fast !== undefined) i = fast.end
  while (input.charCodeAt(i) === 0x3b) {
    const start = spaces(input, i + 1)
    if (start !== i + 1) canonical = false
    i = start
    const first = input.charCodeAt(i)
    if (!((first >= 0x61 && first <= 0x7a) || first === 0x2a)) throw notDictionary(field)
    while (i < input.length && isKeyChar(input.charCodeAt(i))) i++
    const key = input.slice(start, i)
    if (!allowedParams.has(key)) throw new FieldError(`signature parameter ${key} is not allowed`)
    if (params.has(key)) throw new FieldError(`${field} repeats the parameter ${key}`)
    if (input.charCodeAt(i) !== 0x3d) {
      throw new FieldError(`signature parameter ${key} has no value of its type`)
    }
    i++
    if (key === 'created') {
      const digits = i
      while (input.charCodeAt(i) >= 0x30 && input.charCodeAt(i) <= 0x39) i++
      if (i === digits || i - digits > 15 || input.charCodeAt(i) === 0x2e) {
        throw new FieldError('signature parameter created is not a non-negative integer')
      }
      if (i - digits > 1 && input.charCodeAt(digits) === 0x30) canonical = false
      params.set(key, digitsValue(input.slice(digits, i)))
    } else {
      if (input.charCodeAt(i) !== QUOTE) {
        throw new FieldError(`signature parameter ${key} is not a string`)
      }
      const [value, next] = sfString(input, i, field)
      params.set(key, value)
      i = next
    }
  }
  const close = i
  end(input, i, field)

  const created = params.get('created') as number | undefined
  if (created === undefined) throw new FieldError('signature parameter created is missing')
  if (params.get('alg') !== ALGORITHM) {
    throw new FieldError(`signature parameter alg must be "${ALGORITHM}"`)
  }
  if (params.get('tag') !== tag) throw new FieldError(`signature parameter tag must be "${tag}"`)

  let j = label(signature, 'signature')
  if (signature.charCodeAt(j) !== 0x3a)
    throw new FieldError('signature is not a plain byte sequence')
  const colon = signature.indexOf(':', j + 1)
  if (colon < 0) throw notDictionary('signature')
  const bytes = decodeBase64(signature, j + 1, colon)
  if (bytes === undefined) throw notDictionary('signature')
  j = colon + 1
  if (signature.charCodeAt(j) === 0x3b)
    throw new FieldError('signature is not a plain byte sequence')
  end(signature, j, 'signature')
  if (bytes.length !== 64) throw new FieldError('signature is not 64 bytes (r ‖ s)')

  return {
    names,
    params,
    paramsText: canonical ? input.slice(open, close) : serializeSignatureParams(names, params),
    created,
    signature: bytes,
  }
}

/**
 * The claimed SHA-256 of a `Content-Digest` of the one common shape, `sha-256=:<base64>:`
 * (RFC 9530); undefined when the field has another shape (other algorithms beside `sha-256`,
 * parameters …), which the generic parser then reads; `'malformed'` when the shape is this one
 * but the content is not base64.
 */
export function simpleDigest(header: string): Uint8Array | 'malformed' | undefined {
  const PREFIX = 'sha-256=:'
  if (!header.startsWith(PREFIX)) return undefined
  const close = header.indexOf(':', PREFIX.length)
  if (close !== header.length - 1) return undefined
  return decodeBase64(header, PREFIX.length, close) ?? 'malformed'
}
