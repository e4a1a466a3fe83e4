import * as df from "durable-functions";
import { ensureApplicationActivity } from "./ensureApplication";
import { ensureServicePrincipalActivity } from "./ensureServicePrincipal";
import { grantAdminConsentActivity } from "./grantAdminConsent";
import { allowEwsAccessActivity } from "./allowEwsAccess";
import { issueClientSecretActivity } from "./issueClientSecret";
import { configureCreatioActivity } from "./configureCreatio";
import { allowUserConsentActivity } from "./allowUserConsent";
import { beginRotationActivity } from "./beginRotation";
import { recordSiteStateActivity } from "./recordSiteState";
import { checkCreatioSiteActivity } from "./checkCreatioSite";
import { removeOldPasswordActivity } from "./removeOldPassword";
import { removeStrayPasswordsActivity } from "./removeStrayPasswords";
import { unlinkCreatioActivity } from "./unlinkCreatio";
import { removeEwsAccessActivity } from "./removeEwsAccess";
import { deleteApplicationActivity } from "./deleteApplication";
import { deleteSiteSecretActivity } from "./deleteSiteSecret";
import { checkTenantAccessActivity } from "./checkTenantAccess";

/**
 * Every activity, registered once: onboarding, rotation and offboarding; onboarding and rotation share issueClientSecret and
 * configureCreatio, so registration lives here rather than in either orchestrator.
 */
export const activities = [
  checkTenantAccessActivity,
  checkCreatioSiteActivity,
  ensureApplicationActivity,
  ensureServicePrincipalActivity,
  grantAdminConsentActivity,
  allowEwsAccessActivity,
  issueClientSecretActivity,
  configureCreatioActivity,
  allowUserConsentActivity,
  beginRotationActivity,
  recordSiteStateActivity,
  removeOldPasswordActivity,
  removeStrayPasswordsActivity,
  unlinkCreatioActivity,
  removeEwsAccessActivity,
  deleteApplicationActivity,
  deleteSiteSecretActivity,
] as const;

for (const activity of activities) {
  // The input is validated by each handler's zod schema; a bad input fails the activity, not the worker.
  df.app.activity(activity.name, { handler: (input: unknown) => activity.handler(input) });
}
