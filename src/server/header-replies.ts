/**
 * Signed replies to header-form requests on the server: the headers `signResponse`
 * (src/binding/response.ts) makes, built for the hot path. The signature parameters are
 * serialized once per second (they change with `created` only), component identifiers are
 * constants, and byte sequences and the body digest use node:crypto and Buffer's native base64
 * rather than the browser-safe code the binding uses for the client. test/binding checks that
 * both give the same fields.
 */
import {
  LABEL,
  REQUEST_SIGNATURE_COMPONENT,
  RESPONSE_TAG,
  componentIdentifier,
  serializeSignatureParams,
} from '../binding/base'
import { fieldLines, type HeadersInput } from '../binding/fields'
import { emitParams } from '../binding/signature'
import { base64Of, sha256Base64, signBase64Placed, type EcdsaScheduler } from '../crypto/node'
import type { SigningKey } from '../crypto/types'

/** A reply to sign (see `BetterAuthServer.signHeaderResponse`). */
export interface HeaderReply {
  status: number
  headers?: HeadersInput
  body?: Uint8Array
  requestSignature: Uint8Array
}

const STATUS = componentIdentifier('@status') + ': '
const DIGEST = componentIdentifier('content-digest') + ': '
const BOUND = componentIdentifier(REQUEST_SIGNATURE_COMPONENT) + ': '
const WITH_BODY = ['@status', 'content-digest', REQUEST_SIGNATURE_COMPONENT]
const WITHOUT_BODY = ['@status', REQUEST_SIGNATURE_COMPONENT]
const OWN_FIELDS = ['signature-input', 'signature', 'content-digest']

/**
 * A flat copy of ASCII `text`. The parameters are serialized piece by piece, and V8 keeps such a
 * string as a tree of its ~30 pieces: used as it was, every reply walked the tree again, to copy
 * its signature base into a Buffer and when node checked the `Signature-Input` value (~1.3 µs a
 * reply by `perf`, `v8::internal::String::WriteToFlat`). Made once a second, flat.
 */
const flat = (text: string): string => Buffer.from(text, 'latin1').toString('latin1')

/** `:base64:` of bytes, as a structured-field byte sequence. */
const byteSequence = (bytes: Uint8Array): string => ':' + base64Of(bytes) + ':'

export class HeaderReplySigner {
  constructor(private readonly scheduler: EcdsaScheduler) {}

  /**
   * `@signature-params` of the second `created` names, with and without a body, and the
   * `Signature-Input` values that carry them; all flat (see `flat`).
   */
  private created = -1
  private keyid = ''
  private withBody = ''
  private withoutBody = ''
  private inputWithBody = ''
  private inputWithoutBody = ''

  /** `@signature-params` for `created` (seconds) and `keyid`, with or without a body digest. */
  paramsText(created: number, keyid: string, hasBody: boolean): string {
    if (created !== this.created || keyid !== this.keyid) {
      const params = emitParams({ created, keyid, tag: RESPONSE_TAG })
      this.withBody = flat(serializeSignatureParams(WITH_BODY, params))
      this.withoutBody = flat(serializeSignatureParams(WITHOUT_BODY, params))
      this.inputWithBody = flat(LABEL + '=' + this.withBody)
      this.inputWithoutBody = flat(LABEL + '=' + this.withoutBody)
      this.created = created
      this.keyid = keyid
    }
    return hasBody ? this.withBody : this.withoutBody
  }

  /**
   * The headers that sign `reply` with `key` (whose public key is `keyid`) at `now` (ms):
   * `content-digest` with a body, `signature-input`, `signature`. Throws TypeError as
   * `signResponse` does (a field it adds is already set, a status that is not three digits).
   */
  async sign(
    reply: HeaderReply,
    key: SigningKey,
    keyid: string,
    now: number
  ): Promise<Record<string, string>> {
    if (reply.headers !== undefined) {
      for (const name of OWN_FIELDS) {
        if (fieldLines(reply.headers, name).length > 0)
          throw new TypeError(`${name} is already set`)
      }
    }
    const status = reply.status
    if (!Number.isInteger(status) || status < 100 || status > 999) {
      throw new TypeError('status must be a three-digit integer')
    }
    const body = reply.body
    const hasBody = body !== undefined && body.length > 0
    const paramsText = this.paramsText(Math.floor(now / 1000), keyid, hasBody)
    // Read now: another reply may move the kept second on while this one is signed.
    const input = hasBody ? this.inputWithBody : this.inputWithoutBody
    const headers: Record<string, string> = {}
    let base = STATUS + String(status) + '\n'
    if (hasBody) {
      const digest = 'sha-256=:' + sha256Base64(body) + ':'
      headers['content-digest'] = digest
      base += DIGEST + digest + '\n'
    }
    base += BOUND + byteSequence(reply.requestSignature) + '\n"@signature-params": ' + paramsText
    const message = Buffer.from(base, 'latin1') // ASCII: numbers, base64, the parameters
    const signature = await signBase64Placed(key, message, this.scheduler)
    if (signature === undefined) {
      throw new TypeError('the signing key did not return a P-256 signature')
    }
    headers['signature-input'] = input
    headers['signature'] = LABEL + '=:' + signature + ':'
    return headers
  }
}
