/** The store conformance suite, as the package ships it (`better-auth-protocol/testing`). */
export * from '../../testing/store-conformance'
