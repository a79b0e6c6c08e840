/** Which form of the access request a request carries: the header form or the classic body. */
import { hasHeaderAccess, type HeadersInput } from '../../src/binding'
import { fieldLines } from '../../src/binding/fields'
import { UnsupportedMediaTypeError } from '../../src/errors'

/** Whether a `Signature-Input` field has a member labelled `ba` (the header form's). */
function hasBaSignature(headers: HeadersInput): boolean {
  for (const line of fieldLines(headers, 'signature-input')) {
    if (/(?:^|,)\s*ba\s*=/.test(line)) return true
  }
  return false
}

/**
 * Whether a route takes this request in the header form: always with `binding: 'headers'`, never
 * with `'body'`, and with `'any'` (the default) when the request carries the header form — an
 * `Authorization: BetterAuth …` field or a `Signature-Input` with the `ba` label.
 */
export function usesHeaderForm(
  headers: HeadersInput,
  binding: 'headers' | 'body' | 'any' | undefined
): boolean {
  if (binding === 'headers') return true
  if (binding === 'body') return false
  return hasHeaderAccess(headers) || hasBaSignature(headers)
}

/** The headers a browser must be allowed to send and read for the header form (CORS). */
export const HEADER_FORM_REQUEST_HEADERS = [
  'authorization',
  'content-digest',
  'signature',
  'signature-input',
]
export const HEADER_FORM_EXPOSED_HEADERS = ['Signature', 'Signature-Input', 'Content-Digest']

/**
 * Refuses a header-form request whose body has a content coding (415 BA606): `Content-Digest` is
 * over the bytes as sent, and body parsers (express.json, Nest's) decode them before keeping the
 * raw bytes, so no adapter could hash what was sent and give the handler the decoded data alike
 * (docs/http-binding.md §2.7). `identity` is no coding.
 */
export function refuseContentCoding(coding: string | null | undefined, bodyLength: number): void {
  if (bodyLength === 0 || coding === undefined || coding === null) return
  const value = coding.trim().toLowerCase()
  if (value === '' || value === 'identity') return
  throw new UnsupportedMediaTypeError(
    {},
    'a header-form request body must be sent without Content-Encoding (its digest is over the bytes as sent)'
  )
}
