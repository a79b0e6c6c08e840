/** better-auth-protocol: server core, client, codecs, crypto and stores of the Better Auth protocol. */
export * from './errors'
export * from './server/core'
export * from './server/keys'
export * from './server/routes'
export * from './server/events'
export * from './server/ratelimit'
export {
  addBetterAuthSecurity,
  openApiDocument,
  SECURITY_SCHEME,
  type OpenApiOptions,
  type SecurityOptions,
} from './server/openapi'
export * from './stores/types'
export * from './stores/memory'
export * from './crypto/types'
export { Blake3Hasher, blake3Digest } from './crypto/blake3'
export { RandomNoncer } from './crypto/nonce'
export {
  NodeP256Verifier,
  NodeSigningKey,
  ThreadpoolP256Verifier,
  publicKeyObject,
  qualifiedPublicKey,
} from './crypto/node'
export * from './codec/cesr'
export { encodeBase64Url, decodeBase64Url } from './codec/base64url'
export { parseTimestamp, formatTimestamp } from './codec/timestamp'
export { parseStrictJson, decodeUtf8, type JsonLimits, type StrictJson } from './messages/json'
export {
  ACCESS_KEYS_SIGNING_CONTEXT,
  accessKeysSigningInput,
  parseEnvelope,
  verifySigned,
  type Envelope,
  type ParseLimits,
  type SignedPart,
} from './messages/envelope'
export {
  decodeToken,
  encodeToken,
  serializeClaims,
  type AccessToken,
  type AccessTokenClaims,
  type TokenLimits,
} from './messages/token'
export * from './client/client'
export * from './client/stores'
export * from './server/remote-keys'
export * from './stores/combine'
// Stores by URL; their drivers (better-sqlite3, pg, ioredis) load only when a URL needs them.
export {
  createStore,
  createStoreFromEnv,
  openStore,
  storeFromEnv,
  type ConfiguredStore,
  type StoreUrls,
} from './stores/url'
