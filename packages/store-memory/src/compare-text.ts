/**
 * Orders strings by UTF-16 code unit: deterministic and independent of the host's locale (unlike
 * `localeCompare`), so a list reads the same on every machine.
 */
export function compareText(left: string, right: string): number {
  if (left < right) return -1;
  if (left > right) return 1;
  return 0;
}
