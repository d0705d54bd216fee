/**
 * The machine's CPU time stolen by its hypervisor, from /proc/stat (Linux): on a shared virtual
 * machine, time the host gave to other guests. A repetition measured while much was stolen says
 * more about the neighbours than about the paths, so the bench reports it beside each cell.
 */
import { readFileSync } from "node:fs";

export interface CpuTimes {
  /** Ticks stolen, over all CPUs. */
  steal: number;
  /** Ticks of every kind (user, nice, system, idle, iowait, irq, softirq, steal), over all CPUs. */
  total: number;
}

/** The machine's CPU times so far, or null where /proc/stat cannot be read (not Linux). */
export function readCpuTimes(): CpuTimes | null {
  let text: string;
  try {
    text = readFileSync("/proc/stat", "latin1");
  } catch {
    return null;
  }
  const line = text.slice(0, text.indexOf("\n"));
  if (!line.startsWith("cpu ")) return null;
  // cpu user nice system idle iowait irq softirq steal guest guest_nice; guest time is already in user.
  const fields = line.trim().split(/\s+/).slice(1, 9).map(Number);
  if (fields.length < 8 || fields.some((value) => !Number.isFinite(value))) return null;
  return { steal: fields[7]!, total: fields.reduce((sum, value) => sum + value, 0) };
}

/** The share of CPU time stolen between two readings, 0 to 1; null when either is missing or no time passed. */
export function stolenShare(from: CpuTimes | null, to: CpuTimes | null): number | null {
  if (from === null || to === null || to.total <= from.total) return null;
  return (to.steal - from.steal) / (to.total - from.total);
}
