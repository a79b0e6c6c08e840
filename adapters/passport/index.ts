/**
 * Passport strategy: `better-auth-protocol/passport` (needs `passport` and `passport-strategy`).
 *
 *   passport.use(new BetterAuthStrategy(auth))    // a core, or the Express adapter's `auth`
 *   app.post('/notes', passport.authenticate('better-auth', { session: false }), handler)
 *
 * The strategy runs the same access step as the Express adapter's `requireAccess()` (raw body,
 * token, signature, timestamp, nonce, `authorize`): on success `req.user` is the principal (and
 * `req.betterAuth`, `req.body` the verified request data), and the reply the handler sends with
 * `res.json(data)` is signed into a response envelope echoing the request nonce (`signReplies:
 * false` to sign yourself with `auth.respond(req.user.nonce, data)`). A refused request fails
 * with the protocol's status and `WWW-Authenticate` challenge; when Passport answers it itself
 * (no `failureRedirect`, no callback, no `failWithError`), the body is the protocol error body.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { STATUS_CODES } from 'node:http'
import type { NextFunction, Request, Response } from 'express'
import { Strategy } from 'passport-strategy'
import type { AccessPrincipal, RequestContext } from '../../src/server/core'
import { accessFailure, type AccessOptions } from '../shared/access'
import type { AdapterCore } from '../shared/core'
import { nodeAccess, requestIp, requestPath, signNodeReplies } from '../shared/node'
import { expressAccessTarget, signReplies } from '../express'

const ADVICE =
  'Mount passport.authenticate(…) before express.json(), or use ' +
  'express.json({ verify: keepRawBody }).'

/** Options of {@link BetterAuthStrategy}. */
export interface BetterAuthStrategyOptions<
  Attributes = unknown,
  Body = unknown,
> extends AccessOptions<Attributes, Body, Request> {
  /** The strategy's name in `passport.use` / `passport.authenticate`. @default 'better-auth' */
  name?: string
  /** Where the principal is also put on the request. @default 'betterAuth' */
  requestProperty?: string
  /** Replace `req.body` with the verified request data. @default true */
  replaceBody?: boolean
  /** Sign what the handler sends with `res.json(data)` / `res.send(object)`. @default true */
  signReplies?: boolean
  /** The client IP given to the core. @default `req.ip` */
  clientIp?: (req: Request) => string | undefined
}

/** What `req.user` is after the strategy succeeded. */
export type BetterAuthUser<Attributes = unknown, Body = unknown> = AccessPrincipal<Attributes, Body>

/** A core (`createBetterAuth`), or an adapter object holding one (`betterAuth()` of `/express`). */
export type StrategyCore<Attributes> = AdapterCore<Attributes> | { core: AdapterCore<Attributes> }

const isHolder = <Attributes>(
  value: StrategyCore<Attributes>
): value is { core: AdapterCore<Attributes> } =>
  typeof (value as { verifyAccess?: unknown }).verifyAccess !== 'function' &&
  typeof (value as { core?: unknown }).core === 'object'

/**
 * When Passport answers a failure itself, it ends the response with the status text
 * (`Unauthorized`): that answer gets the protocol's error body and headers instead. Any other
 * answer (a redirect, the application's own) is left alone.
 */
function answerWithProtocolBody(
  res: ServerResponse,
  result: { status: number; headers: Record<string, string>; body: string }
): void {
  const end = res.end
  const text = STATUS_CODES[result.status]
  res.end = function protocolEnd(this: ServerResponse, ...args: unknown[]) {
    res.end = end
    if (args[0] === text && this.statusCode === result.status && !this.headersSent) {
      for (const [name, value] of Object.entries(result.headers)) {
        if (name !== 'www-authenticate') this.setHeader(name, value)
      }
      return (end as (body: string) => ServerResponse).call(this, result.body)
    }
    return (end as (...rest: unknown[]) => ServerResponse).apply(this, args)
  } as ServerResponse['end']
}

/** Verifies Better Auth access requests for Passport. */
export class BetterAuthStrategy<Attributes = unknown, Body = unknown> extends Strategy {
  readonly name: string
  private readonly core: AdapterCore<Attributes>

  constructor(
    auth: StrategyCore<Attributes>,
    private readonly options: BetterAuthStrategyOptions<Attributes, Body> = {}
  ) {
    super()
    this.core = isHolder(auth) ? auth.core : auth
    this.name = options.name ?? 'better-auth'
  }

  override authenticate(req: Request): void {
    const options = this.options
    const res = req.res as Response | undefined
    const context: RequestContext = {
      ip: (options.clientIp ?? requestIp)(req as Request & IncomingMessage),
      path: requestPath(req),
    }
    const r = req as Request & Record<string, unknown>
    nodeAccess<Attributes, Body, Request>(
      this.core,
      expressAccessTarget(req, context),
      options,
      ADVICE
    ).then(
      ({ principal, earlier, source }) => {
        if (source === 'stream') r._body = true // body-parser 1.x (Express 4) skips it then
        if (principal === undefined) {
          this.pass() // optional access, no credentials: on to the next handler, no user
          return
        }
        if (!earlier && options.signReplies !== false && res !== undefined) {
          const next = (req.next ??
            ((error: unknown) => void res.emit('error', error))) as NextFunction
          // The header form signs the reply in headers; the body form, into an envelope.
          if (principal.requestSignature !== undefined) {
            signNodeReplies(this.core, res, principal.requestSignature, next)
          } else {
            signReplies(this.core, res, principal.nonce, next)
          }
        }
        this.success(principal)
      },
      (error: unknown) => {
        // Errors that are not the protocol's (thrown by `authorize`) go to Passport as errors.
        const outcome = accessFailure(this.core, error, {
          failWithError: true,
          context,
          setHeader: (name, value) => res?.setHeader(name, value),
        })
        if (outcome.kind === 'pass') {
          this.error(outcome.error as Error)
          return
        }
        if (res !== undefined) answerWithProtocolBody(res, outcome.result)
        const challenge = outcome.error.headers['www-authenticate']
        if (challenge !== undefined) this.fail(challenge, outcome.result.status)
        else this.fail(outcome.result.status)
      }
    )
  }
}
