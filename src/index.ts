/**
 * Entry point (package.json "main"): importing each module registers its functions with the
 * Functions host. Nothing else happens here.
 */
import "./activities";
import "./orchestrators/onboardTenant";
import "./orchestrators/rotateSecret";
import "./functions/tenants";
import "./functions/rotate";
import "./functions/rotationSweep";
import "./functions/keyVaultEvents";
import "./functions/openapi";
