/**
 * Nest's Express platform served like `expressServerOptions(app)` (adapters/shared/server-classes.ts):
 *
 *   const app = await NestFactory.create(AppModule, expressServerAdapter(new ExpressAdapter()), {
 *     rawBody: true,
 *   })
 *
 * Nest makes its own server (`ExpressAdapter.initHttpServer`: `http.createServer(app)`, or
 * `https.createServer(httpsOptions, app)`), and offers no way to pass that server options. This
 * replaces the method on the given adapter with one that does what Nest's does, with the request
 * and response classes added to the options. Nothing of `@nestjs/platform-express` is imported:
 * the caller brings its own adapter. When the adapter is not the one this was written against
 * (no `trackOpenConnections`, which Nest's `forceCloseConnections` needs), it is left as it is.
 */
import { createServer, type Server } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { NestApplicationOptions } from '@nestjs/common'
import { expressServerOptions, type ExpressPrototypes } from '../shared/server-classes'

/** What `expressServerAdapter` uses of Nest's `ExpressAdapter` (Nest 10 to 12). */
export interface NestExpressAdapter {
  getInstance(): unknown
  initHttpServer(options: NestApplicationOptions): void
}

/** The members of Nest's ExpressAdapter that its TypeScript types keep protected or private. */
interface AdapterInternals {
  httpServer: Server
  trackOpenConnections?: () => void
}

/**
 * Makes `adapter` (a new `ExpressAdapter` of `@nestjs/platform-express`, with or without an
 * Express app of your own) serve its app on a server whose requests and responses are built with
 * the app's prototypes: Express then swaps no prototype, which costs every request V8's inline
 * caches and the young generation's collections (docs/performance.md, "Deployment advice").
 * `httpsOptions` and `forceCloseConnections` keep their meaning. Returns the same adapter.
 */
export function expressServerAdapter<Adapter extends NestExpressAdapter>(
  adapter: Adapter
): Adapter {
  const internals = adapter as unknown as AdapterInternals
  if (typeof internals.trackOpenConnections !== 'function') return adapter
  adapter.initHttpServer = function initHttpServer(
    this: Adapter & AdapterInternals,
    options: NestApplicationOptions
  ): void {
    const app = this.getInstance() as ExpressPrototypes & Parameters<typeof createServer>[1]
    const classes = expressServerOptions(app)
    const tls = options?.httpsOptions
    this.httpServer =
      tls === undefined || tls === null
        ? createServer(classes, app)
        : createHttpsServer({ ...tls, ...classes }, app)
    if (options?.forceCloseConnections === true) this.trackOpenConnections?.()
  }
  return adapter
}
