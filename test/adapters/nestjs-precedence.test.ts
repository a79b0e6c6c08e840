/**
 * NestJS: a handler's decorators override its controller's, for every decorator and option, with
 * and without the global guard, on both platforms, over real HTTP. Each combination of a
 * controller-level and a handler-level decorator gets its own controller; a request without
 * credentials and one with a valid access request show whether the route is anonymous (never
 * verified), optional (verified when credentials come) or required.
 */
import 'reflect-metadata'
import { applyDecorators, Controller, HttpCode, Post, type INestApplication } from '@nestjs/common'
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify'
import { Test } from '@nestjs/testing'
import {
  AllowAnonymous,
  BetterAuthAccess,
  BetterAuthModule,
  OptionalAccess,
  Principal,
  type BetterAuthServer,
} from '../../adapters/nestjs'
import type { AccessPrincipal } from '../../src'
import { accessBody, hash, nonce as newNonce, type TestServer } from '../helpers'
import { errorCode, makeServer, session, supertestTarget, verifiedReply } from './contract'

type Decorator = ClassDecorator & MethodDecorator

/** What one level (controller or handler) carries, and what it means for the route. */
interface Level {
  name: string
  decorators: Decorator[]
  /** Whether this level opts the route out (`true`) or into an access check (`false`). */
  anonymous?: boolean
  /** Whether this level makes credentials required (`true`) or optional (`false`). */
  required?: boolean
  /** Whether this level applies the guard itself. */
  guards?: boolean
}

const levels: Level[] = [
  { name: 'nothing', decorators: [] },
  { name: '@AllowAnonymous()', decorators: [AllowAnonymous()], anonymous: true },
  { name: '@BetterAuthAccess()', decorators: [BetterAuthAccess()], anonymous: false, guards: true },
  {
    name: '@BetterAuthAccess({ credentialsRequired: true })',
    decorators: [BetterAuthAccess({ credentialsRequired: true })],
    anonymous: false,
    required: true,
    guards: true,
  },
  {
    name: '@BetterAuthAccess({ credentialsRequired: false })',
    decorators: [BetterAuthAccess({ credentialsRequired: false })],
    anonymous: false,
    required: false,
    guards: true,
  },
  {
    name: '@OptionalAccess()',
    decorators: [OptionalAccess()],
    anonymous: false,
    required: false,
  },
]

type Outcome = 'anonymous' | 'optional' | 'required'

/** The README's rule: the handler's setting of each field, else the controller's, else the default. */
function expected(onClass: Level, onHandler: Level, globalGuard: boolean): Outcome {
  const guarded = globalGuard || onClass.guards === true || onHandler.guards === true
  if (!guarded || (onHandler.anonymous ?? onClass.anonymous ?? false)) return 'anonymous'
  return (onHandler.required ?? onClass.required ?? true) ? 'required' : 'optional'
}

interface Case {
  path: string
  onClass: Level
  onHandler: Level
}

function controllerFor(path: string, onClass: Level, onHandler: Level): unknown {
  @Controller(path)
  @applyDecorators(...onClass.decorators)
  class Combination {
    @Post()
    @HttpCode(200)
    @applyDecorators(...onHandler.decorators)
    route(@Principal() principal: AccessPrincipal | undefined) {
      return { identity: principal?.identity ?? null }
    }
  }
  return Combination
}

const cases: Case[] = levels.flatMap((onClass, c) =>
  levels.map((onHandler, h) => ({ path: `c${c}h${h}`, onClass, onHandler }))
)

describe.each([
  ['express', false],
  ['express', true],
  ['fastify', false],
  ['fastify', true],
] as const)(
  'NestJS on %s, globalGuard: %s: handler metadata overrides the controller',
  (platform, globalGuard) => {
    let server: TestServer
    let app: INestApplication
    beforeAll(async () => {
      server = makeServer()
      const moduleRef = await Test.createTestingModule({
        imports: [
          BetterAuthModule.forRoot({
            auth: server.auth as BetterAuthServer<unknown>,
            globalGuard,
          }),
        ],
        controllers: cases.map(({ path, onClass, onHandler }) =>
          controllerFor(path, onClass, onHandler)
        ) as never[],
      }).compile()
      if (platform === 'fastify') {
        const fastify = moduleRef.createNestApplication<NestFastifyApplication>(
          new FastifyAdapter(),
          { rawBody: true, logger: false }
        )
        await fastify.init()
        await fastify.getHttpAdapter().getInstance().ready()
        app = fastify
      } else {
        app = moduleRef.createNestApplication({ rawBody: true, logger: false })
        await app.init()
      }
    })
    afterAll(async () => {
      await app.close()
    })

    it.each(cases.map(c => [c.onClass.name, c.onHandler.name, c] as const))(
      'controller %s, handler %s',
      async (_c, _h, { path, onClass, onHandler }) => {
        const target = supertestTarget(app.getHttpServer())
        const outcome = expected(onClass, onHandler, globalGuard)

        // Without credentials (an empty JSON object, which every platform's parser accepts).
        const bare = await target.post(`/${path}`, '{}')
        if (outcome === 'required') {
          expect([bare.status, errorCode(bare)]).toEqual([401, 'BA404'])
        } else {
          expect([bare.status, JSON.parse(bare.text)]).toEqual([200, { identity: null }])
        }

        // With a valid access request: verified and signed unless the route is anonymous.
        const { key, token } = await session(server)
        const nonce = newNonce()
        const reply = await target.post(
          `/${path}`,
          accessBody(token, key, { at: server.clock.ms, nonce })
        )
        if (outcome === 'anonymous') {
          expect([reply.status, JSON.parse(reply.text)]).toEqual([200, { identity: null }])
        } else {
          expect(await verifiedReply(server.auth, reply, nonce)).toEqual({
            identity: hash('identity'),
          })
        }
      }
    )
  }
)
