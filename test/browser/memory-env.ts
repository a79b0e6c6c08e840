/** Imported before the examples: they open their store when loaded, here in memory. */
process.env.BETTER_AUTH_DATABASE = 'memory:'
