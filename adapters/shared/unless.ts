/**
 * `unless`: global protection with public routes, in the style of express-jwt and koa-jwt.
 *
 *   app.use(auth.requireAccess().unless({ path: ['/health', /^\/public\//], method: ['OPTIONS'] }))
 *
 * A request any rule matches skips the middleware (goes straight to `next()`); every other request
 * is checked.
 */

/** A path rule: exact path, pattern, or either limited to some methods. */
export type UnlessPath =
  | string
  | RegExp
  | { url: string | RegExp; method?: string | readonly string[]; methods?: readonly string[] }

/** Which requests skip the middleware: any matching rule is enough. */
export interface UnlessOptions<Request = unknown> {
  /** Paths (without the query string) that skip it: `'/health'`, `/^\/public\//`. */
  path?: UnlessPath | readonly UnlessPath[]
  /** Methods that skip it on every path: `['OPTIONS']`. */
  method?: string | readonly string[]
  /** File extensions that skip it: `['.css', 'png']`. */
  ext?: string | readonly string[]
  /** Skips it when this returns `true`. */
  custom?: (request: Request) => boolean
}

/** What a rule looks at: the request's method and path (without the query string). */
export interface UnlessView {
  method: string
  path: string
}

/** A middleware with `unless`, which returns the same middleware, skipped where a rule matches. */
export type WithUnless<Middleware, Request> = Middleware & {
  unless(options: UnlessOptions<Request>): Middleware & WithUnless<Middleware, Request>
}

const list = <T>(value: T | readonly T[] | undefined): readonly T[] =>
  value === undefined ? [] : Array.isArray(value) ? (value as readonly T[]) : [value as T]

const upper = (methods: readonly string[]) => methods.map(method => method.toUpperCase())

function matchesUrl(url: string | RegExp, path: string): boolean {
  if (typeof url === 'string') return url === path
  url.lastIndex = 0 // a global pattern keeps its position between calls
  return url.test(path)
}

/** Whether a request skips the middleware under `options`. */
export function skips<Request>(
  options: UnlessOptions<Request>,
  view: UnlessView,
  request: Request
): boolean {
  const method = view.method.toUpperCase()
  if (upper(list(options.method)).includes(method)) return true
  for (const rule of list(options.path)) {
    if (typeof rule === 'string' || rule instanceof RegExp) {
      if (matchesUrl(rule, view.path)) return true
      continue
    }
    const methods = upper([...list(rule.method), ...list(rule.methods)])
    if (matchesUrl(rule.url, view.path) && (methods.length === 0 || methods.includes(method))) {
      return true
    }
  }
  for (const ext of list(options.ext)) {
    if (view.path.endsWith(ext.startsWith('.') ? ext : `.${ext}`)) return true
  }
  return options.custom?.(request) === true
}

/**
 * Gives `middleware` an `unless(options)` method. `view` reads the method and path from the
 * middleware's first argument (Express's `req`, Koa's `ctx`); a skipped request calls the last
 * argument (`next`) and returns what it returns (Koa's promise).
 */
export function withUnless<
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any middleware signature
  Middleware extends (request: any, ...rest: any[]) => unknown,
>(
  middleware: Middleware,
  view: (request: Parameters<Middleware>[0]) => UnlessView
): WithUnless<Middleware, Parameters<Middleware>[0]> {
  type Request = Parameters<Middleware>[0]
  const unless = (options: UnlessOptions<Request>) => {
    const skipping = function (this: unknown, ...args: unknown[]) {
      const request = args[0] as Request
      if (skips(options, view(request), request)) return (args[args.length - 1] as () => unknown)()
      return middleware.apply(this, args as Parameters<Middleware>)
    } as unknown as Middleware
    return withUnless(skipping, view)
  }
  return Object.assign(middleware, { unless })
}

/** The method and path Express's rules look at (`originalUrl`, so mounted apps see full paths). */
export const expressView = (req: {
  method?: string
  originalUrl?: string
  url?: string
}): UnlessView => ({
  method: req.method ?? 'GET',
  path: (req.originalUrl ?? req.url ?? '').split('?', 1)[0] as string,
})

/** The method and path Koa's rules look at (`ctx.path`). */
export const koaView = (ctx: { method: string; path: string }): UnlessView => ({
  method: ctx.method,
  path: ctx.path,
})
