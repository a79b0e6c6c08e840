/** better-auth-protocol: server core, client, codecs, crypto and stores of the Better Auth protocol. */
export {
  AccountSuspendedError,
  AdminNotFoundError,
  AdminUnsupportedError,
  BetterAuthError,
  ConflictError,
  CredentialsRequiredError,
  ERROR_CODES,
  ExpiredTokenError,
  ForbiddenError,
  FutureRequestError,
  FutureTokenError,
  IncorrectNonceError,
  InternalError,
  InvalidChallengeError,
  InvalidDeviceError,
  InvalidHashError,
  InvalidIdentityError,
  InvalidMessageError,
  InvalidResponseError,
  InvalidSignatureError,
  InvalidTokenError,
  MethodNotAllowedError,
  MismatchedIdentitiesError,
  NotFoundError,
  PayloadTooLargeError,
  RateLimitedError,
  ReplayError,
  ReplayStateResetError,
  SessionEndedError,
  StaleRequestError,
  StorageUnavailableError,
  UnknownAccountError,
  UnknownServerKeyError,
  UnsupportedMediaTypeError,
  toBetterAuthError,
  type ErrorCode,
  type ErrorOptions,
} from './errors'
// The server core and its options.
export {
  BetterAuthServer,
  createBetterAuth,
  type AccessCheckOptions,
  type AccessPrincipal,
  type AttributesCallback,
  type BetterAuthOptions,
  type HandlerResult,
  type IdentityVerifier,
  type Lifetimes,
  type Limits,
  type Logger,
  type RequestContext,
} from './server/core'
export {
  DEFAULT_BODY_LIMIT,
  DEFAULT_LIFETIMES,
  DEFAULT_REVOCATION_CACHE_MS,
  type AttributesContext,
} from './server/options'
// Administration of accounts: `auth.admin`.
export {
  AdminApi,
  type AdminAction,
  type AdminActionOptions,
  type AdminActionResult,
  type AdminDevice,
  type AdminIdentity,
  type EndSessionsOptions,
  type SuspendOptions,
} from './server/admin'
export { SESSION_RECORD_INTERVAL_MS } from './server/session-gate'
// The admin HTTP endpoints (off unless mounted, behind an authorization hook).
export {
  ADMIN_ROUTES,
  AdminHttp,
  DEFAULT_ADMIN_CHALLENGE,
  DEFAULT_ADMIN_PREFIX,
  adminHttp,
  type AdminAuthorization,
  type AdminAuthorize,
  type AdminEndpoint,
  type AdminHttpCore,
  type AdminHttpOptions,
  type AdminHttpRequest,
  type AdminRouteInfo,
} from './server/admin-http'
export {
  ACTOR_HEADER,
  bearerAuthorize,
  type BearerAuthorizeOptions,
  type RequestWithHeaders,
} from './server/admin-bearer'
export { JSON_CONTENT_TYPE } from './server/http'
export {
  DEFAULT_RELOAD_INTERVAL_MS,
  DEFAULT_RETIRE_AFTER_MS,
  ServerKeys,
  UNSEALED_KEYS_WARNING,
  loadSigningKey,
  sealPrivateKey,
  unsealPrivateKey,
  type AccessKeySource,
  type KeyInput,
  type PublishedAccessKey,
  type ServerKeyOptions,
} from './server/keys'
// The operations and their routes (the one table every adapter and the client's paths use).
export {
  DEFAULT_PATHS,
  ENDPOINTS,
  KEY_ENDPOINTS,
  OPERATIONS,
  routeTable,
  type Endpoint,
  type KeyEndpoint,
  type Operation,
  type Paths,
  type RouteInfo,
} from './server/routes'
export type { AuditEvent, AuditEventType, AuditListener } from './server/events'
export {
  createMetrics,
  DEFAULT_BUCKETS,
  type BetterAuthMetrics,
  type MetricsOptions,
} from './server/metrics'
export {
  ACCESS_CHANNEL,
  OPERATION_CHANNEL,
  hashIdentity,
  type AccessTraceContext,
  type MetricsRecorder,
  type OperationTraceContext,
} from './server/observe'
export {
  instrumentOpenTelemetry,
  OPENTELEMETRY_SCOPE,
  type OpenTelemetryOptions,
} from './server/opentelemetry'
export {
  DEFAULT_IDENTITY_RULES,
  DEFAULT_IP_RULES,
  rateLimitFromEnv,
  type BackoffOptions,
  type RateLimitOptions,
  type RateRule,
  type RateRules,
} from './server/ratelimit'
export { ADMIN_SECURITY_SCHEME } from './server/openapi-admin'
export {
  addBetterAuthSecurity,
  openApiDocument,
  SECURITY_SCHEME,
  type OpenApiOptions,
  type SecurityOptions,
} from './server/openapi'
export type {
  AccountStore,
  AdminAccountStore,
  AdminResult,
  ChallengeStore,
  DeviceKey,
  DeviceRecord,
  EphemeralStore,
  IdentityRecord,
  KeyKind,
  KeyStore,
  NewAccount,
  NewDevice,
  RecoverResult,
  ReinstateResult,
  RotateResult,
  RotationEffect,
  ServerStore,
  SessionState,
  StoredKey,
  SuspendResult,
  TimeLockStore,
} from './stores/types'
export { ADMIN_METHODS, supportsAdmin } from './stores/admin'
export {
  MemoryAccountStore,
  MemoryChallengeStore,
  MemoryStore,
  MemoryTimeLockStore,
  TtlMap,
  type MemoryAccountStoreOptions,
  type MemoryStoreOptions,
  type TtlMapOptions,
} from './stores/memory'
export type { Hasher, Noncer, SigningKey, Verifier } from './crypto/types'
export { Blake3Hasher, blake3Digest } from './crypto/blake3'
export { RandomNoncer } from './crypto/nonce'
export {
  NodeP256Verifier,
  NodeSigningKey,
  ThreadpoolP256Verifier,
  ecdsaScheduler,
  publicKeyObject,
  qualifiedPublicKey,
  type EcdsaPlacement,
  type EcdsaScheduler,
} from './crypto/node'
export {
  SIGNATURE_LENGTH,
  decodeHash,
  decodeNonce,
  decodePublicKey,
  decodeSignature,
  encodeHash,
  encodeNonce,
  encodePublicKey,
  encodeSignature,
  isHash,
  isNonce,
  isPublicKeyText,
  isSignature,
} from './codec/cesr'
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
export {
  BetterAuthClient,
  CLIENT_DEFAULT_PATHS,
  FetchNetwork,
  type ClientOptions,
  type ClientStores,
  type Network,
  type ServerReply,
  type SessionOptions,
} from './client/client'
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
} from './client/stores'
export {
  WebCryptoSigningKey,
  WebCryptoVerifier,
  exportRecoveryKey,
  generateRecoveryKey,
  importRecoveryKey,
  type GenerateOptions,
} from './client/webcrypto'
export { readTokenClaims, type TokenClaims } from './client/token'
// Client state in files (Node only; not part of better-auth-protocol/client).
export { fileStores, FileRotatingKeyStore, type FileStoresOptions } from './client/file-stores'
export { RemoteAccessKeys, type RemoteAccessKeysOptions } from './server/remote-keys'
export { combineStores } from './stores/combine'
// Stores by URL; their drivers (better-sqlite3, pg, ioredis) load only when a URL needs them.
export {
  createStore,
  createStoreFromEnv,
  openStore,
  storeFromEnv,
  type ConfiguredStore,
  type StoreUrls,
} from './stores/url'
