// The Graph emulator's directory: applications, service principals, delegated permission grants, the
// authorization policy, and tenant settings that shape behaviour (the identity's app roles, an app
// management policy). Objects are kept in Graph's own JSON shapes so GET and /_emulator/state return them as is.
import { randomBytes, randomUUID } from "node:crypto";
import { SANDBOX_HOME_TENANT, type SandboxIdentity, type SandboxProvisioner, type SandboxTenant } from "../context";
import { AuthorizationPolicy, DEFAULT_IDENTITY_GRAPH_ROLES, seedAuthorizationPolicy, seedProvisioner, seedServicePrincipals } from "./seed";

export type Json = Record<string, any>;

export interface TenantSettings {
  /** Graph app roles (by value) granted to the sandbox identity: they become the `roles` claim of its Graph tokens. */
  identityGraphRoles: string[];
  /** App management policy: the longest password lifetime addPassword accepts, in days; null = no policy. */
  passwordLifetimeMaxDays: number | null;
}

export const DEFAULT_TENANT_SETTINGS: TenantSettings = {
  identityGraphRoles: DEFAULT_IDENTITY_GRAPH_ROLES,
  passwordLifetimeMaxDays: null,
};

export interface Stored<T> {
  object: T;
  createdAtMs: number;
  /** Set by an update while the `staleReadMs` fault is on: reads see `object` as it was until `untilMs`. */
  stale?: { object: T; untilMs: number };
  /** Object ids of the service principals that own it (Application.ReadWrite.OwnedBy scope). */
  owners: Set<string>;
}

export interface IssuedSecret {
  secretText: string;
  createdAtMs: number;
}

export class GraphStore {
  applications = new Map<string, Stored<Json>>();
  /** Deleted applications (directory deleted items), restorable for 30 days in Entra; kept here until reset. */
  deletedApplications = new Map<string, Stored<Json>>();
  servicePrincipals = new Map<string, Stored<Json>>();
  grants = new Map<string, Stored<Json>>();
  /** keyId → the secret issued by addPassword (kept only for state and the token endpoint). */
  secrets = new Map<string, IssuedSecret>();
  authorizationPolicy!: AuthorizationPolicy;
  settings!: TenantSettings;
  /**
   * Application permissions (app roles) held by service principals of this directory, by the client's
   * object id: what an administrator's consent to a multi-tenant app assigned. They become the `roles`
   * claim of that client's tokens for the resource.
   */
  appRoleAssignments = new Map<string, { resourceAppId: string; value: string }[]>();
  /** federatedIdentityCredentials of each application, by the application's object id. */
  federatedCredentials = new Map<string, Json[]>();

  constructor(
    readonly identity: SandboxIdentity,
    private readonly initialSettings: Partial<TenantSettings> = {},
    /** Which directory this is; the home tenant (where the app's own identity lives) when omitted. */
    readonly tenant: SandboxTenant = SANDBOX_HOME_TENANT,
    /** The multi-tenant provisioner application to seed, in the home directory only (issue 10). */
    readonly provisioner?: SandboxProvisioner,
  ) {
    this.reset();
  }

  get isHome(): boolean {
    return this.tenant.tenantId === this.identity.tenantId;
  }

  reset() {
    this.applications.clear();
    this.deletedApplications.clear();
    this.servicePrincipals.clear();
    this.grants.clear();
    this.secrets.clear();
    this.appRoleAssignments.clear();
    this.federatedCredentials.clear();
    this.authorizationPolicy = seedAuthorizationPolicy();
    this.settings = { ...DEFAULT_TENANT_SETTINGS, ...this.initialSettings };
    // The app's own identity exists only in its home tenant; Microsoft's services exist in every tenant.
    for (const seed of seedServicePrincipals(this.identity).filter((sp) => this.isHome || sp.id !== this.identity.objectId)) {
      const { id, appId, displayName, servicePrincipalType, appOwnerOrganizationId, oauth2PermissionScopes, appRoles, servicePrincipalNames } = seed;
      const sp = newServicePrincipal({ id, appId, displayName, appOwnerOrganizationId, servicePrincipalType, oauth2PermissionScopes, appRoles, servicePrincipalNames });
      // Seeded objects exist "since forever": never hidden by replication lag.
      this.servicePrincipals.set(id, { object: sp, createdAtMs: 0, owners: new Set() });
    }
    // The provisioner application, as infra/provisioner.sh registers it in the home tenant: an application
    // object only (no service principal: a tenant gets one when its administrator consents), owned by no
    // service principal (a person registers it), existing "since forever" like the other seeds.
    if (this.provisioner && this.isHome) {
      const { application, federatedCredential } = seedProvisioner(this.provisioner, this.identity, (appId) => this.spByAppId(appId)?.object.appRoles ?? []);
      this.applications.set(application.id, { object: newApplication(application), createdAtMs: 0, owners: new Set() });
      this.federatedCredentials.set(application.id, [federatedCredential]);
    }
  }

  appByAppId(appId: string) {
    return [...this.applications.values()].find((s) => s.object.appId === appId);
  }
  appByUniqueName(uniqueName: string) {
    return [...this.applications.values()].find((s) => s.object.uniqueName === uniqueName);
  }
  spByAppId(appId: string) {
    return [...this.servicePrincipals.values()].find((s) => s.object.appId === appId);
  }

  /** GET /_emulator/state: Graph shapes; application passwordCredentials also carry the issued secretText. */
  state() {
    return {
      applications: [...this.applications.values()].map(({ object }) => ({
        ...object,
        passwordCredentials: (object.passwordCredentials as Json[]).map((p) => ({ ...p, secretText: this.secrets.get(p.keyId)?.secretText ?? null })),
      })),
      deletedApplications: [...this.deletedApplications.values()].map((s) => s.object),
      servicePrincipals: [...this.servicePrincipals.values()].map((s) => s.object),
      oauth2PermissionGrants: [...this.grants.values()].map((s) => s.object),
      authorizationPolicy: this.authorizationPolicy,
      appRoleAssignments: Object.fromEntries(this.appRoleAssignments),
      federatedIdentityCredentials: Object.fromEntries(this.federatedCredentials),
    };
  }
}

/** A new application in the shape Graph returns (application-upsert.md, application-post-applications.md example). */
export function newApplication(fields: Json): Json {
  const app: Json = {
    id: randomUUID(),
    deletedDateTime: null,
    appId: randomUUID(),
    applicationTemplateId: null,
    disabledByMicrosoftStatus: null,
    createdDateTime: graphNow(),
    displayName: null,
    description: null,
    groupMembershipClaims: null,
    identifierUris: [],
    isDeviceOnlyAuthSupported: null,
    isFallbackPublicClient: null,
    notes: null,
    publisherDomain: "sandbox.onmicrosoft.com",
    serviceManagementReference: null,
    signInAudience: "AzureADMyOrg",
    tags: [],
    tokenEncryptionKeyId: null,
    uniqueName: null,
    defaultRedirectUri: null,
    optionalClaims: null,
    addIns: [],
    api: { acceptMappedClaims: null, knownClientApplications: [], requestedAccessTokenVersion: null, oauth2PermissionScopes: [], preAuthorizedApplications: [] },
    appRoles: [],
    info: { logoUrl: null, marketingUrl: null, privacyStatementUrl: null, supportUrl: null, termsOfServiceUrl: null },
    keyCredentials: [],
    parentalControlSettings: { countriesBlockedForMinors: [], legalAgeGroupRule: "Allow" },
    passwordCredentials: [],
    publicClient: { redirectUris: [] },
    requiredResourceAccess: [],
    verifiedPublisher: { displayName: null, verifiedPublisherId: null, addedDateTime: null },
    web: {
      homePageUrl: null,
      logoutUrl: null,
      redirectUris: [],
      implicitGrantSettings: { enableAccessTokenIssuance: false, enableIdTokenIssuance: false },
      redirectUriSettings: [],
    },
    spa: { redirectUris: [] },
  };
  return mergePatch(app, fields);
}

/** A new service principal in the shape Graph returns (serviceprincipal-post-serviceprincipals.md example). */
export function newServicePrincipal(fields: Json): Json {
  const sp: Json = {
    id: randomUUID(),
    deletedDateTime: null,
    accountEnabled: true,
    alternativeNames: [],
    appDisplayName: fields.displayName ?? null,
    appDescription: null,
    appId: null,
    applicationTemplateId: null,
    appOwnerOrganizationId: null,
    appRoleAssignmentRequired: false,
    createdDateTime: graphNow(),
    description: null,
    disabledByMicrosoftStatus: null,
    displayName: null,
    homepage: null,
    loginUrl: null,
    logoutUrl: null,
    notes: null,
    notificationEmailAddresses: [],
    preferredSingleSignOnMode: null,
    preferredTokenSigningKeyThumbprint: null,
    replyUrls: [],
    servicePrincipalNames: [],
    servicePrincipalType: "Application",
    signInAudience: "AzureADMyOrg",
    tags: [],
    tokenEncryptionKeyId: null,
    info: { logoUrl: null, marketingUrl: null, privacyStatementUrl: null, supportUrl: null, termsOfServiceUrl: null },
    samlSingleSignOnSettings: null,
    addIns: [],
    appRoles: [],
    keyCredentials: [],
    oauth2PermissionScopes: [],
    passwordCredentials: [],
    resourceSpecificApplicationPermissions: [],
    verifiedPublisher: { displayName: null, verifiedPublisherId: null, addedDateTime: null },
  };
  return mergePatch(sp, fields);
}

/**
 * PATCH semantics for directory objects: the given properties replace the stored ones; complex-typed values
 * (web, api, info, ...) are merged property by property, collections are replaced wholly (OData 4.01 PATCH).
 */
export function mergePatch(target: Json, patch: Json): Json {
  const out: Json = { ...target };
  for (const [key, value] of Object.entries(patch)) {
    const current = out[key];
    if (isPlainObject(value) && isPlainObject(current)) out[key] = mergePatch(current, value);
    else out[key] = structuredClone(value);
  }
  return out;
}

const isPlainObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** Graph's timestamps: ISO 8601 UTC, e.g. 2019-09-17T19:10:35Z. */
export function graphNow(ms = Date.now()): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/**
 * A client secret like Entra's: 40 characters from letters, digits and `~._-` (what portal and Graph secrets
 * look like today; application-addpassword.md says 16-64 characters). Starts with 3 characters used as the hint.
 */
export function newSecretText(): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789~._-";
  const bytes = randomBytes(40);
  let out = "";
  for (const b of bytes) out += alphabet[b % alphabet.length];
  return out;
}

/** oauth2PermissionGrant ids are opaque base64url strings (oauth2permissiongrant.md examples). */
export function newGrantId(): string {
  return randomBytes(33).toString("base64url");
}
