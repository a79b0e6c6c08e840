/**
 * The header form of the access request: HTTP Message Signatures (RFC 9421) carrying the
 * protocol's access semantics. Framework-neutral; see docs/http-binding.md.
 */
export {
  ALGORITHM,
  LABEL,
  REQUEST_SIGNATURE_COMPONENT,
  REQUEST_TAG,
  RESPONSE_TAG,
  componentValue,
  serverTarget,
  signatureBase,
  targetOfUrl,
  type RequestTarget,
  type ComponentId,
  type SignatureBaseMessage,
  type SignatureParams,
} from './base'
export { checkContentDigest, contentDigest } from './digest'
export { type HeaderRecord, type HeadersInput, type HeadersLike } from './fields'
export {
  AUTH_SCHEME,
  REQUEST_COMPONENTS,
  checkRequestTime,
  hasHeaderAccess,
  readHeaderAccess,
  signHeaderRequest,
  verifyHeaderAccess,
  type HeaderAccess,
  type HeaderAccessInput,
  type HeaderAccessLimits,
  type HeaderRequestToSign,
  type RequestTimeLimits,
  type SignedHeaderRequest,
} from './request'
export {
  readResponseSignature,
  signResponse,
  verifyResponse,
  type ResponseSignature,
  type ResponseToSign,
  type ResponseToVerify,
} from './response'
