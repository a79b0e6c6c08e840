/**
 * `better-auth-protocol/client`: the client for browsers, Web Workers and Node ≥ 20. It imports
 * no `node:*` module and uses no `Buffer`; keys are WebCrypto keys (non-extractable by default),
 * state lives in memory or in IndexedDB (`browserStores`). For files in Node, `fileStores` is
 * exported from the package root.
 */
export {
  BetterAuthClient,
  CLIENT_DEFAULT_PATHS,
  FetchNetwork,
  type ClientOptions,
  type ClientStores,
  type Network,
  type ServerReply,
  type SessionOptions,
} from './client'
export {
  ClientStoreError,
  LocalLock,
  MemoryRotatingKeyStore,
  MemoryValueStore,
  PersistentRotatingKeyStore,
  defaultKeyGenerator,
  type ChainBackend,
  type ClientLock,
  type ClientRotatingKeyStore,
  type ClientValueStore,
  type RotatingKeyStoreOptions,
  type SavedChain,
  type SavedKey,
} from './stores'
export {
  browserStores,
  IndexedDbRotatingKeyStore,
  WebLocksLock,
  type BrowserStores,
} from './browser-stores'
export {
  Blake3Hasher,
  RandomNoncer,
  RECOVERY_KEY_PREFIX,
  WebCryptoSigningKey,
  WebCryptoVerifier,
  compressPoint,
  decompressPoint,
  exportRecoveryKey,
  generateRecoveryKey,
  hasWebCrypto,
  importRecoveryKey,
  type GenerateOptions,
} from './webcrypto'
export { readTokenClaims, TokenFormatError, type TokenClaims } from './token'
export type { Hasher, Noncer, SigningKey, Verifier } from '../crypto/types'
export {
  BetterAuthError,
  ERROR_CODES,
  IncorrectNonceError,
  InvalidResponseError,
  InvalidSignatureError,
  type ErrorCode,
} from '../errors'
