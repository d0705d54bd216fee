import { initialSchema } from "./0001-initial-schema.js";
import { ledgerFunctions } from "./0002-ledger-functions.js";
import type { Migration } from "./migration.js";

/** Every migration, in the order they apply. Append new ones; never edit a released one. */
export const migrations: readonly Migration[] = [initialSchema, ledgerFunctions];
