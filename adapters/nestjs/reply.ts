/**
 * The signed reply of a protected route, arranged by the guard: no interceptor and no RxJS
 * pipeline per request. In the classic form the value the route returns is signed where Nest
 * sends it, in its HTTP adapter's `reply` (the same method on Express and on Fastify, after every
 * interceptor of the app); in the header form the node:http response is signed as it is written.
 */
import { ServerResponse } from 'node:http'
import { StreamableFile, type ExecutionContext } from '@nestjs/common'
import type { AccessPrincipal } from '../../src/server/core'
import { JSON_CONTENT_TYPE } from '../../src/server/http'
import type { AdapterCore } from '../shared/core'
import { endSignedJson, requestPath, signNodeReplies, writeResult } from '../shared/node'
import { nodeResponseOf, responseSent, setResponseHeader, type PlatformResponse } from './http'

type Signer = Pick<AdapterCore, 'respond' | 'signHeaderResponse' | 'errorResult'>

/** What signs the reply of a response the guard marked: the core and the request nonce. */
interface PendingReply {
  auth: Signer
  nonce: string
}

/** Platform responses (Express's response, Fastify's reply) whose reply is signed when sent. */
const pending = new WeakMap<object, PendingReply>()
/** Requests whose signed reply is arranged already (by the guard, or by the interceptor). */
const arranged = new WeakSet<object>()
/** Adapters whose `reply` signs. */
const signingAdapters = new WeakSet<object>()

/** What Nest's HTTP adapters (Express and Fastify) send a route's return value with. */
export interface ReplyingAdapter {
  reply(response: unknown, body: unknown, statusCode?: number): unknown
}

/**
 * Makes `adapter.reply` sign the value a protected route returns (once per adapter; the module
 * does it when the application starts). Responses the guard did not mark go out as before, and
 * so do replies with a status of 400 or more (exception filters), `StreamableFile`s and responses
 * the handler sent itself.
 */
export function signAdapterReplies(adapter: ReplyingAdapter): void {
  if (signingAdapters.has(adapter)) return
  signingAdapters.add(adapter)
  const reply = adapter.reply
  adapter.reply = function signedReply(
    this: ReplyingAdapter,
    response: PlatformResponse,
    body: unknown,
    statusCode?: number
  ): unknown {
    const signer = pending.get(response)
    if (signer === undefined) return reply.call(this, response, body, statusCode)
    pending.delete(response)
    if (
      body instanceof StreamableFile ||
      (statusCode ?? response.statusCode ?? 200) >= 400 ||
      responseSent(response)
    ) {
      return reply.call(this, response, body, statusCode)
    }
    // Nest awaits what `reply` returns: a signing failure goes to the exception filters.
    return signer.auth.respond(signer.nonce, body).then(text => {
      if (response instanceof ServerResponse) {
        // The Express platform: what its `reply` does with a text (the status, then `res.send`),
        // without what `res.send` adds for nothing to a signed envelope (see endSignedJson).
        if (statusCode !== undefined) response.statusCode = statusCode
        endSignedJson(response, text)
        return undefined
      }
      setResponseHeader(response, 'content-type', JSON_CONTENT_TYPE)
      return reply.call(this, response, text, statusCode)
    })
  }
}

/**
 * Arranges that the reply to a verified request is signed, once per request: in the header form
 * the node:http response (Express's, or the one under Fastify's reply) is signed as it is written,
 * whatever the platform serialized; otherwise the value the route returns is signed when Nest
 * replies with it (see `signAdapterReplies`).
 */
export function arrangeSignedReply(
  auth: Signer,
  context: ExecutionContext,
  principal: AccessPrincipal<unknown, unknown>
): void {
  const http = context.switchToHttp()
  const request = http.getRequest<object>()
  if (arranged.has(request)) return
  arranged.add(request)
  const response = http.getResponse<PlatformResponse>()
  if (principal.requestSignature === undefined) {
    pending.set(response, { auth, nonce: principal.nonce })
    return
  }
  const raw = nodeResponseOf(response)
  signNodeReplies(auth, raw, principal.requestSignature, error => {
    const path = requestPath(request as { url?: string })
    writeResult(raw, auth.errorResult(error, { path }))
  })
}

/** Whether the signed reply of this request is arranged already. */
export const replyArranged = (request: object): boolean => arranged.has(request)

/** Takes the reply of `response` back from the adapter (the caller signs it). */
export function takePendingReply(response: object): boolean {
  return pending.delete(response)
}
