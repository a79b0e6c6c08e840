/**
 * The examples keep their state in ./better-auth.db unless BETTER_AUTH_DATABASE says otherwise;
 * under test they import in memory, so the test run leaves no database file behind.
 */
process.env.BETTER_AUTH_DATABASE ??= 'memory:'
