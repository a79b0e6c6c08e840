/** Nest exceptions carrying the protocol's error codes and wire bodies. */
import { ForbiddenException, HttpException, UnauthorizedException } from '@nestjs/common'
import type { ErrorCode } from '../../src/errors'
import type { UnauthorizedError } from '../shared/access'

type WireBody = { error: { code: string; message: string; context?: unknown } }

/** 401: the access request is missing or does not verify. The body is the protocol error body. */
export class BetterAuthUnauthorizedException extends UnauthorizedException {
  constructor(
    body: WireBody,
    readonly code: ErrorCode,
    cause: unknown
  ) {
    super(body, { cause })
  }
}

/** 403: `authorize` refused a verified caller (BA306). */
export class BetterAuthForbiddenException extends ForbiddenException {
  constructor(
    body: WireBody,
    readonly code: ErrorCode,
    cause: unknown
  ) {
    super(body, { cause })
  }
}

/** Any other status of an access check (400 malformed, 413, 422 stale/future, 429, 503 …). */
export class BetterAuthHttpException extends HttpException {
  constructor(
    body: WireBody,
    status: number,
    readonly code: ErrorCode,
    cause: unknown
  ) {
    super(body, status, { cause })
  }
}

/** The Nest exception for a failed access check. */
export function toHttpException(failure: UnauthorizedError): HttpException {
  const body = JSON.parse(failure.body) as WireBody
  if (failure.status === 401)
    return new BetterAuthUnauthorizedException(body, failure.code, failure.cause)
  if (failure.status === 403)
    return new BetterAuthForbiddenException(body, failure.code, failure.cause)
  return new BetterAuthHttpException(body, failure.status, failure.code, failure.cause)
}
