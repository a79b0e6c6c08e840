/**
 * Type-level tests of the fetch adapter's generics and overloads and of the client's
 * `client.fetch(input, init)`: the assertions are checked by tsc (`npm run type-check`, and
 * ts-jest when this file runs); the one runtime test only keeps jest satisfied. Each
 * `@ts-expect-error` marks a misuse that must stay a type error.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { expectTypeOf } from 'expect-type'
import type { AccessPrincipal, RequestContext } from '../../src'
import { BetterAuthClient } from '../../src/client'
import {
  betterAuth,
  getPrincipal,
  type AccessCheck,
  type AccessContext,
  type FetchBetterAuth,
} from '../../adapters/fetch'
import type { BetterAuthError } from '../../src/errors'

interface Attributes {
  role: string
}
interface Note {
  text: string
}

/** What a protected route is: a Web handler, optionally given the client IP. */
type Protected = (request: Request, context?: RequestContext) => Promise<Response>

/** Never called: only its types are checked. */
function adapterChecks(): void {
  const auth = betterAuth<Attributes>({})
  expectTypeOf(auth).toEqualTypeOf<FetchBetterAuth<Attributes>>()

  // Credentials required (the default): the principal is always there, typed with the attributes
  // and the body type parameter; `data` is the verified request data.
  const required = auth.requireAccess<Note>(({ principal, data, body, request }) => {
    expectTypeOf(principal).toEqualTypeOf<AccessPrincipal<Attributes, Note>>()
    expectTypeOf(principal.attributes.role).toBeString()
    expectTypeOf(principal.request).toEqualTypeOf<Note>()
    expectTypeOf(data).toEqualTypeOf<Note>()
    expectTypeOf(body).toEqualTypeOf<Uint8Array>()
    expectTypeOf(request).toEqualTypeOf<Request>()
    // @ts-expect-error the attributes are typed: no such attribute
    void principal.attributes.missing
    // @ts-expect-error the body is typed: no such field
    void data.missing
    return { saved: data.text, by: principal.identity }
  })
  expectTypeOf(required).toEqualTypeOf<Protected>()
  // `credentialsRequired: true` is the same overload.
  const explicit = auth.requireAccess<Note>(
    ({ principal, data }) => {
      expectTypeOf(principal).toEqualTypeOf<AccessPrincipal<Attributes, Note>>()
      expectTypeOf(data).toEqualTypeOf<Note>()
    },
    { credentialsRequired: true }
  )
  expectTypeOf(explicit).toEqualTypeOf<Protected>()

  // Without a type argument the body is `unknown`.
  auth.requireAccess(({ principal, data }) => {
    expectTypeOf(principal).toEqualTypeOf<AccessPrincipal<Attributes, unknown>>()
    expectTypeOf(data).toBeUnknown()
  })

  // credentialsRequired: false: the principal and the data may be absent.
  const optional = auth.requireAccess<Note>(
    ({ principal, data }) => {
      expectTypeOf(principal).toEqualTypeOf<AccessPrincipal<Attributes, Note> | undefined>()
      expectTypeOf(data).toEqualTypeOf<Note | undefined>()
      // @ts-expect-error the principal may be absent
      void principal.identity
      // @ts-expect-error the data may be absent
      void data.text
      return { anonymous: principal === undefined }
    },
    { credentialsRequired: false }
  )
  expectTypeOf(optional).toEqualTypeOf<Protected>()
  // A handler written for a required principal does not fit an optional route.
  const needsPrincipal = (context: AccessContext<Attributes, Note>) => context.principal.identity
  auth.requireAccess<Note>(needsPrincipal)
  // @ts-expect-error optional access may call it without a principal
  auth.requireAccess<Note>(needsPrincipal, { credentialsRequired: false })

  // Options are typed with the attributes, the body and the source (the `Request`).
  auth.requireAccess<Note>(() => null, {
    binding: 'headers',
    authorize: (principal, source) => {
      expectTypeOf(principal).toEqualTypeOf<AccessPrincipal<Attributes, Note>>()
      expectTypeOf(source).toEqualTypeOf<Request>()
      return principal.attributes.role === 'admin' && principal.request.text !== ''
    },
  })
  // @ts-expect-error binding is 'headers', 'body' or 'any'
  auth.requireAccess(() => null, { binding: 'header' })
  // @ts-expect-error authorize answers a boolean
  auth.requireAccess(() => null, { authorize: () => 'yes' })

  // A protected route is a Web handler: it takes a Request (and the client IP), not anything else.
  expectTypeOf(required).toExtend<(request: Request) => Promise<Response>>()
  void required(new Request('https://api.example.com/notes'), { ip: '192.0.2.1' })
  // @ts-expect-error a URL is not a Request
  void required('https://api.example.com/notes')

  // checkAccess: the outcome narrows on `ok`.
  void (async () => {
    const check = await auth.checkAccess<Note>(new Request('https://api.example.com/notes'))
    expectTypeOf(check).toEqualTypeOf<AccessCheck<Attributes, Note>>()
    if (check.ok) {
      expectTypeOf(check.principal).toEqualTypeOf<AccessPrincipal<Attributes, Note> | undefined>()
      expectTypeOf(check.respond({ saved: true })).resolves.toEqualTypeOf<Response>()
      // @ts-expect-error only a refused check has a response
      void check.response
    } else {
      expectTypeOf(check.response).toEqualTypeOf<Response>()
      expectTypeOf(check.error).toEqualTypeOf<BetterAuthError>()
      // @ts-expect-error only an accepted check has a principal
      void check.principal
    }
  })

  // The protocol endpoints and the node:http bridge.
  expectTypeOf(auth.fetch).toEqualTypeOf<
    (request: Request, context?: RequestContext) => Promise<Response>
  >()
  expectTypeOf(auth.nodeListener()).toEqualTypeOf<
    (req: IncomingMessage, res: ServerResponse) => void
  >()

  // getPrincipal: typed by its arguments, and it may find none.
  expectTypeOf(getPrincipal<Attributes, Note>(new Request('https://x/'))).toEqualTypeOf<
    AccessPrincipal<Attributes, Note> | undefined
  >()
}

/** Never called: only its types are checked. */
function clientChecks(): void {
  const client = new BetterAuthClient({ baseUrl: 'https://api.example.com' })

  // The `fetch` signature: a URL string, a URL or a Request, and a RequestInit; a Response.
  expectTypeOf(client.fetch).parameters.toEqualTypeOf<
    [input: RequestInfo | URL, init?: RequestInit]
  >()
  expectTypeOf(client.fetch).returns.toEqualTypeOf<Promise<Response>>()
  expectTypeOf(client.fetch('https://api.example.com/me')).resolves.toEqualTypeOf<Response>()
  void client.fetch(new URL('https://api.example.com/notes/7'), { method: 'DELETE' })
  void client.fetch(new Request('https://api.example.com/notes/7', { method: 'PUT' }), {
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ text: 'hello' }),
  })
  // It stands in wherever a fetch function is expected.
  expectTypeOf(client.fetch.bind(client)).toExtend<typeof fetch>()

  // @ts-expect-error the input is a URL string, a URL or a Request
  void client.fetch(42)
  // @ts-expect-error init is a RequestInit
  void client.fetch('https://api.example.com/me', { method: 1 })
  // @ts-expect-error the reply is a Response, not parsed data
  void client.fetch('https://api.example.com/me').then(reply => reply.identity)
}

it('type-checks', () => {
  expect([typeof adapterChecks, typeof clientChecks]).toEqual(['function', 'function'])
})
