// The two Creatio objects the product touches, with the columns the emulator knows, their OData
// types, and the seeded rows. Sources: docs/architecture.md "Creatio" (from a published Creatio 8.1
// configuration dump): the Office 365 MailServer row id, its `OAuthApplication` lookup
// (`OAuthApplicationId` in OData), and the OAuthApplications columns Creatio's own mailbox
// settings page writes. Column lists beyond those are a plausible subset, not the full schema.
import { randomUUID } from "node:crypto";

export type ColumnType = "Guid" | "String" | "Int32" | "Boolean" | "DateTimeOffset";

export interface ColumnDef {
  type: ColumnType;
  /** Secure text (Creatio "encrypted" columns): writable, never read back through OData. */
  writeOnly?: boolean;
  /** Filled by the server: ignored when sent. */
  system?: boolean;
}

export interface EntityDef {
  name: string;
  columns: Record<string, ColumnDef>;
  /** System operation a user needs to insert, update or delete rows (CanManageMailServers for MailServer). */
  writeOperation?: string;
}

export type Row = Record<string, unknown>;

const systemColumns: Record<string, ColumnDef> = {
  Id: { type: "Guid" },
  CreatedOn: { type: "DateTimeOffset", system: true },
  CreatedById: { type: "Guid", system: true },
  ModifiedOn: { type: "DateTimeOffset", system: true },
  ModifiedById: { type: "Guid", system: true },
};

export const ENTITIES: Record<string, EntityDef> = {
  // Users' mailboxes, readable through OData with the columns below (assumed names: the lookup to the
  // mail server as MailServerId, as OData 4 exposes Creatio lookups). Whether one stores a password is
  // emulator state only (HasPassword in /_emulator/state), never an OData column: Creatio's password
  // column is secure text.
  MailboxSyncSettings: {
    name: "MailboxSyncSettings",
    writeOperation: "CanManageAdministration",
    columns: {
      ...systemColumns,
      MailServerId: { type: "Guid" },
      SenderEmailAddress: { type: "String" },
      UserName: { type: "String" },
    },
  },
  MailServer: {
    name: "MailServer",
    // "Saving a MailServer needs the system operation CanManageMailServers" (docs/architecture.md "Creatio").
    writeOperation: "CanManageMailServers",
    columns: {
      ...systemColumns,
      Name: { type: "String" },
      TypeId: { type: "Guid" },
      Address: { type: "String" },
      Port: { type: "Int32" },
      UseSSL: { type: "Boolean" },
      AllowEmailDownloading: { type: "Boolean" },
      AllowEmailSending: { type: "Boolean" },
      SMTPServerAddress: { type: "String" },
      SMTPPort: { type: "Int32" },
      UseSSLforSending: { type: "Boolean" },
      OAuthApplicationId: { type: "Guid" },
      // Minutes of an Exchange push subscription; Creatio's mail server page saves 10 (issue 9; assumed).
      SubscriptionTtl: { type: "Int32" },
    },
  },
  OAuthApplications: {
    name: "OAuthApplications",
    columns: {
      ...systemColumns,
      Name: { type: "String" },
      AppClassName: { type: "String" },
      ClientClassName: { type: "String" },
      ClientId: { type: "String" },
      SecretKey: { type: "String", writeOnly: true },
      Description: { type: "String" },
    },
  },
};

/** The Office 365 mail service row Creatio ships (docs/architecture.md "Creatio"). */
export const OFFICE365_MAIL_SERVER_ID = "4bde7ec8-061f-46a3-ab24-49f5ec9cce8b";
export const EMPTY_GUID = "00000000-0000-0000-0000-000000000000";

/**
 * Mail server types and the shipped Gmail row: ids from Creatio's client module `ExchangeNUIConstants`
 * (`MailServer.Type.Imap/Exchange`, `MailServer.Gmail`, `MailServer.Office365`).
 */
const MAIL_SERVER_TYPE = { exchange: "3490bd45-4f4d-4613-aa06-454546f3342a", imap: "844f0837-eaa0-4f40-b965-71f5db9eae6e" };
export const GMAIL_MAIL_SERVER_ID = "1b424a93-dee9-e011-8376-00155d04c01d";
/** The seeded on-premises Exchange server (not shipped by Creatio; id invented). */
export const EXCHANGE_ON_PREMISES_MAIL_SERVER_ID = "8a1c3a36-6a65-4d7b-8d51-0c2c2f1e6b02";

export function defaultValue(type: ColumnType): unknown {
  switch (type) {
    case "Guid":
      return EMPTY_GUID;
    case "String":
      return "";
    case "Int32":
      return 0;
    case "Boolean":
      return false;
    case "DateTimeOffset":
      return null;
  }
}

/** A complete row: every column present, defaults where not given (Creatio columns are not nullable but dates). */
export function completeRow(entity: EntityDef, values: Row, actorId: string): Row {
  const now = new Date().toISOString();
  const row: Row = {};
  for (const [column, def] of Object.entries(entity.columns)) row[column] = values[column] ?? defaultValue(def.type);
  row.Id = (values.Id as string | undefined) ?? randomUUID();
  row.CreatedOn = values.CreatedOn ?? now;
  row.ModifiedOn = values.ModifiedOn ?? now;
  row.CreatedById = values.CreatedById ?? actorId;
  row.ModifiedById = values.ModifiedById ?? actorId;
  return row;
}

/**
 * Seeded rows: the Office 365 service (no OAuth application linked yet, as on a fresh site), the
 * shipped Gmail service, and one custom Exchange server. An empty lookup reads as the empty guid.
 */
export function seedRows(supervisorContactId: string): Record<string, Row[]> {
  const seeded = "2023-01-01T00:00:00Z";
  const base = { CreatedOn: seeded, ModifiedOn: seeded, CreatedById: supervisorContactId, ModifiedById: supervisorContactId };
  return {
    MailServer: [
      completeRow(
        ENTITIES.MailServer,
        {
          ...base,
          Id: OFFICE365_MAIL_SERVER_ID,
          Name: "Office 365",
          TypeId: MAIL_SERVER_TYPE.exchange,
          Address: "outlook.office365.com",
          Port: 443,
          UseSSL: true,
          AllowEmailDownloading: true,
          AllowEmailSending: true,
        },
        supervisorContactId,
      ),
      completeRow(
        ENTITIES.MailServer,
        {
          ...base,
          Id: GMAIL_MAIL_SERVER_ID,
          Name: "Gmail",
          TypeId: MAIL_SERVER_TYPE.imap,
          Address: "imap.gmail.com",
          Port: 993,
          UseSSL: true,
          AllowEmailDownloading: true,
          AllowEmailSending: true,
          SMTPServerAddress: "smtp.gmail.com",
          SMTPPort: 465,
          UseSSLforSending: true,
        },
        supervisorContactId,
      ),
      completeRow(
        ENTITIES.MailServer,
        {
          ...base,
          // Not shipped by Creatio: an administrator's own on-premises server (id invented).
          Id: EXCHANGE_ON_PREMISES_MAIL_SERVER_ID,
          Name: "Exchange (on-premises)",
          TypeId: MAIL_SERVER_TYPE.exchange,
          Address: "mail.example.local",
          Port: 443,
          UseSSL: true,
          AllowEmailDownloading: true,
          AllowEmailSending: true,
        },
        supervisorContactId,
      ),
    ],
    OAuthApplications: [],
  };
}

/**
 * Users' mailboxes, minimally (readable through OData, see ENTITIES): Creatio's `MailboxSyncSettings` rows name
 * their mail server and hold either a stored password (basic authentication) or a user's OAuth
 * token. Only whether a password is stored is kept, never one. Seeded: one basic-auth mailbox on the
 * Office 365 server and one on the on-premises Exchange server.
 */
export function seedMailboxes(): { MailboxSyncSettings: Row[]; OAuthTokens: Row[] } {
  return {
    MailboxSyncSettings: [
      { Id: "c0a1b2c3-0000-4000-8000-000000000001", MailServerId: OFFICE365_MAIL_SERVER_ID, SenderEmailAddress: "sales@contoso.example", UserName: "Sales", HasPassword: true, OAuthTokenId: null },
      { Id: "c0a1b2c3-0000-4000-8000-000000000002", MailServerId: EXCHANGE_ON_PREMISES_MAIL_SERVER_ID, SenderEmailAddress: "support@contoso.example", UserName: "Supervisor", HasPassword: true, OAuthTokenId: null },
    ],
    OAuthTokens: [],
  };
}
