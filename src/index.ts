/**
 * Entry point (package.json "main"): importing each module registers its functions with the
 * Functions host. Nothing else happens here.
 */
import "./activities";
import "./orchestrators/onboardTenant";
import "./orchestrators/rotateSecret";
import "./orchestrators/offboardTenant";
import "./functions/tenants";
import "./functions/rotate";
import "./functions/offboard";
import "./functions/rotationPlan";
import "./functions/rotationSweep";
import "./functions/keyVaultEvents";
import "./functions/openapi";
import "./functions/consentCallback";
