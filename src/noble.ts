/** P-256 on @noble/curves, for runtimes without node:crypto: `better-auth-protocol/noble`. */
export { NobleP256Verifier, NobleSigningKey } from './crypto/noble'
