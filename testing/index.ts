export * from './client-stores'
export * from './store-conformance'
export * from './adapter-contract'
