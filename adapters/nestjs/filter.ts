/**
 * A global exception filter that answers every failure with the protocol's error body: Nest's own
 * 404 for an unknown route, a body parser's 400/413/415 (on both platforms), any HttpException,
 * and unexpected errors (500 BA600, logged by the core, no detail sent). The protocol's own
 * exceptions (BetterAuth*Exception) keep their body.
 *
 *   app.useGlobalFilters(new BetterAuthExceptionFilter(app.get(HttpAdapterHost), app.get(BetterAuthServer)))
 */
import { Catch, HttpException, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common'
import type { HttpAdapterHost } from '@nestjs/core'
import type { BetterAuthServer, HandlerResult } from '../../src/server/core'
import { jsonHeaders } from '../../src/server/http'
import { plainErrorResult } from '../shared/core'
import { UnsupportedMediaTypeError } from '../../src/errors'
import {
  decodingRefusal,
  hasCodedBody,
  protocolErrorForStatus,
  type BodyFields,
} from '../shared/http'

/** Whether an exception's response is already a protocol error body. */
function isProtocolBody(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false
  const error = (value as { error?: unknown }).error
  return (
    Object.keys(value).length === 1 &&
    typeof error === 'object' &&
    error !== null &&
    typeof (error as { code?: unknown }).code === 'string'
  )
}

/**
 * A body parser's refusal of a body sent with a content coding, answered 415 BA606 as the header
 * form's first check answers a coded body: on Express, body-parser's failure to decode it
 * (node:zlib's error); on Fastify, which decodes no coding, its content parser's 400, which Nest
 * hands on as an HttpException before any body was parsed (an application's own 400 comes after
 * its body was).
 */
function codedBodyRefused(
  exception: unknown,
  request: { headers?: BodyFields; body?: unknown } | undefined,
  platform: string
): UnsupportedMediaTypeError | undefined {
  if (!(exception instanceof HttpException)) return decodingRefusal(exception, request?.headers)
  const parserRefusal =
    platform === 'fastify' &&
    exception.getStatus() === 400 &&
    request?.body === undefined &&
    !isProtocolBody(exception.getResponse()) &&
    hasCodedBody(request?.headers)
  if (!parserRefusal) return undefined
  return new UnsupportedMediaTypeError(
    {},
    'a body with a Content-Encoding cannot be read here; send it without one'
  )
}

@Catch()
export class BetterAuthExceptionFilter implements ExceptionFilter {
  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly core?: BetterAuthServer<unknown>
  ) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp()
    const adapter = this.adapterHost.httpAdapter
    const response = http.getResponse<unknown>()
    let result: HandlerResult
    const request = http.getRequest<{ headers?: BodyFields; body?: unknown } | undefined>()
    const refused = codedBodyRefused(exception, request, adapter.getType())
    if (exception instanceof HttpException && isProtocolBody(exception.getResponse())) {
      result = {
        status: exception.getStatus(),
        headers: jsonHeaders(),
        body: JSON.stringify(exception.getResponse()),
      }
    } else if (refused !== undefined) {
      result = this.core?.errorResult(refused) ?? plainErrorResult(refused)
    } else {
      const status = exception instanceof HttpException ? exception.getStatus() : exception
      const mapped = protocolErrorForStatus(
        exception instanceof HttpException ? { status, cause: exception } : exception
      )
      result = this.core?.errorResult(mapped) ?? plainErrorResult(mapped)
    }
    for (const [name, value] of Object.entries(result.headers)) {
      adapter.setHeader(response, name, value)
    }
    adapter.reply(response, result.body, result.status)
  }
}
