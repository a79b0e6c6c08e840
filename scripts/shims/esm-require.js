// A synchronous `require` for the ES module build (dist/esm), given to every compiled module
// whose source calls `require` at run time (the stores by URL load their drivers lazily and
// synchronously). The package's own modules load as ES modules where Node can require() them
// (20.19+, 22.12+), so they are the very classes `import` gives; on older versions of Node they
// load from the CommonJS build. Anything else resolves as it would from the calling module.
import { createRequire } from 'node:module'

const esmRoot = new URL('../', import.meta.url).href
const cjsRoot = new URL('../../cjs/', import.meta.url)
const FALLBACK = new Set([
  'ERR_REQUIRE_ESM',
  'ERR_REQUIRE_ASYNC_MODULE',
  'ERR_REQUIRE_CYCLE_MODULE',
])

/** The `require` of the module at `moduleUrl` (its `import.meta.url`). */
export function esmRequire(moduleUrl) {
  const own = createRequire(moduleUrl)
  let twin
  const load = specifier => {
    if (!specifier.startsWith('./') && !specifier.startsWith('../')) return own(specifier)
    try {
      return own(specifier)
    } catch (error) {
      if (!FALLBACK.has(error?.code) || !moduleUrl.startsWith(esmRoot)) throw error
      twin ??= createRequire(new URL(moduleUrl.slice(esmRoot.length), cjsRoot))
      return twin(specifier)
    }
  }
  return Object.assign(load, { resolve: own.resolve, cache: own.cache, main: undefined })
}
