/** Plain-text and markdown tables for the benchmark's results. */

export type Align = "left" | "right";

export interface Table {
  title: string;
  columns: ReadonlyArray<{ label: string; align: Align }>;
  rows: string[][];
  notes?: string[];
}

export function textTable(table: Table): string {
  const widths = table.columns.map((column, index) => Math.max(column.label.length, ...table.rows.map((row) => (row[index] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, index) => (table.columns[index]!.align === "right" ? cell.padStart(widths[index]!) : cell.padEnd(widths[index]!)))
      .join("  ")
      .trimEnd();
  const out = [table.title, line(table.columns.map((column) => column.label)), widths.map((width) => "-".repeat(width)).join("  ")];
  for (const row of table.rows) out.push(line(row));
  for (const note of table.notes ?? []) out.push(note);
  return out.join("\n");
}

export function markdownTable(table: Table): string {
  const out = [`### ${table.title}`, "", `| ${table.columns.map((column) => column.label).join(" | ")} |`];
  out.push(`| ${table.columns.map((column) => (column.align === "right" ? "---:" : ":---")).join(" | ")} |`);
  for (const row of table.rows) out.push(`| ${row.join(" | ")} |`);
  if (table.notes !== undefined && table.notes.length > 0) out.push("", ...table.notes);
  return out.join("\n");
}

/** Milliseconds from microseconds, with the precision the size deserves. */
export function ms(micros: number): string {
  const value = micros / 1000;
  if (!Number.isFinite(value)) return "n/a";
  if (value < 10) return value.toFixed(3);
  if (value < 100) return value.toFixed(2);
  return value.toFixed(1);
}

export function integer(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString("en-US") : "n/a";
}

export function fixed(value: number, digits: number): string {
  return Number.isFinite(value) ? value.toFixed(digits) : "n/a";
}

export function percent(fraction: number): string {
  return Number.isFinite(fraction) ? `${(fraction * 100).toFixed(1)}%` : "n/a";
}

export function signed(value: number, digits = 0): string {
  if (!Number.isFinite(value)) return "n/a";
  const text = value.toFixed(digits);
  return value > 0 ? `+${text}` : text;
}

export function bytes(value: number): string {
  if (!Number.isFinite(value)) return "n/a";
  const magnitude = Math.abs(value);
  if (magnitude >= 1024 * 1024) return `${(value / (1024 * 1024)).toFixed(1)} MiB`;
  if (magnitude >= 1024) return `${(value / 1024).toFixed(1)} KiB`;
  return `${Math.round(value)} B`;
}
