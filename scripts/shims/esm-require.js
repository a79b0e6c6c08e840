// A synchronous `require` for the ES module build (dist/esm), given to every compiled module
// whose source calls `require('literal')` at run time (the stores by URL load their drivers
// lazily and synchronously). The package's own modules load as ES modules where Node can
// require() them (20.19+, 22.12+), so they are the very classes `import` gives; on older versions
// of Node they load from the CommonJS build. Anything else resolves as it would from the calling
// module.
//
// Each call keeps its literal `require('x')`, passed as `direct`, for bundlers: in a bundle it
// is the bundler's (a bundled module, or an external one); where it throws "Dynamic require of
// x is not supported" (an external module in an ES module bundle), or where no `require` exists
// (Node's ES module loader), `x` is loaded from the calling module's URL instead.
import { createRequire } from 'node:module'

const FALLBACK = new Set([
  'ERR_REQUIRE_ESM',
  'ERR_REQUIRE_ASYNC_MODULE',
  'ERR_REQUIRE_CYCLE_MODULE',
])

/** The `require` of the module at `moduleUrl` (its `import.meta.url`). */
export function esmRequire(moduleUrl) {
  let own
  let twin
  const viaUrl = specifier => {
    if (typeof moduleUrl !== 'string') {
      throw new Error(`cannot load ${specifier}: this module has no import.meta.url`)
    }
    own ??= createRequire(moduleUrl)
    if (!specifier.startsWith('./') && !specifier.startsWith('../')) return own(specifier)
    try {
      return own(specifier)
    } catch (error) {
      const esmRoot = new URL('../', import.meta.url).href
      if (!FALLBACK.has(error?.code) || !moduleUrl.startsWith(esmRoot)) throw error
      twin ??= createRequire(
        new URL(moduleUrl.slice(esmRoot.length), new URL('../../cjs/', import.meta.url))
      )
      return twin(specifier)
    }
  }
  return (specifier, direct) => {
    if (direct === undefined) return viaUrl(specifier)
    try {
      return direct()
    } catch (error) {
      if (!/^Dynamic require of /.test(String(error?.message))) throw error
      return viaUrl(specifier)
    }
  }
}
