/** Which form of the access request a request carries: the header form or the classic body. */
import { hasHeaderAccess, type HeadersInput } from '../../src/binding'
import { fieldLines } from '../../src/binding/fields'

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
