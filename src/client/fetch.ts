/**
 * `client.fetch(input, init)`: any request in the header form of the access request (HTTP
 * Message Signatures, docs/http-binding.md), its reply's signature verified with the pinned
 * response key. The body of `BetterAuthClient.fetch`.
 */
import { signHeaderRequest, verifyResponse } from '../binding'
import type { Noncer, SigningKey, Verifier } from '../crypto/types'

/** What `headerFetch` needs of the client. */
export interface HeaderFetchSession {
  /** The fetch that sends the request. @default globalThis.fetch */
  fetch?: typeof fetch
  noncer: Noncer
  verifier: Verifier
  now(): number
  /** The pinned response key (`1AAI…`). */
  responseKey(): Promise<string>
  /** The token and the access key it names. */
  tokenAndKey(): Promise<[string, SigningKey]>
  /** Refreshes before expiry, as `accessRequest` does (nothing when refreshing is off). */
  beforeRequest(): Promise<void>
  /** Refreshes after the server said the token expired (BA401); false when refreshing is off. */
  afterExpired(): Promise<boolean>
}

const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304])

/** Whether an unsigned error reply says the token expired. */
async function saysExpired(response: Response): Promise<boolean> {
  if (response.status !== 401) return false
  try {
    const body = (await response.clone().json()) as { error?: { code?: unknown } }
    return body.error?.code === 'BA401'
  } catch {
    return false
  }
}

/**
 * Sends `input`/`init` signed in the header form and returns the reply as a standard `Response`
 * (its body already read), bypassing the HTTP cache (`cache: 'no-store'`). A reply below 400
 * must carry a valid signature by the pinned response key, bound to this request: otherwise
 * BA204 (unsigned or malformed) or BA201 (wrong signature, digest or key) is thrown. Replies of
 * 400 or more are returned as they are (unauthenticated), except that an expired token (401
 * BA401) is refreshed and the request sent once more.
 */
export async function headerFetch(
  input: RequestInfo | URL,
  init: RequestInit | undefined,
  session: HeaderFetchSession
): Promise<Response> {
  const request = new Request(input, init)
  const bytes = request.body === null ? undefined : new Uint8Array(await request.arrayBuffer())
  const body = bytes !== undefined && bytes.length > 0 ? bytes : undefined
  const send = async (): Promise<Response> => {
    const [token, signer] = await session.tokenAndKey()
    const headers = new Headers(request.headers)
    const signed = await signHeaderRequest({
      method: request.method,
      url: request.url,
      headers,
      ...(body === undefined ? {} : { body }),
      token,
      signer,
      nonce: session.noncer.generate128(),
      timestamp: session.now(),
    })
    for (const [name, value] of Object.entries(signed.headers)) headers.set(name, value)
    const fetchImpl = session.fetch ?? globalThis.fetch
    const response = await fetchImpl(request.url, {
      method: signed.method,
      headers,
      ...(body === undefined ? {} : { body: body as Uint8Array<ArrayBuffer> }),
      redirect: request.redirect,
      signal: request.signal,
      credentials: request.credentials,
      // Never from or into the HTTP cache, whatever `init.cache` says: a signed reply answers
      // one request (it covers that request's signature), so a stored reply cannot verify for a
      // later one, and a revalidated one cannot either (a browser shows the stored 200 with the
      // headers of a 304 that was signed as a 304). A server may send an ETag (Express does, but
      // for a signed res.json), and a browser's second GET of that URL would then revalidate.
      cache: 'no-store',
      mode: request.mode,
      referrerPolicy: request.referrerPolicy,
    })
    const replyBytes = new Uint8Array(await response.arrayBuffer())
    await verifyResponse(
      {
        status: response.status,
        headers: response.headers,
        body: replyBytes,
        requestSignature: signed.signature,
      },
      session.verifier,
      await session.responseKey()
    )
    return new Response(NULL_BODY_STATUS.has(response.status) ? null : replyBytes, {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    })
  }
  await session.beforeRequest()
  const response = await send()
  if ((await saysExpired(response)) && (await session.afterExpired())) return send()
  return response
}
