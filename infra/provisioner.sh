#!/bin/sh
# Serving several Microsoft 365 tenants (README, "Serving several Microsoft 365 tenants"; issue 10):
# creates or updates, idempotently, the multi-tenant "provisioner" application in the app's home tenant,
# and points the Function App at it. Bicep cannot create Entra applications (without the Microsoft Graph
# extension), so this is a script, run like infra/grant-graph-permissions.sh. What it makes:
#   - an application with signInAudience AzureADMultipleOrgs, found again by its uniqueName
#     provisioner-<function app name>: PATCH /applications(uniqueName='...') with Prefer: create-if-missing
#     (learn.microsoft.com/graph/api/application-upsert), as src/activities/ensureApplication.ts does;
#   - requiredResourceAccess: the application permissions (type Role) the onboarding needs, the same set
#     infra/grant-graph-permissions.sh gives the managed identity for the home tenant:
#       Microsoft Graph  Application.ReadWrite.OwnedBy, Application.Read.All,
#                        DelegatedPermissionGrant.ReadWrite.All,
#                        Policy.ReadWrite.Authorization  ONLY with --allow-user-consent,
#                        Organization.Read.All           unless --ews-access off
#       Exchange Online  Exchange.ManageAsApp            unless --ews-access off (a customer's administrator
#                        must also assign the provisioner's service principal the Exchange Administrator
#                        (manage) or Global Reader (check) directory role: consent cannot assign directory roles)
#   - its web redirect URI https://<function app host>/api/consent/callback, where a customer's administrator
#     lands after admin consent (learn.microsoft.com/entra/identity-platform/v2-admin-consent);
#   - a federated identity credential that trusts the Function App's user-assigned managed identity: issuer
#     https://login.microsoftonline.com/<home tenant id>/v2.0, subject the identity's principal (object) id,
#     audience api://AzureADTokenExchange
#     (learn.microsoft.com/entra/workload-id/workload-identity-federation-config-app-trust-managed-identity).
#     The app never holds a secret of the provisioner: it presents its managed identity's token instead.
# Then it sets the app setting PROVISIONER_CLIENT_ID (az functionapp config appsettings set) and, under azd,
# the environment value PROVISIONER_CLIENT_ID, so the next `azd provision` keeps it (main.bicep
# provisionerClientId: the app settings resource replaces all settings on every provision).
#
# Run by a user who may register applications in the home tenant (the default user setting, or the
# Application Developer role), signed in with `az login`. No administrator is needed here: the permissions
# are granted per customer tenant, when that tenant's administrator consents. Nothing is ever removed; a
# redirect URI or permission added by hand is replaced by the set above (the script owns them).
#
# Usage: infra/provisioner.sh [--principal-id <object id>] [--tenant-id <home tenant id>]
#                             [--function-app <name>] [--resource-group <name>] [--redirect-uri <url>]
#                             [--allow-user-consent] [--ews-access manage|check|off] [--check]
#                             [--graph-url https://graph.microsoft.com] [--login-url https://login.microsoftonline.com]
#   --principal-id    the managed identity's object (principal) id; default $AZURE_IDENTITY_PRINCIPAL_ID
#   --tenant-id       the home tenant; default $AZURE_TENANT_ID, else the signed-in account's tenant
#   --function-app    default $AZURE_FUNCTION_APP_NAME; --resource-group default $AZURE_RESOURCE_GROUP
#   --redirect-uri    default $SERVICE_API_URI/api/consent/callback, else from the Function App's host name
#   --ews-access      as the app setting EWS_ACCESS (default $EWS_ACCESS, else check)
#   --allow-user-consent  also Policy.ReadWrite.Authorization (default when $ALLOW_USER_CONSENT_PERMISSION is true)
#   --login-url       the issuer's host (default: az cloud show's activeDirectory endpoint)
#   --check           report only; exit 1 if something is missing or different
# Values missing from the environment are read with `azd env get-value` when azd is installed.
set -eu

PRINCIPAL_ID="${AZURE_IDENTITY_PRINCIPAL_ID:-}"
TENANT_ID="${AZURE_TENANT_ID:-}"
FUNCTION_APP="${AZURE_FUNCTION_APP_NAME:-}"
RESOURCE_GROUP="${AZURE_RESOURCE_GROUP:-}"
REDIRECT_URI=""
ALLOW_USER_CONSENT=no
if [ "${ALLOW_USER_CONSENT_PERMISSION:-false}" = true ]; then ALLOW_USER_CONSENT=yes; fi
CHECK_ONLY=no
EWS_ACCESS="${EWS_ACCESS:-check}"
GRAPH_URL="${GRAPH_BASE_URL:-https://graph.microsoft.com}"
LOGIN_URL=""
GRAPH_APP_ID=00000003-0000-0000-c000-000000000000
EXCHANGE_APP_ID=00000002-0000-0ff1-ce00-000000000000
FIC_NAME=function-app-identity
FIC_AUDIENCE=api://AzureADTokenExchange

while [ $# -gt 0 ]; do
  case "$1" in
    --principal-id) PRINCIPAL_ID="$2"; shift 2 ;;
    --tenant-id) TENANT_ID="$2"; shift 2 ;;
    --function-app) FUNCTION_APP="$2"; shift 2 ;;
    --resource-group) RESOURCE_GROUP="$2"; shift 2 ;;
    --redirect-uri) REDIRECT_URI="$2"; shift 2 ;;
    --allow-user-consent) ALLOW_USER_CONSENT=yes; shift ;;
    --ews-access) EWS_ACCESS="$2"; shift 2 ;;
    --check) CHECK_ONLY=yes; shift ;;
    --graph-url) GRAPH_URL="$2"; shift 2 ;;
    --login-url) LOGIN_URL="$2"; shift 2 ;;
    -h|--help) sed -n '2,46p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
GRAPH_URL="${GRAPH_URL%/}"
case "$EWS_ACCESS" in
  manage|check|off) ;;
  *) echo "--ews-access must be manage, check or off" >&2; exit 2 ;;
esac

azd_value() { # azd_value <name>: the azd environment's value, empty without azd or an environment
  if command -v azd >/dev/null 2>&1; then azd env get-value "$1" 2>/dev/null || true; fi
}
[ -n "$PRINCIPAL_ID" ] || PRINCIPAL_ID="$(azd_value AZURE_IDENTITY_PRINCIPAL_ID)"
[ -n "$TENANT_ID" ] || TENANT_ID="$(azd_value AZURE_TENANT_ID)"
[ -n "$TENANT_ID" ] || TENANT_ID="$(az account show --query tenantId -o tsv)"
[ -n "$FUNCTION_APP" ] || FUNCTION_APP="$(azd_value AZURE_FUNCTION_APP_NAME)"
[ -n "$RESOURCE_GROUP" ] || RESOURCE_GROUP="$(azd_value AZURE_RESOURCE_GROUP)"
if [ -z "$PRINCIPAL_ID" ] || [ -z "$FUNCTION_APP" ] || [ -z "$RESOURCE_GROUP" ]; then
  echo "Need the managed identity's principal id, the Function App and its resource group: run through azd," >&2
  echo "eval \"\$(azd env get-values)\" first, or pass --principal-id, --function-app and --resource-group." >&2
  exit 2
fi
if [ -z "$REDIRECT_URI" ]; then
  api_uri="${SERVICE_API_URI:-$(azd_value SERVICE_API_URI)}"
  if [ -z "$api_uri" ]; then
    api_uri="https://$(az functionapp show -g "$RESOURCE_GROUP" -n "$FUNCTION_APP" --query defaultHostName -o tsv)"
  fi
  REDIRECT_URI="${api_uri%/}/api/consent/callback"
fi
if [ -z "$LOGIN_URL" ]; then
  LOGIN_URL="$(az cloud show --query endpoints.activeDirectory -o tsv 2>/dev/null || true)"
  LOGIN_URL="${LOGIN_URL:-https://login.microsoftonline.com}"
fi
LOGIN_URL="${LOGIN_URL%/}"
ISSUER="$LOGIN_URL/$TENANT_ID/v2.0"
UNIQUE_NAME="provisioner-$FUNCTION_APP"
DISPLAY_NAME="$FUNCTION_APP provisioner (creatio-o365-oauth)"

graph() { # graph <method> <path> [other az rest args]
  method="$1"; path="$2"; shift 2
  az rest --method "$method" --resource "$GRAPH_URL" --url "$GRAPH_URL/v1.0$path" "$@"
}

GRAPH_ROLES="Application.ReadWrite.OwnedBy Application.Read.All DelegatedPermissionGrant.ReadWrite.All"
if [ "$ALLOW_USER_CONSENT" = yes ]; then
  GRAPH_ROLES="$GRAPH_ROLES Policy.ReadWrite.Authorization"
fi
EXCHANGE_ROLES=""
if [ "$EWS_ACCESS" != off ]; then
  GRAPH_ROLES="$GRAPH_ROLES Organization.Read.All"
  EXCHANGE_ROLES="Exchange.ManageAsApp"
fi

# The app role ids, from the resource service principals' appRoles (the same in every tenant).
role_ids() { # role_ids <resource app id> <role values...>: "id,id,..." of resourceAccess entries
  resource_app_id="$1"; shift
  entries=""
  for role in "$@"; do
    id="$(graph GET "/servicePrincipals(appId='$resource_app_id')?\$select=appRoles" \
      --query "appRoles[?value=='$role' && contains(allowedMemberTypes, 'Application')].id | [0]" -o tsv)"
    if [ -z "$id" ]; then
      echo "  ERROR   $role: no such application permission on $resource_app_id" >&2
      exit 1
    fi
    entries="$entries${entries:+,}{\"id\":\"$id\",\"type\":\"Role\"}"
  done
  printf '%s' "$entries"
}
# shellcheck disable=SC2086 # the role lists are space-separated words on purpose
GRAPH_ACCESS="$(role_ids "$GRAPH_APP_ID" $GRAPH_ROLES)" || exit 1
REQUIRED="{\"resourceAppId\":\"$GRAPH_APP_ID\",\"resourceAccess\":[$GRAPH_ACCESS]}"
if [ -n "$EXCHANGE_ROLES" ]; then
  # shellcheck disable=SC2086
  EXCHANGE_ACCESS="$(role_ids "$EXCHANGE_APP_ID" $EXCHANGE_ROLES)" || exit 1
  REQUIRED="$REQUIRED,{\"resourceAppId\":\"$EXCHANGE_APP_ID\",\"resourceAccess\":[$EXCHANGE_ACCESS]}"
fi
# The role ids alone, one a line, to compare with what the application holds.
WANTED_IDS="$(printf '%s' "$GRAPH_ACCESS,${EXCHANGE_ACCESS:-}" | tr ',' '\n' | sed -n 's/.*"id":"\([^"]*\)".*/\1/p' | sort)"

APP_PATH="/applications(uniqueName='$UNIQUE_NAME')"
echo "Provisioner application $UNIQUE_NAME in tenant $TENANT_ID"
echo "  redirect URI        $REDIRECT_URI"
echo "  trusts the identity $PRINCIPAL_ID (issuer $ISSUER)"

missing=0
ok() { echo "  ok      $1"; }
lacks() { echo "  MISSING $1"; missing=$((missing + 1)); }

APP_ID="$(graph GET "$APP_PATH?\$select=appId" --query appId -o tsv 2>/dev/null || true)"
if [ "$CHECK_ONLY" = yes ]; then
  if [ -z "$APP_ID" ]; then
    lacks "application $UNIQUE_NAME"
  else
    if [ "$(graph GET "$APP_PATH?\$select=signInAudience" --query signInAudience -o tsv)" = AzureADMultipleOrgs ]; then
      ok "multi-tenant (AzureADMultipleOrgs)"
    else
      lacks "signInAudience AzureADMultipleOrgs"
    fi
    if graph GET "$APP_PATH?\$select=web" --query "web.redirectUris" -o tsv | grep -qxF "$REDIRECT_URI"; then
      ok "redirect URI"
    else
      lacks "redirect URI $REDIRECT_URI"
    fi
    held="$(graph GET "$APP_PATH?\$select=requiredResourceAccess" --query "requiredResourceAccess[].resourceAccess[?type=='Role'].id[]" -o tsv | sort)"
    if [ "$held" = "$WANTED_IDS" ]; then
      ok "application permissions"
    else
      lacks "application permissions (run without --check to set them)"
    fi
  fi
else
  # Create or update in one call (201 when created, 204 when updated).
  graph PATCH "$APP_PATH" --headers "Content-Type=application/json" "Prefer=create-if-missing" \
    --body "{\"displayName\":\"$DISPLAY_NAME\",\"signInAudience\":\"AzureADMultipleOrgs\",\"web\":{\"redirectUris\":[\"$REDIRECT_URI\"]},\"requiredResourceAccess\":[$REQUIRED]}" \
    -o none
  APP_ID="$(graph GET "$APP_PATH?\$select=appId" --query appId -o tsv)"
  echo "  SET     application $APP_ID: multi-tenant, redirect URI, application permissions"
fi

# The federated identity credential for the managed identity.
if [ -n "$APP_ID" ]; then
  OBJECT_ID="$(graph GET "$APP_PATH?\$select=id" --query id -o tsv)"
  FICS="/applications/$OBJECT_ID/federatedIdentityCredentials"
  fic=""
  tries=0
  # A new application can take a few seconds to be readable everywhere (replication); retry briefly.
  while :; do
    if fic="$(graph GET "$FICS" --query "value[?name=='$FIC_NAME'] | [0].[id, issuer, subject, audiences[0]]" -o tsv 2>/dev/null)"; then break; fi
    tries=$((tries + 1))
    if [ $tries -ge 6 ]; then echo "  ERROR   cannot read the federated credentials of $APP_ID" >&2; exit 1; fi
    sleep 5
  done
  fic_id="$(printf '%s\n' "$fic" | sed -n 1p)"
  want="$(printf '%s\n%s\n%s' "$ISSUER" "$PRINCIPAL_ID" "$FIC_AUDIENCE")"
  have="$(printf '%s\n' "$fic" | sed -n '2,4p')"
  body="{\"issuer\":\"$ISSUER\",\"subject\":\"$PRINCIPAL_ID\",\"audiences\":[\"$FIC_AUDIENCE\"],\"description\":\"The Function App $FUNCTION_APP's user-assigned managed identity\"}"
  if [ -n "$fic_id" ] && [ "$have" = "$want" ]; then
    ok "federated credential $FIC_NAME"
  elif [ "$CHECK_ONLY" = yes ]; then
    lacks "federated credential $FIC_NAME (issuer $ISSUER, subject $PRINCIPAL_ID, audience $FIC_AUDIENCE)"
  elif [ -n "$fic_id" ]; then
    graph PATCH "$FICS/$fic_id" --headers "Content-Type=application/json" --body "$body" -o none
    echo "  SET     federated credential $FIC_NAME"
  else
    graph POST "$FICS" --headers "Content-Type=application/json" \
      --body "{\"name\":\"$FIC_NAME\",${body#\{}" -o none
    echo "  ADDED   federated credential $FIC_NAME"
  fi

  # The app setting, and azd's value so the next provision keeps it.
  current="$(az functionapp config appsettings list -g "$RESOURCE_GROUP" -n "$FUNCTION_APP" \
    --query "[?name=='PROVISIONER_CLIENT_ID'].value | [0]" -o tsv)"
  if [ "$current" = "$APP_ID" ]; then
    ok "app setting PROVISIONER_CLIENT_ID"
  elif [ "$CHECK_ONLY" = yes ]; then
    lacks "app setting PROVISIONER_CLIENT_ID=$APP_ID"
  else
    az functionapp config appsettings set -g "$RESOURCE_GROUP" -n "$FUNCTION_APP" --settings "PROVISIONER_CLIENT_ID=$APP_ID" -o none
    echo "  SET     app setting PROVISIONER_CLIENT_ID=$APP_ID (the app restarts)"
  fi
  if [ "$CHECK_ONLY" != yes ] && command -v azd >/dev/null 2>&1 && azd env get-values >/dev/null 2>&1; then
    azd env set PROVISIONER_CLIENT_ID "$APP_ID"
    echo "  SET     azd environment PROVISIONER_CLIENT_ID (kept by the next azd provision)"
  fi
fi

if [ "$missing" -gt 0 ]; then
  exit 1
fi
echo "The provisioner is in place. Onboard a site of another tenant with \"entraTenantId\" in POST /api/tenants;"
echo "its status gives the admin consent URL a Global Administrator (or Privileged Role Administrator) of that tenant opens."
if [ "$EWS_ACCESS" != off ]; then
  role="Global Reader"
  if [ "$EWS_ACCESS" = manage ]; then role="Exchange Administrator"; fi
  echo "EWS_ACCESS=$EWS_ACCESS: in each customer tenant, its administrator also assigns the provisioner's service principal"
  echo "the directory role $role (consent cannot assign directory roles)."
fi
