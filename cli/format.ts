import Table from "cli-table3";

/**
 * What the command line prints, as pure functions of the API's answers (shapes: src/api/schemas.ts;
 * GET /api/rotation-plan and DELETE /api/tenants/{host} as issue 11 specifies them). No I/O here, so
 * test/cli/format.test.ts checks every line.
 */

export type Paint = (style: Style, text: string) => string;
export type Style = "red" | "yellow" | "green" | "dim" | "bold" | "cyan";

const ANSI: Record<Style, [number, number]> = { red: [31, 39], yellow: [33, 39], green: [32, 39], cyan: [36, 39], dim: [2, 22], bold: [1, 22] };

/** Colour only on a terminal, and never when NO_COLOR is set to anything non-empty (no-color.org). */
export function colourEnabled(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv): boolean {
  return Boolean(stream.isTTY) && !env.NO_COLOR;
}

export function painter(enabled: boolean): Paint {
  return enabled ? (style, text) => `\u001b[${ANSI[style][0]}m${text}\u001b[${ANSI[style][1]}m` : (_style, text) => text;
}

export const plain: Paint = painter(false);

const STATE_RANK: Record<string, number> = { broken: 0, atRisk: 1, healthy: 2 };
const STATE_STYLE: Record<string, Style> = { broken: "red", atRisk: "yellow", healthy: "green" };

/** Days until the secret Creatio holds expires: rotation.daysLeft, else the summary's daysLeft; null when Creatio holds none. */
export function daysLeftOf(site: any): number | null {
  const days = site?.rotation?.daysLeft ?? site?.daysLeft;
  return typeof days === "number" ? days : null;
}

/** Least healthy first: broken, atRisk, healthy (unknown states first of all), then fewest days (no secret first), then host. */
export function sortSites<T>(sites: T[]): T[] {
  const rank = (s: any) => STATE_RANK[s?.health?.state] ?? -1;
  const days = (s: any) => daysLeftOf(s) ?? Number.NEGATIVE_INFINITY;
  return [...sites].sort((a: any, b: any) => rank(a) - rank(b) || days(a) - days(b) || String(a?.host).localeCompare(String(b?.host)));
}

/** A small bar of `width` cells, full at `fullAt` days (Entra's longest secret lifetime, 730 days). */
export function daysBar(days: number | null, width = 10, fullAt = 730): string {
  if (days === null) return "";
  const filled = Math.max(0, Math.min(width, Math.round((Math.max(0, days) / fullAt) * width)));
  // At least one cell while there is a day left, so "almost empty" and "expired" differ.
  const cells = days > 0 ? Math.max(1, filled) : 0;
  return "█".repeat(cells) + "░".repeat(width - cells);
}

export function daysText(days: number | null): string {
  if (days === null) return "no secret";
  if (days < 0) return `expired ${-days}d ago`;
  return `${days}d`;
}

/** The day of an ISO timestamp (YYYY-MM-DD), or "" for null. */
export function day(iso: unknown): string {
  return typeof iso === "string" && iso.length >= 10 ? iso.slice(0, 10) : "";
}

/** The Entra tenant of a site (TenantSummary/TenantStatus): "home" for the app's home tenant, else the tenant id; "" when the server does not say. */
export function tenantOf(site: any): string {
  if (site?.homeTenant === true) return "home";
  const t = site?.entraTenantId ?? site?.tenantId ?? site?.tenant;
  return typeof t === "string" ? t : "";
}

function newTable(head: string[], paint: Paint): Table.Table {
  return new Table({
    head: head.map((h) => paint("bold", h)),
    // cli-table3 colours the head and border itself unless told not to.
    style: { head: [], border: [], compact: true },
    chars: { mid: "", "left-mid": "", "mid-mid": "", "right-mid": "" },
  });
}

/** `creatio-o365 sites`. */
export function formatSites(sites: any[], paint: Paint = plain): string {
  if (sites.length === 0) return "No managed sites. Onboard one with: creatio-o365 onboard https://<site> --credential <name>";
  const table = newTable(["SITE", "TENANT", "STATE", "MAIL", "SECRET EXPIRES IN", "NEXT ROTATION"], paint);
  for (const s of sortSites(sites)) {
    const state = String(s?.health?.state ?? "");
    const days = daysLeftOf(s);
    const bar = daysBar(days);
    const daysStyle: Style | undefined = days === null || days < 7 ? "red" : days <= 30 ? "yellow" : undefined;
    const daysCell = `${bar ? `${bar} ` : ""}${daysText(days)}`;
    const offboarded = siteStateNote(s);
    table.push([
      `${s?.host ?? ""}${offboarded}`,
      tenantOf(s),
      STATE_STYLE[state] ? paint(STATE_STYLE[state]!, state) : state,
      s?.mail?.ews ?? "",
      daysStyle ? paint(daysStyle, daysCell) : daysCell,
      day(s?.rotation?.nextRotationDueAt) || "",
    ]);
  }
  return table.toString();
}

/** " (offboarded)" or " (offboarding)" for a site that is not simply managed (TenantSummary/TenantStatus `state`); else "". */
export function siteStateNote(site: any): string {
  const state = site?.state ?? (site?.offboarded === true ? "offboarded" : undefined);
  return state === "offboarded" || state === "offboarding" ? ` (${state})` : "";
}

function section(title: string, rows: [string, unknown][], paint: Paint): string[] {
  const shown = rows.filter(([, v]) => v !== undefined);
  if (shown.length === 0) return [];
  const width = Math.max(...shown.map(([k]) => k.length));
  return ["", paint("bold", title), ...shown.map(([k, v]) => `  ${k.padEnd(width)}  ${v === null || v === "" ? "-" : String(v)}`)];
}

/** `creatio-o365 site <host>`: everything GET /api/tenants/{host} says, by section. */
export function formatSite(t: any, paint: Paint = plain): string {
  const state = String(t?.health?.state ?? "unknown");
  const lines: string[] = [`${paint("bold", t?.host ?? "")}  ${STATE_STYLE[state] ? paint(STATE_STYLE[state]!, state) : state}${siteStateNote(t)}`];
  lines.push(
    ...section(
      "Health",
      [
        ["state", state],
        ["mail stops on", day(t?.health?.mailStopsOn) || null],
        ["days until then", t?.health?.daysUntilMailStops ?? null],
      ],
      paint,
    ),
  );
  const problems: string[] = t?.health?.problems ?? [];
  if (problems.length > 0) lines.push("  problems:", ...problems.map((p) => `    - ${p}`));
  const warnings: string[] = t?.warnings ?? [];
  if (warnings.length > 0) lines.push("  warnings:", ...warnings.map((w) => `    - ${w}`));
  const off = t?.offboarded;
  if (off && typeof off === "object") {
    lines.push(
      ...section(
        "Offboarded",
        [
          ["at", off.at ?? null],
          ["instance", off.instanceId ?? undefined],
          ["secret deleted", off.secretDeletedOn ?? undefined],
          ["secret recoverable until", off.secretPurgeOn ?? undefined],
          ["app restorable until", off.applicationRestorableUntil ?? undefined],
          ["restore", off.restore ?? undefined],
        ],
        paint,
      ),
    );
  }

  const consent = t?.adminConsent;
  if (consent?.url) {
    lines.push(
      ...section(
        "Waiting for admin consent",
        [
          ["tenant", consent.tenantId],
          ["consent URL", consent.url],
          ["waits until", consent.waitingUntil],
          ["next", "an administrator of that tenant (Global Administrator or Privileged Role Administrator) opens the URL and accepts; the onboarding then continues"],
        ],
        paint,
      ),
    );
  }

  lines.push(
    ...section(
      "Application",
      [
        ["tenant", (t?.homeTenant === true && t?.entraTenantId ? `home (${t.entraTenantId})` : tenantOf(t)) || undefined],
        ["site URL", t?.creatioUrl],
        ["app id", t?.appId ?? null],
        ["application object", t?.applicationObjectId ?? null],
        ["service principal", t?.servicePrincipalId ?? null],
        ["redirect URI", t?.redirectUri],
        ["permission profile", t?.permissionProfile ?? null],
        ["granted scopes", Array.isArray(t?.grantedScopes) ? t.grantedScopes.join(" ") : undefined],
      ],
      paint,
    ),
  );

  const mail = t?.mail;
  lines.push(
    ...section(
      "Mail (Exchange Online EWS)",
      mail
        ? [
            ["readiness", mail.ews],
            ["checked", mail.checkedAt ?? null],
            ["reason", mail.reason ?? undefined],
            ["fix", mail.fix ?? undefined],
            ["EWS shuts down", `${mail.ewsShutdownOn} (${mail.daysToShutdown} days)`],
          ]
        : [["readiness", "unknown (tags unreadable)"]],
      paint,
    ),
  );

  const c = t?.creatio;
  if (c) {
    const check = c.check ? `${c.check.state}${c.check.clientId ? ` (linked client id ${c.check.clientId})` : ""}${c.check.detail ? `: ${c.check.detail}` : ""}` : null;
    lines.push(
      ...section(
        "Creatio",
        [
          ["credential secret", c.credentialSecretName ?? null],
          ["mail server", c.mailServerId ?? null],
          ["last synced", c.syncedAt ?? null],
          ["holds keyId", c.syncedKeyId ?? null],
          ["its secret expires", c.secretExpiresOn ?? null],
          ["holds current secret", c.holdsCurrentSecret === undefined ? undefined : c.holdsCurrentSecret ? "yes" : "no"],
          ["live check", check],
          ["drift", c.drift === null || c.drift === undefined ? null : c.drift ? "yes: the mail server no longer uses this site's app" : "no"],
          ["basic-auth mailboxes cleared", c.passwordMailboxesCleared ?? undefined],
        ],
        paint,
      ),
    );
  }

  const s = t?.secret;
  lines.push(
    ...section(
      "Secret (Key Vault; never its value)",
      s
        ? [
            ["name", s.name],
            ["version", s.version ?? null],
            ["keyId", s.keyId ?? null],
            ["expires", s.expiresOn ?? null],
            ["days left", s.daysLeft ?? null],
          ]
        : [["name", null]],
      paint,
    ),
  );

  const r = t?.rotation;
  if (r) {
    lines.push(
      ...section(
        "Rotation",
        [
          ["state", r.state ?? null],
          ["last rotated", r.lastRotatedAt ?? null],
          ["last outcome", r.lastOutcome ?? null],
          ["failed step", r.lastFailedStep ?? undefined],
          ["current keyId", r.currentKeyId ?? null],
          ["previous keyId", r.previousKeyId ?? null],
          ["Creatio's secret expires", r.expiresOn ?? null],
          ["days left", r.daysLeft ?? null],
          ["next rotation due", r.nextRotationDueAt ?? null],
          ["due now", r.due ? `yes (${r.dueReason ?? "due"})` : "no"],
        ],
        paint,
      ),
    );
  }

  const last = t?.lastRun;
  lines.push(
    ...section(
      "Last run",
      last
        ? [
            ["kind", last.kind],
            ["outcome", last.outcome === "failed" ? paint("red", last.outcome) : last.outcome],
            ["failed step", last.step ?? undefined],
            ["at", last.at],
            ["instance", last.instanceId ?? undefined],
          ]
        : [["kind", null]],
      paint,
    ),
  );

  const runs = [
    ["onboarding", t?.onboarding],
    ["rotation", t?.rotationRun],
    ["offboarding", t?.offboarding],
  ].filter(([, run]) => run) as [string, any][];
  if (runs.length > 0) {
    lines.push("", paint("bold", "Runs"));
    for (const [kind, run] of runs) {
      const step = run.currentStep ? `, ${stepLabel(run.currentStep)}` : "";
      lines.push(`  ${kind}: ${run.instanceId} ${run.runtimeStatus}${step}${run.lastUpdatedTime ? ` (updated ${run.lastUpdatedTime})` : ""}`);
      if (run.error) lines.push(`    error: ${run.error}`);
      if (run.graceEndsAt) lines.push(`    grace period ends: ${run.graceEndsAt}`);
    }
  }
  return lines.join("\n");
}

/** "step 3 of 7: grantAdminConsent" (with the attempt after the first). */
export function stepLabel(p: any): string {
  if (!p || typeof p.step !== "string") return "starting";
  if (p.step === "done") return "done";
  const attempt = typeof p.attempt === "number" && p.attempt > 1 ? ` (attempt ${p.attempt})` : "";
  return typeof p.stepNumber === "number" && typeof p.totalSteps === "number" && p.stepNumber > 0 ? `step ${p.stepNumber} of ${p.totalSteps}: ${p.step}${attempt}` : `${p.step}${attempt}`;
}

/**
 * The lines a change of custom status (src/orchestrators/steps.ts StepProgress) prints while a run is
 * followed: the step, a retry and why, the grace period, an admin consent to give. `previous` is
 * the last status shown; nothing is printed for an unchanged one.
 */
export function progressLines(previous: any, next: any): string[] {
  if (!next || typeof next !== "object") return [];
  if (previous && JSON.stringify(previous) === JSON.stringify(next)) return [];
  const lines: string[] = [];
  const sameStep = previous && previous.step === next.step && previous.stepNumber === next.stepNumber && previous.attempt === next.attempt;
  if (!sameStep && next.step !== "done" && !next.error) lines.push(stepLabel(next));
  if (next.retryAt && (!previous || previous.retryAt !== next.retryAt)) {
    lines.push(`  attempt ${next.attempt ?? "?"} of ${next.step} failed: ${next.lastError ?? "unknown error"}; retrying at ${next.retryAt}`);
  }
  if (next.graceEndsAt && (!previous || previous.graceEndsAt !== next.graceEndsAt)) lines.push(`  grace period: the old secret stays valid until ${next.graceEndsAt}`);
  if (next.adminConsentUrl && (!previous || previous.adminConsentUrl !== next.adminConsentUrl)) {
    lines.push(
      `  waiting for admin consent until ${next.waitingUntil ?? "(no deadline given)"}: an administrator of tenant ${next.tenantId ?? "(unknown)"} (Global Administrator or Privileged Role Administrator) opens ${next.adminConsentUrl ?? "(no URL given)"} and accepts; the onboarding then continues`,
      ...(next.waitingFor ? [`  (${next.waitingFor})`] : []),
    );
  }
  return lines;
}

/** What went wrong in a run that ended Failed or Terminated: its step and the message naming the next action. */
export function failureText(kind: string, status: any): string {
  const custom = status?.customStatus;
  const output = status?.output;
  const message =
    (typeof custom?.error === "string" && custom.error) ||
    (typeof output === "string" && output) ||
    (typeof output?.error === "string" && output.error) ||
    (typeof output?.message === "string" && output.message) ||
    `the run ended ${status?.runtimeStatus ?? "without a status"}`;
  const step = typeof custom?.step === "string" && custom.step !== "done" && custom.step !== "starting" ? custom.step : undefined;
  const named = step && !message.includes(step) ? ` at ${step}` : "";
  return `${kind} ${String(status?.runtimeStatus ?? "failed").toLowerCase()}${named}: ${message}`;
}

/** Final lines of a completed onboarding: app id, secret expiry, mail readiness, health (from GET /api/tenants/{host} when it answered). */
export function onboardSummary(output: any, tenant: any | undefined, paint: Paint = plain): string {
  const health = tenant?.health;
  const mail = tenant?.mail ?? output?.mail;
  const lines = [
    paint("green", `onboarded ${output?.host ?? tenant?.host ?? ""}`),
    `  app id          ${output?.appId ?? tenant?.appId ?? "-"}`,
    `  secret expires  ${output?.secret?.expiresOn ?? tenant?.secret?.expiresOn ?? "-"}  (Key Vault ${output?.secret?.name ?? tenant?.secret?.name ?? "-"}; the value is never shown)`,
    `  mail readiness  ${mail?.ews ?? "unknown"}${mail?.reason ? `: ${mail.reason}` : ""}`,
  ];
  if (mail?.fix) lines.push(`  fix (Exchange administrator): ${mail.fix}`);
  if (health) {
    lines.push(`  health          ${health.state}`);
    for (const p of health.problems ?? []) lines.push(`    - ${p}`);
  }
  const cleared = output?.creatio?.passwordMailboxesCleared;
  if (typeof cleared === "number" && cleared > 0) lines.push(`  ${cleared} basic-auth mailbox(es) lost their stored password: those users connect again with Microsoft sign-in`);
  return lines.join("\n");
}

export function rotateSummary(output: any, tenant: any | undefined, paint: Paint = plain): string {
  const lines = [
    paint("green", `rotated ${output?.host ?? tenant?.host ?? ""}`),
    `  new keyId        ${output?.keyId ?? "-"}${output?.issuedNewSecret === false ? " (delivered a secret an earlier run issued)" : ""}`,
    `  secret expires   ${output?.expiresOn ?? "-"}`,
    `  old password     ${output?.previousKeyId ?? "none"}${output?.graceEndedAt ? `, grace period ended ${output.graceEndedAt}` : ""}`,
  ];
  if (tenant?.health) lines.push(`  health           ${tenant.health.state}`, ...(tenant.health.problems ?? []).map((p: string) => `    - ${p}`));
  return lines.join("\n");
}

/**
 * Final lines of a completed offboarding, from offboardTenant's output (per step: Creatio, Exchange,
 * Entra, Key Vault) and, when the status answered, how to restore the site.
 */
export function offboardSummary(host: string, output: any, tenant: any | undefined = undefined, paint: Paint = plain): string {
  const lines = [paint("green", `offboarded ${host}`)];
  const known = output && typeof output === "object" && ["creatio", "exchange", "application", "keyVault"].some((k) => k in output);
  if (known) {
    const actions = (x: any, none: string) => (Array.isArray(x?.actions) && x.actions.length > 0 ? x.actions.join(", ") : none);
    const c = output.creatio;
    if (c) lines.push(`  Creatio     ${actions(c, "nothing changed")}${c.note ? `: ${c.note}` : ""}`);
    const e = output.exchange;
    if (e) lines.push(`  Exchange    ${actions(e, "nothing removed")}${e.note ? `: ${e.note}` : ""}`);
    const a = output.application;
    if (a) lines.push(`  Entra app   ${a.outcome ?? "?"}${a.appId ? ` (${a.appId})` : ""}${a.restorableUntil ? `, restorable until ${a.restorableUntil}` : ""}`);
    const k = output.keyVault;
    if (k) lines.push(`  Key Vault   secret ${k.secretName ?? ""} ${k.outcome ?? "?"}${k.scheduledPurgeDate ? `, recoverable until ${k.scheduledPurgeDate}` : ""}`);
    if (Array.isArray(c?.actions) && c.actions.includes("unlinked-mail-server")) lines.push("  Every user's Office 365 mailbox in that Creatio is disconnected.");
  } else if (typeof output === "string") lines.push(`  ${output}`);
  else if (output && typeof output === "object") {
    for (const [k, v] of Object.entries(output)) {
      if (k === "host") continue;
      lines.push(`  ${k}: ${typeof v === "object" ? JSON.stringify(v) : String(v)}`);
    }
  }
  const restore = tenant?.offboarded?.restore;
  if (typeof restore === "string") lines.push(`  restore: ${restore}`);
  return lines.join("\n");
}

/** `creatio-o365 plan`: GET /api/rotation-plan (issue 11, item 2 and 4). */
export function formatPlan(plan: any, paint: Paint = plain): string {
  const sites: any[] = Array.isArray(plan?.sites) ? plan.sites : [];
  const lines: string[] = [];
  lines.push(`Rotation plan at ${plan?.generatedAt ?? "?"} (a site is due ${plan?.rotateDaysBeforeExpiry ?? "?"} days before Creatio's secret expires)`);
  if (sites.length === 0) lines.push("No managed sites.");
  else {
    const table = newTable(["SITE", "DUE", "REASON", "CREATIO'S SECRET EXPIRES", "DUE ON", "DAYS LEFT"], paint);
    const ordered = [...sites].sort((a, b) => Number(b.due) - Number(a.due) || (a.daysLeft ?? -Infinity) - (b.daysLeft ?? -Infinity) || String(a.host).localeCompare(String(b.host)));
    for (const s of ordered) {
      table.push([s.host ?? "", s.due ? paint("yellow", "yes") : "no", s.reason ?? "", day(s.creatioSecretExpiresOn), day(s.dueOn), s.daysLeft ?? ""]);
    }
    lines.push(table.toString());
    const due = sites.filter((s) => s.due).length;
    lines.push(`${due} of ${sites.length} site(s) due: the next sweep starts ${due === 1 ? "that rotation" : "those rotations"}.`);
  }
  lines.push(lastSweepLine(plan?.lastSweep));
  return lines.join("\n");
}

/** The last sweep (LastSweep: at, outcome, the counts, error) in one line. */
export function lastSweepLine(sweep: any): string {
  if (!sweep) return "Last sweep: none recorded yet.";
  const n = (k: string) => (typeof sweep[k] === "number" ? sweep[k] : "?");
  const failed = sweep.outcome === "failed" ? ` FAILED${sweep.error ? ` (${sweep.error})` : ""}` : "";
  const mail = sweep.mailChecked === false ? "mail readiness not checked" : `${n("notMailReady")} not mail-ready`;
  const extra = [
    typeof sweep.offboarded === "number" && sweep.offboarded > 0 ? `${sweep.offboarded} offboarded left alone` : "",
    typeof sweep.unreadable === "number" && sweep.unreadable > 0 ? `${sweep.unreadable} unreadable` : "",
  ].filter(Boolean);
  return `Last sweep: ${sweep.at ?? "?"}${failed}: ${n("managed")} managed, ${n("due")} due, ${n("started")} started, ${n("skipped")} skipped, ${n("expired")} expired, ${mail}${extra.length > 0 ? `, ${extra.join(", ")}` : ""}.`;
}
