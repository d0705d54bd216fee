import type { Migration } from "./migration.js";

/**
 * The first schema. Conventions every later migration keeps:
 * - Tables are prefixed `sluice_` and created unqualified, in the connection's search_path, so a
 *   host picks the schema with `?options=-c search_path=...` on its connection string.
 * - Ids, names and every other column the stores sort or compare are `COLLATE "C"`: byte order
 *   of UTF-8, which for every character outside U+E000–U+FFFF is the UTF-16 code unit order the
 *   memory store sorts by, and independent of the database's locale.
 * - Times are epoch milliseconds in int8, always written from the stores' injected clock, never
 *   from now(), so tests and every instance agree on them. Money is int8 micro-dollars.
 */
export const initialSchema: Migration = {
  version: 1,
  name: "initial-schema",
  sql: `
CREATE TABLE sluice_providers (
  id text COLLATE "C" PRIMARY KEY,
  kind text NOT NULL,
  owner text COLLATE "C" NOT NULL,
  name text COLLATE "C" NOT NULL,
  description text,
  tags text[] NOT NULL,
  status text NOT NULL,
  status_reason text,
  -- json, not jsonb: settings come back exactly as they were stored, key order included.
  settings json NOT NULL,
  -- Secret name -> value sealed by the host's secret box; never a plaintext.
  sealed_secrets jsonb NOT NULL,
  created_at int8 NOT NULL,
  updated_at int8 NOT NULL,
  version int8 NOT NULL,
  CONSTRAINT sluice_providers_owner_name_key UNIQUE (owner, name)
);

CREATE TABLE sluice_users (
  id text COLLATE "C" PRIMARY KEY,
  display_name text,
  roles text[] NOT NULL,
  created_at int8 NOT NULL
);

CREATE TABLE sluice_groups (
  id text COLLATE "C" PRIMARY KEY,
  name text NOT NULL,
  created_at int8 NOT NULL
);

CREATE TABLE sluice_group_members (
  group_id text COLLATE "C" NOT NULL REFERENCES sluice_groups (id) ON DELETE CASCADE,
  user_id text COLLATE "C" NOT NULL REFERENCES sluice_users (id) ON DELETE CASCADE,
  PRIMARY KEY (group_id, user_id)
);
CREATE INDEX sluice_group_members_user_idx ON sluice_group_members (user_id, group_id);

CREATE TABLE sluice_grants (
  provider_id text COLLATE "C" NOT NULL,
  subject_type text NOT NULL CHECK (subject_type IN ('organization', 'group')),
  group_id text COLLATE "C" REFERENCES sluice_groups (id) ON DELETE CASCADE,
  subject_key text COLLATE "C" GENERATED ALWAYS AS (coalesce('group:' || group_id, 'organization')) STORED,
  granted_by text NOT NULL,
  granted_at int8 NOT NULL,
  PRIMARY KEY (provider_id, subject_key),
  CHECK ((subject_type = 'group') = (group_id IS NOT NULL))
);
CREATE INDEX sluice_grants_group_idx ON sluice_grants (group_id);

CREATE TABLE sluice_keys (
  id text COLLATE "C" PRIMARY KEY,
  user_id text COLLATE "C" NOT NULL,
  name text COLLATE "C" NOT NULL,
  allocation_id text COLLATE "C" NOT NULL,
  -- hashKeySecret(secret): the secret itself is never stored.
  secret_hash text NOT NULL,
  hint text NOT NULL,
  created_at int8 NOT NULL,
  expires_at int8,
  last_used_at int8,
  revoked_at int8,
  allowed_providers text[],
  allowed_models text[],
  spend_limit int8 CHECK (spend_limit >= 0),
  CONSTRAINT sluice_keys_secret_hash_key UNIQUE (secret_hash)
);
-- A name is unique among a user's live keys only: revoking a key frees its name.
CREATE UNIQUE INDEX sluice_keys_live_name_key ON sluice_keys (user_id, name) WHERE revoked_at IS NULL;
CREATE INDEX sluice_keys_user_idx ON sluice_keys (user_id, created_at DESC, id DESC);

CREATE TABLE sluice_allocations (
  id text COLLATE "C" PRIMARY KEY,
  name text COLLATE "C" NOT NULL,
  owner_type text NOT NULL CHECK (owner_type IN ('organization', 'group')),
  owner_group_id text COLLATE "C",
  spend_limit int8 NOT NULL CHECK (spend_limit >= 0),
  period text CHECK (period IN ('day', 'week', 'month')),
  created_at int8 NOT NULL,
  updated_at int8 NOT NULL,
  -- Every charge ever made against the allocation.
  lifetime_spent int8 NOT NULL,
  -- The sum of the amounts of this allocation's rows in sluice_reservations, expired ones included
  -- until something deletes them; readers subtract the expired ones.
  reserved int8 NOT NULL,
  -- The charges of the period starting at period_start, kept by every commit under the row's lock
  -- and recomputed from sluice_charges when the period rolls over or its setting changes.
  period_start int8,
  period_spent int8,
  CHECK ((owner_type = 'group') = (owner_group_id IS NOT NULL))
);
CREATE INDEX sluice_allocations_name_idx ON sluice_allocations (name, id);

-- One row per key that ever reserved or was charged: the row reservations lock to check the
-- key's cap, and its lifetime spend.
CREATE TABLE sluice_key_balances (
  key_id text COLLATE "C" PRIMARY KEY,
  lifetime_spent int8 NOT NULL
);

CREATE TABLE sluice_reservations (
  request_id text COLLATE "C" PRIMARY KEY,
  allocation_id text COLLATE "C" NOT NULL REFERENCES sluice_allocations (id),
  user_id text COLLATE "C" NOT NULL,
  key_id text COLLATE "C",
  amount int8 NOT NULL CHECK (amount >= 0),
  created_at int8 NOT NULL,
  expires_at int8 NOT NULL
);
CREATE INDEX sluice_reservations_allocation_idx ON sluice_reservations (allocation_id, expires_at) INCLUDE (amount);
CREATE INDEX sluice_reservations_key_idx ON sluice_reservations (key_id, expires_at) INCLUDE (amount);
CREATE INDEX sluice_reservations_expiry_idx ON sluice_reservations (expires_at);

-- The ledger: append-only (the stores never update or delete a charge), one row per request.
CREATE TABLE sluice_charges (
  request_id text COLLATE "C" PRIMARY KEY,
  allocation_id text COLLATE "C" NOT NULL REFERENCES sluice_allocations (id),
  user_id text COLLATE "C" NOT NULL,
  key_id text COLLATE "C",
  provider_id text COLLATE "C" NOT NULL,
  model text COLLATE "C" NOT NULL,
  input_tokens int8 NOT NULL CHECK (input_tokens >= 0),
  output_tokens int8 NOT NULL CHECK (output_tokens >= 0),
  cost int8 NOT NULL CHECK (cost >= 0),
  at int8 NOT NULL
);
CREATE INDEX sluice_charges_at_idx ON sluice_charges (at);
CREATE INDEX sluice_charges_allocation_at_idx ON sluice_charges (allocation_id, at);
CREATE INDEX sluice_charges_user_at_idx ON sluice_charges (user_id, at);
CREATE INDEX sluice_charges_key_at_idx ON sluice_charges (key_id, at);
`,
};
