/* ----------------------------------------------------------------------------
  cli.ts — what the command lines of `npm run stress` and `npm run fuzz`
  share: the usage exit (code 2) and numeric flag values checked as strings
  before they become numbers (so '1e3x', '-1' or '0x' never slip through).
---------------------------------------------------------------------------- */

/** A command's usage error: the message on stderr, then exit code 2. */
export function usageExit(command: string, message: string): never {
  process.stderr.write(`${command}: ${message}\nRun 'npm run ${command} -- --help' for the options.\n`)
  process.exit(2)
}

/**
 * The value of flag `--name` (undefined if absent): a non-negative integer
 * (decimal or 0x hex) when `integer`, else a non-negative decimal number.
 */
export function numberArg(command: string, name: string, s: string | undefined, integer: boolean): number | undefined {
  if (s === undefined) return undefined
  const ok = integer ? /^(\d+|0x[0-9a-f]+)$/i.test(s) : /^(\d+(\.\d*)?|\.\d+)(e-?\d+)?$/i.test(s)
  if (!ok) usageExit(command, `--${name}: '${s}' is not a ${integer ? 'non-negative integer' : 'number'}`)
  return Number(s)
}
