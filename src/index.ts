/**
 * Entry point (package.json "main"): importing each module registers its functions with the
 * Functions host. Nothing else happens here.
 */
import "./activities";
import "./orchestrators/onboardTenant";
import "./functions/tenants";
import "./functions/openapi";
