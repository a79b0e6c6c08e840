/** Signed replies: application replies echoing a request nonce, and the signed access-key list. */
import { signPlaced, type EcdsaScheduler } from '../crypto/node'
import type { Noncer } from '../crypto/types'
import { accessKeysSigningInput, parseEnvelope, type ParseLimits } from '../messages/envelope'
import { readAccessKeysRequest } from '../messages/requests'
import type { KeyLoader } from './key-loader'

export class ResponseSigner {
  constructor(
    private readonly keys: KeyLoader,
    private readonly noncer: Noncer,
    private readonly limits: Readonly<ParseLimits>,
    private readonly scheduler: EcdsaScheduler
  ) {}

  /** A signed response envelope echoing `nonce`, with `response` as its application data. */
  async respond(nonce: string, response: unknown): Promise<string> {
    const keys = this.keys.loaded ?? (await this.keys.current())
    const json = JSON.stringify(response ?? {}) as string | undefined
    if (json === undefined) throw new TypeError('the response data has no JSON form')
    const payload =
      `{"access":{"nonce":${JSON.stringify(nonce)},"serverIdentity":"${keys.responseIdentity}"},` +
      `"response":${json}}`
    const signature = await signPlaced(keys.responseKey, Buffer.from(payload), this.scheduler)
    return `{"payload":${payload},"signature":"${signature}"}`
  }

  /** The access verification keys, signed in their own context (see `BetterAuthServer.accessKeys`). */
  async accessKeys(body: string | Uint8Array = ''): Promise<string> {
    const size = typeof body === 'string' ? body.length : body.byteLength
    const nonce =
      size === 0
        ? this.noncer.generate128()
        : readAccessKeysRequest(parseEnvelope(body, this.limits))
    const keys = this.keys.loaded ?? (await this.keys.current())
    // Signed in its own context (see ACCESS_KEYS_SIGNING_CONTEXT), never as an application reply:
    // a route that echoes caller data as `{"accessKeys":[…]}` must not yield a usable key list.
    const payload =
      `{"access":{"nonce":${JSON.stringify(nonce)},"serverIdentity":"${keys.responseIdentity}"},` +
      `"response":${JSON.stringify({ accessKeys: keys.publishedAccessKeys() })}}`
    const signature = await signPlaced(
      keys.responseKey,
      accessKeysSigningInput(payload),
      this.scheduler
    )
    return `{"payload":${payload},"signature":"${signature}"}`
  }
}
