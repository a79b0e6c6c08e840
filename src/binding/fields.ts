/**
 * Reading header fields for the header form: one lookup over any header shape, with duplicate
 * detection, and the few structured-field checks the parser library leaves to its caller.
 *
 * Parsing proper is done by `structured-headers` (RFC 8941 / RFC 9651). That library follows
 * the RFC's rule that a repeated dictionary key or parameter silently overwrites the earlier
 * one, and it returns integers and decimals alike as numbers. Here a repeated key is a forged
 * or duplicated field, and `created=1.0` is not an integer, so `topLevel` below scans the raw
 * text (outside strings and inner lists) for those two things only; everything else about the
 * syntax is the library's.
 */

/** Anything with `get(name)`: a fetch `Headers`, or a Map with lower-case keys. */
export interface HeadersLike {
  get(name: string): string | null | undefined
}

/**
 * A plain record of header fields (names in any case). An array value is several field lines
 * (Node's `req.headersDistinct`), which is how duplicates are seen: Node's `req.headers` drops
 * repeated `Authorization` lines silently, so adapters should pass `headersDistinct`.
 */
export type HeaderRecord = Readonly<Record<string, string | readonly string[] | undefined>>

/**
 * Headers in any of the shapes adapters have at hand. A `Headers` object joins repeated lines
 * with ", "; for the fields read here that join is still detected (see `topLevel`).
 */
export type HeadersInput = HeadersLike | HeaderRecord

const isHeadersLike = (headers: HeadersInput): headers is HeadersLike =>
  typeof (headers as HeadersLike).get === 'function'

/** The field lines of `name` (lower case), in order; none if the field is absent. */
export function fieldLines(headers: HeadersInput | undefined, name: string): string[] {
  if (headers === undefined) return []
  if (isHeadersLike(headers)) {
    const value = headers.get(name)
    return value === null || value === undefined ? [] : [value]
  }
  const lines: string[] = []
  for (const key in headers) {
    if (key.length !== name.length || (key !== name && key.toLowerCase() !== name)) continue
    const value = headers[key]
    if (typeof value === 'string') lines.push(value)
    else if (value !== undefined) for (const line of value) lines.push(line)
  }
  return lines
}

/** The lines of a field that is absent, shared: what `fieldsLines` gives is only read. */
export const NO_LINES: readonly string[] = Object.freeze([])

/**
 * The field lines of each of `names` (lower case) at once: what `fieldLines` gives per name, in
 * one walk over a record's keys instead of one walk per name (a `HeadersLike` is asked per name).
 * The lines are the record's own array where a name has one key (an adapter's lines by name, as
 * node adapters collect them), not copies: the result is read, never written.
 */
export function fieldsLines<N extends string>(
  headers: HeadersInput | undefined,
  names: readonly N[]
): Record<N, readonly string[]> {
  const found = {} as Record<N, readonly string[]>
  for (const name of names) found[name] = NO_LINES
  if (headers === undefined) return found
  if (isHeadersLike(headers)) {
    for (const name of names) found[name] = fieldLines(headers, name)
    return found
  }
  for (const key in headers) {
    // The usual key is already lower case: an exact match first, lower-casing (once) only if none.
    let name: N | undefined
    for (const candidate of names) {
      if (key === candidate) {
        name = candidate
        break
      }
    }
    if (name === undefined) {
      let lower: string | undefined
      for (const candidate of names) {
        if (key.length === candidate.length && (lower ??= key.toLowerCase()) === candidate) {
          name = candidate
          break
        }
      }
    }
    if (name === undefined) continue
    const value = headers[key]
    if (value === undefined) continue
    const lines = typeof value === 'string' ? [value] : (value as readonly string[])
    const before = found[name]
    // Two keys for one field (`Authorization` and `authorization`): their lines together.
    found[name] = before === NO_LINES ? lines : [...before, ...lines]
  }
  return found
}

/**
 * Whether `Content-Length` lines announce a body: some member of some line (a `Headers` object
 * joins lines with ", ") that is not all zeros. No line announces none. (Loops, not callbacks:
 * this runs on every header-form request.)
 */
export function announcesBody(lines: readonly string[]): boolean {
  for (const line of lines) {
    for (const member of line.split(',')) if (!/^\s*0+\s*$/.test(member)) return true
  }
  return false
}

/** Whether `Content-Encoding` lines name a coding other than `identity`. */
export function namesCoding(lines: readonly string[]): boolean {
  for (const line of lines) {
    for (const coding of line.split(',')) {
      const value = coding.trim().toLowerCase()
      if (value !== '' && value !== 'identity') return true
    }
  }
  return false
}

/** Why a field was refused; the caller turns it into its own error code. */
export class FieldError extends Error {}

// Field values carry no control characters (RFC 9110 §5.5); a CR or LF here is a smuggling
// attempt or a broken adapter, and would break the one-line-per-component signature base.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f]/

/**
 * The single value of field `name` with surrounding whitespace removed (RFC 9421 §2.1), or
 * undefined when absent. Several field lines, an over-long value or control characters throw.
 */
export function singleField(
  headers: HeadersInput | undefined,
  name: string,
  maxLength: number
): string | undefined {
  return singleLine(fieldLines(headers, name), name, maxLength)
}

/**
 * `singleField` of the lines of field `name` (see `fieldsLines`). With `control: false` the
 * caller checks for control characters itself (`checkControl`), e.g. after a stricter pattern.
 */
export function singleLine(
  lines: readonly string[],
  name: string,
  maxLength: number,
  control = true
): string | undefined {
  if (lines.length === 0) return undefined
  if (lines.length > 1) throw new FieldError(`${name} is duplicated`)
  const value = (lines[0] as string).trim()
  if (value.length > maxLength) throw new FieldError(`${name} is longer than ${maxLength}`)
  if (control) checkControl(value, name)
  return value
}

/** Throws FieldError when field `name`'s value holds control characters. */
export function checkControl(value: string, name: string): void {
  if (CONTROL.test(value)) throw new FieldError(`${name} contains control characters`)
}

/**
 * Splits `text` at each `separator` that is outside quoted strings and parentheses: the
 * members of a dictionary (separator ",") or the parameters after an inner list (";").
 * Byte sequences and tokens cannot contain either separator, so they need no state.
 */
export function topLevel(text: string, separator: ',' | ';'): string[] {
  const parts: string[] = []
  let start = 0
  let depth = 0
  let quoted = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (quoted) {
      if (c === 0x5c)
        i++ // backslash escapes the next character
      else if (c === 0x22) quoted = false
    } else if (c === 0x22) quoted = true
    else if (c === 0x28) depth++
    else if (c === 0x29) depth--
    else if (depth === 0 && c === separator.charCodeAt(0)) {
      parts.push(text.slice(start, i))
      start = i + 1
    }
  }
  parts.push(text.slice(start))
  return parts
}

/** The key of a dictionary member or parameter (`key`, `key=value` or `key;params`). */
export function memberKey(member: string): string {
  const text = member.trim()
  let end = 0
  while (end < text.length && text[end] !== '=' && text[end] !== ';') end++
  return text.slice(0, end)
}

/** The keys of a dictionary's members, in order; a repeated key throws. */
export function dictionaryKeys(text: string, field: string): string[] {
  const keys = topLevel(text, ',').map(memberKey)
  if (new Set(keys).size !== keys.length) throw new FieldError(`${field} repeats a key`)
  return keys
}

/**
 * The raw text of each parameter of a dictionary member whose value is an inner list:
 * `ba=("a" "b");created=1;alg="x"` → `{created: "1", alg: "\"x\""}`. A repeated key throws.
 */
export function innerListParameters(member: string, field: string): Map<string, string> {
  const parts = topLevel(member, ';')
  const params = new Map<string, string>()
  for (let i = 1; i < parts.length; i++) {
    const part = (parts[i] as string).trim()
    const eq = part.indexOf('=')
    const key = eq < 0 ? part : part.slice(0, eq)
    if (params.has(key)) throw new FieldError(`${field} repeats the parameter ${key}`)
    params.set(key, eq < 0 ? '?1' : part.slice(eq + 1))
  }
  return params
}
