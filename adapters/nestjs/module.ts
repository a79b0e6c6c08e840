/** BetterAuthModule: the core as a provider, the protocol endpoints, optional global guard. */
import {
  ConfigurableModuleBuilder,
  Inject,
  Module,
  RequestMethod,
  type ConfigurableModuleAsyncOptions,
  type DynamicModule,
  type MiddlewareConsumer,
  type NestModule,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common'
import { APP_GUARD, HttpAdapterHost } from '@nestjs/core'
import type { ServerResponse } from 'node:http'
import { BetterAuthServer, createBetterAuth } from '../../src/server/core'
import { jsonHeaders } from '../../src/server/http'
import { endpointMiddleware, writeResult } from '../shared/node'
import { ProtocolRoutes } from '../shared/routes'
import { BetterAuthGlobalGuard } from './guard'
import { RAW_BODY_ADVICE } from './http'
import {
  BETTER_AUTH_OPTIONS,
  type BetterAuthModuleExtras,
  type BetterAuthModuleOptions,
} from './options'
import { signAdapterReplies, type ReplyingAdapter } from './reply'

const { ConfigurableModuleClass } = new ConfigurableModuleBuilder<BetterAuthModuleOptions>({
  moduleName: 'BetterAuth',
  optionsInjectionToken: BETTER_AUTH_OPTIONS,
})
  .setClassMethodName('forRoot')
  .setExtras<BetterAuthModuleExtras>(
    { isGlobal: true, globalGuard: false },
    (definition, extras) => ({
      ...definition,
      global: extras.isGlobal,
      providers: [
        ...(definition.providers ?? []),
        ...(extras.globalGuard === true
          ? [{ provide: APP_GUARD, useClass: BetterAuthGlobalGuard }]
          : []),
      ],
    })
  )
  .build()

/** What `forRoot` takes: the module options plus `isGlobal` and `globalGuard`. */
export type BetterAuthModuleForRoot<Attributes = unknown> = BetterAuthModuleOptions<Attributes> &
  BetterAuthModuleExtras
/** What `forRootAsync` takes: `imports`, `inject`, `useFactory | useClass | useExisting`, extras. */
export type BetterAuthModuleForRootAsync<Attributes = unknown> = ConfigurableModuleAsyncOptions<
  BetterAuthModuleOptions<Attributes>
> &
  BetterAuthModuleExtras

/**
 * `BetterAuthModule.forRoot(options)` / `forRootAsync({ imports, inject, useFactory })`: provides
 * the core (inject `BetterAuthServer`) and the options (`BETTER_AUTH_OPTIONS`), and mounts the
 * protocol endpoints as middleware under `prefix`. Create the app with `{ rawBody: true }` so
 * signatures are checked over the exact bytes received.
 */
@Module({
  providers: [
    {
      provide: BetterAuthServer,
      inject: [BETTER_AUTH_OPTIONS],
      useFactory: (options: BetterAuthModuleOptions) => options.auth ?? createBetterAuth(options),
    },
  ],
  exports: [BetterAuthServer, BETTER_AUTH_OPTIONS],
})
export class BetterAuthModule
  extends ConfigurableModuleClass
  implements NestModule, OnModuleInit, OnApplicationShutdown
{
  constructor(
    @Inject(BetterAuthServer) private readonly auth: BetterAuthServer<unknown>,
    @Inject(BETTER_AUTH_OPTIONS) private readonly options: BetterAuthModuleOptions,
    @Inject(HttpAdapterHost) private readonly adapterHost: HttpAdapterHost
  ) {
    super()
  }

  /**
   * The module, from options; `forRoot<Attributes>(…)` types the attributes tokens carry
   * (`attributes`, `authorize`, `auth`).
   */
  static override forRoot<Attributes = unknown>(
    options: BetterAuthModuleForRoot<Attributes>
  ): DynamicModule {
    return super.forRoot(options as BetterAuthModuleForRoot)
  }

  /** The module, from options a provider makes (`useFactory`, `useClass`, `useExisting`). */
  static override forRootAsync<Attributes = unknown>(
    options: BetterAuthModuleForRootAsync<Attributes>
  ): DynamicModule {
    return super.forRootAsync(options as BetterAuthModuleForRootAsync)
  }

  configure(consumer: MiddlewareConsumer): void {
    if (this.options.endpoints === false) return
    const protocol = new ProtocolRoutes(this.auth, this.options)
    for (const route of protocol.routes) {
      const handler = endpointMiddleware(this.auth, route.endpoint, { advice: RAW_BODY_ADVICE })
      for (const method of route.methods) {
        consumer.apply(handler).forRoutes({
          path: route.path,
          method: method === 'GET' ? RequestMethod.GET : RequestMethod.POST,
        })
      }
    }
    const openapi = protocol.openapi
    if (openapi !== undefined) {
      const document = protocol.openapiDocument()
      consumer
        .apply((_req: unknown, res: ServerResponse) => {
          writeResult(res, { status: 200, headers: jsonHeaders(), body: document })
        })
        .forRoutes({ path: openapi, method: RequestMethod.GET })
    }
  }

  /**
   * Makes the HTTP adapter sign the replies the guard arranged (see ./reply). The adapter is
   * known here, not when the module is built (a testing module gets it when the application is
   * created); an application context without HTTP has none.
   */
  onModuleInit(): void {
    const adapter = this.adapterHost.httpAdapter as ReplyingAdapter | undefined
    if (adapter !== undefined) signAdapterReplies(adapter)
  }

  /** Closes the store of a core the module created (not of one passed in as `auth`). */
  async onApplicationShutdown(): Promise<void> {
    if (this.options.auth === undefined) await this.auth.close()
  }
}
