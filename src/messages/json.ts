/**
 * A strict JSON parser for protocol messages.
 *
 * Beyond RFC 8259 it refuses what a signed-message verifier must not silently accept:
 * duplicate keys (which `JSON.parse` merges, last one winning), `__proto__` keys, and nesting
 * deeper than a limit. It also reports where each `payload` value sits in the text, so
 * signatures can be checked over the exact bytes the client signed and sent.
 */
import { InvalidMessageError } from '../errors'

export interface JsonLimits {
  /** Deepest nesting of objects and arrays accepted. @default 32 */
  maxDepth?: number
}

export interface StrictJson {
  value: unknown
  /**
   * Text span `[start, end)` of every value whose key is `payload`, by dotted key path. Only
   * unambiguous paths are recorded: none inside an array, none through a key containing a dot
   * (`{"a.b":{"payload":…}}` must not pass for `{"a":{"b":{"payload":…}}}`).
   */
  payloadSpans: Map<string, [number, number]>
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y

class Parser {
  pos = 0
  readonly payloadSpans = new Map<string, [number, number]>()
  /** Keys from the root to the current value; null marks an array element. */
  private readonly path: (string | null)[] = []

  constructor(
    private readonly text: string,
    private readonly maxDepth: number
  ) {}

  fail(details: string): never {
    throw new InvalidMessageError('body', `${details} at offset ${this.pos}`)
  }

  skipWhitespace(): void {
    const text = this.text
    let pos = this.pos
    for (;;) {
      const c = text.charCodeAt(pos)
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) pos++
      else break
    }
    this.pos = pos
  }

  parseValue(depth: number): unknown {
    this.skipWhitespace()
    const c = this.text.charCodeAt(this.pos)
    switch (c) {
      case 0x7b: // {
        return this.parseObject(depth + 1)
      case 0x5b: // [
        return this.parseArray(depth + 1)
      case 0x22: // "
        return detach(this.parseString())
      case 0x74: // t
        return this.literal('true', true)
      case 0x66: // f
        return this.literal('false', false)
      case 0x6e: // n
        return this.literal('null', null)
      default:
        if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return this.parseNumber()
        return this.fail(Number.isNaN(c) ? 'unexpected end of input' : 'unexpected character')
    }
  }

  literal<T>(word: string, value: T): T {
    if (!this.text.startsWith(word, this.pos)) this.fail('invalid literal')
    this.pos += word.length
    return value
  }

  parseNumber(): number {
    NUMBER.lastIndex = this.pos
    const m = NUMBER.exec(this.text)
    if (m === null) return this.fail('invalid number')
    const value = Number(m[0])
    // 1e400 would read as Infinity, which re-serializes as null: refuse what has no JSON form.
    if (!Number.isFinite(value)) return this.fail('number out of range')
    this.pos += m[0].length
    // -0 re-serializes as 0; read it as 0 so what is verified and what is used agree.
    return value === 0 ? 0 : value
  }

  parseString(): string {
    const text = this.text
    const start = this.pos + 1
    let pos = start
    let escaped = false
    for (;;) {
      const c = text.charCodeAt(pos)
      if (c === 0x22) break
      if (Number.isNaN(c)) this.fail('unterminated string')
      if (c < 0x20) {
        this.pos = pos
        this.fail('control character in string')
      }
      if (c === 0x5c) {
        escaped = true
        pos += 2
      } else pos++
    }
    this.pos = pos + 1
    if (!escaped) return text.slice(start, pos)
    try {
      return JSON.parse(text.slice(start - 1, pos + 1)) as string
    } catch {
      this.pos = start
      return this.fail('invalid escape in string')
    }
  }

  parseObject(depth: number): Record<string, unknown> {
    if (depth > this.maxDepth) this.fail(`nesting deeper than ${this.maxDepth}`)
    this.pos++ // {
    const object: Record<string, unknown> = {}
    this.skipWhitespace()
    if (this.text.charCodeAt(this.pos) === 0x7d) {
      this.pos++
      return object
    }
    for (;;) {
      this.skipWhitespace()
      if (this.text.charCodeAt(this.pos) !== 0x22) this.fail('expected a key')
      const key = this.parseString()
      if (key === '__proto__') this.fail('forbidden key "__proto__"')
      if (Object.prototype.hasOwnProperty.call(object, key)) this.fail(`duplicate key "${key}"`)
      this.skipWhitespace()
      if (this.text.charCodeAt(this.pos) !== 0x3a) this.fail('expected ":"')
      this.pos++
      this.skipWhitespace()
      const start = this.pos
      this.path.push(key)
      object[key] = this.parseValue(depth)
      if (key === 'payload' && this.path.every(k => k !== null && !k.includes('.'))) {
        this.payloadSpans.set(this.path.join('.'), [start, this.pos])
      }
      this.path.pop()
      this.skipWhitespace()
      const c = this.text.charCodeAt(this.pos++)
      if (c === 0x7d) return object
      if (c !== 0x2c) {
        this.pos--
        this.fail('expected "," or "}"')
      }
    }
  }

  parseArray(depth: number): unknown[] {
    if (depth > this.maxDepth) this.fail(`nesting deeper than ${this.maxDepth}`)
    this.pos++ // [
    const array: unknown[] = []
    this.skipWhitespace()
    if (this.text.charCodeAt(this.pos) === 0x5d) {
      this.pos++
      return array
    }
    this.path.push(null)
    for (;;) {
      array.push(this.parseValue(depth))
      this.skipWhitespace()
      const c = this.text.charCodeAt(this.pos++)
      if (c === 0x5d) break
      if (c !== 0x2c) {
        this.pos--
        this.fail('expected "," or "]"')
      }
    }
    this.path.pop()
    return array
  }
}

/**
 * A copy of a string value that does not keep the message text alive. V8 represents a slice of
 * 13 or more characters as a view on the whole text, so a nonce held in a replay store for the
 * access window would otherwise pin its entire request body (about 1 KB each). Concatenating
 * and slicing again forces a flat copy of just the value; shorter slices are copies already.
 */
function detach(value: string): string {
  return value.length < 13 ? value : (' ' + value).slice(1)
}

/** Parses `text` strictly; throws InvalidMessageError (BA101) on anything it refuses. */
export function parseStrictJson(text: string, limits: JsonLimits = {}): StrictJson {
  const parser = new Parser(text, limits.maxDepth ?? 32)
  const value = parser.parseValue(0)
  parser.skipWhitespace()
  if (parser.pos !== text.length) parser.fail('unexpected data after JSON value')
  return { value, payloadSpans: parser.payloadSpans }
}

const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** Decodes a request body as UTF-8, refusing invalid sequences (BA101). */
export function decodeUtf8(body: Uint8Array): string {
  try {
    return utf8Strict.decode(body)
  } catch {
    throw new InvalidMessageError('body', 'not valid UTF-8')
  }
}
