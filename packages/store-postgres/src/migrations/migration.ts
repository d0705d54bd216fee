/** One step of the schema's history. Shipped as SQL text in a module, so the bundle carries it. */
export interface Migration {
  /** Applied in ascending order; never reused or renumbered once released. */
  version: number;
  name: string;
  /** Runs in one transaction, together with the row recording it in sluice_schema_migrations. */
  sql: string;
}
