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
import { protocolErrorForStatus } from '../shared/http'

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
    if (exception instanceof HttpException && isProtocolBody(exception.getResponse())) {
      result = {
        status: exception.getStatus(),
        headers: jsonHeaders(),
        body: JSON.stringify(exception.getResponse()),
      }
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
