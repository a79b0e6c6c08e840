/** Signs the replies of protected routes into response envelopes echoing the request nonce. */
import { JSON_CONTENT_TYPE } from '../../src/server/http'
import {
  Inject,
  Injectable,
  StreamableFile,
  type CallHandler,
  type ExecutionContext,
  type NestInterceptor,
} from '@nestjs/common'
import { mergeMap, type Observable } from 'rxjs'
import { BetterAuthServer } from '../../src/server/core'
import { principals } from '../shared/access'
import { responseSent, setResponseHeader, type PlatformResponse } from './http'
import { arrangeSignedReply, takePendingReply } from './reply'

/**
 * Signs what a handler returns when its request carries a verified principal: the reply becomes
 * `{"payload":{"access":{"nonce","serverIdentity"},"response":<value>},"signature"}`. Replies with
 * a status of 400 or more, `StreamableFile`s and responses the handler sent itself (`@Res()`) are
 * left alone; requests without a principal are not touched. A request in the header form gets
 * its reply as the handler wrote it (any status, any content type, `StreamableFile` or `@Res()`
 * included) with the response-signature headers, below 400.
 *
 * `@BetterAuthAccess()` and the global guard need no interceptor: the guard arranges the signed
 * reply itself, and Nest's HTTP adapter signs it as it sends it. With this interceptor on a route
 * too, a reply in the classic form is signed here instead, where the interceptor sits among the
 * route's others.
 */
@Injectable()
export class BetterAuthInterceptor implements NestInterceptor {
  constructor(@Inject(BetterAuthServer) private readonly auth: BetterAuthServer<unknown>) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (context.getType() !== 'http') return next.handle()
    const request = context.switchToHttp().getRequest<object>()
    const principal = principals.get(request)
    if (principal === undefined) return next.handle()
    // Once per request (the guard may have arranged it, or this interceptor be registered both
    // globally and on the route): the header form is signed as it is written.
    arrangeSignedReply(this.auth, context, principal)
    const response = context.switchToHttp().getResponse<PlatformResponse>()
    if (!takePendingReply(response)) return next.handle()
    return next.handle().pipe(
      mergeMap(async (data: unknown) => {
        if (
          data instanceof StreamableFile ||
          responseSent(response) ||
          (response.statusCode ?? 200) >= 400
        ) {
          return data
        }
        const text = await this.auth.respond(principal.nonce, data)
        setResponseHeader(response, 'content-type', JSON_CONTENT_TYPE)
        return text
      })
    )
  }
}
