#!/bin/sh
# One-time step: give the app's managed identity the Microsoft Graph application permissions it needs,
# and nothing more (docs/architecture.md, "Microsoft Graph and Entra ID"):
#   Application.ReadWrite.OwnedBy           create the Creatio app registrations, delete them when a site is
#                                           offboarded; manage only apps it owns
#   Application.Read.All                    read the Microsoft Graph / Exchange Online service principals
#   DelegatedPermissionGrant.ReadWrite.All  grant admin consent (oauth2PermissionGrants) - powerful, see README
#   Policy.ReadWrite.Authorization          ONLY with --allow-user-consent (onboarding with allowUserConsent=true)
#   Organization.Read.All                   unless --ews-access off: tenant id and initial domain for the
#                                           Exchange Online admin API (X-AnchorMailbox)
# and for EWS_ACCESS (docs/architecture.md, "Exchange Online"), unless --ews-access off:
#   Exchange.ManageAsApp on Office 365 Exchange Online (app role dc50a0fb-09a3-484d-be87-e023b12c6440)
#   an Entra directory role, assigned at tenant scope: Global Reader for check (read only),
#                                           Exchange Administrator for manage (see README, "Security model":
#                                           it can change every Exchange setting of the organization)
# Exchange Online answers 401 without the app role and 403 with the app role but no directory role.
#
# Run by an administrator who may assign app roles (Privileged Role Administrator or Global
# Administrator), signed in with `az login`. Idempotent: a permission already granted is reported and
# left alone; nothing is ever removed (an extra permission is reported so you can remove it yourself).
# Same effect as infra/graph-permissions.bicep (azd env set GRANT_GRAPH_PERMISSIONS true).
# Graph calls: POST /servicePrincipals/{resource-id}/appRoleAssignedTo
# (learn.microsoft.com/graph/api/serviceprincipal-post-approleassignedto) and
# POST /roleManagement/directory/roleAssignments (learn.microsoft.com/graph/api/rbacapplication-post-roleassignments).
#
# Usage: infra/grant-graph-permissions.sh [--principal-id <object id>] [--allow-user-consent]
#                                          [--ews-access manage|check|off]
#                                          [--check] [--graph-url https://graph.microsoft.com]
#   --ews-access    as the app setting EWS_ACCESS (default $EWS_ACCESS, else check)
#   --principal-id  the managed identity's object (principal) id; default $AZURE_IDENTITY_PRINCIPAL_ID,
#                   else `azd env get-value AZURE_IDENTITY_PRINCIPAL_ID`
#   --check         report only; exit 1 if a permission is missing
set -eu

PRINCIPAL_ID="${AZURE_IDENTITY_PRINCIPAL_ID:-}"
ALLOW_USER_CONSENT=no
CHECK_ONLY=no
EWS_ACCESS="${EWS_ACCESS:-check}"
EXCHANGE_APP_ID=00000002-0000-0ff1-ce00-000000000000
GRAPH_URL="${GRAPH_BASE_URL:-https://graph.microsoft.com}"
GRAPH_APP_ID=00000003-0000-0000-c000-000000000000

while [ $# -gt 0 ]; do
  case "$1" in
    --principal-id) PRINCIPAL_ID="$2"; shift 2 ;;
    --allow-user-consent) ALLOW_USER_CONSENT=yes; shift ;;
    --check) CHECK_ONLY=yes; shift ;;
    --ews-access) EWS_ACCESS="$2"; shift 2 ;;
    --graph-url) GRAPH_URL="$2"; shift 2 ;;
    -h|--help) sed -n '2,37p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
GRAPH_URL="${GRAPH_URL%/}"
case "$EWS_ACCESS" in
  manage) DIRECTORY_ROLE="Exchange Administrator" ;;
  check) DIRECTORY_ROLE="Global Reader" ;;
  off) DIRECTORY_ROLE="" ;;
  *) echo "--ews-access must be manage, check or off" >&2; exit 2 ;;
esac

if [ -z "$PRINCIPAL_ID" ] && command -v azd >/dev/null 2>&1; then
  PRINCIPAL_ID="$(azd env get-value AZURE_IDENTITY_PRINCIPAL_ID 2>/dev/null || true)"
fi
if [ -z "$PRINCIPAL_ID" ]; then
  echo "No managed identity given: pass --principal-id <object id> (azd output AZURE_IDENTITY_PRINCIPAL_ID)." >&2
  exit 2
fi

ROLES="Application.ReadWrite.OwnedBy Application.Read.All DelegatedPermissionGrant.ReadWrite.All"
if [ "$ALLOW_USER_CONSENT" = yes ]; then
  ROLES="$ROLES Policy.ReadWrite.Authorization"
fi
if [ "$EWS_ACCESS" != off ]; then
  ROLES="$ROLES Organization.Read.All"
fi

graph() { # graph <method> <path> [--body json] [other az rest args]
  method="$1"; path="$2"; shift 2
  az rest --method "$method" --resource "$GRAPH_URL" --url "$GRAPH_URL/v1.0$path" "$@"
}

GRAPH_SP_ID="$(graph GET "/servicePrincipals(appId='$GRAPH_APP_ID')?\$select=id" --query id -o tsv)"
IDENTITY_NAME="$(graph GET "/servicePrincipals/$PRINCIPAL_ID?\$select=displayName" --query displayName -o tsv)"
echo "Managed identity: $IDENTITY_NAME ($PRINCIPAL_ID)"
echo "Microsoft Graph service principal: $GRAPH_SP_ID"

# App role ids currently assigned to the identity on Microsoft Graph.
ASSIGNED="$(graph GET "/servicePrincipals/$PRINCIPAL_ID/appRoleAssignments" \
  --query "value[?resourceId=='$GRAPH_SP_ID'].appRoleId" -o tsv)"

missing=0
for role in $ROLES; do
  role_id="$(graph GET "/servicePrincipals/$GRAPH_SP_ID?\$select=appRoles" \
    --query "appRoles[?value=='$role' && contains(allowedMemberTypes, 'Application')].id | [0]" -o tsv)"
  if [ -z "$role_id" ]; then
    echo "  ERROR   $role: no such application permission on Microsoft Graph" >&2
    exit 1
  fi
  if printf '%s\n' "$ASSIGNED" | grep -qx "$role_id"; then
    echo "  ok      $role (already granted)"
  elif [ "$CHECK_ONLY" = yes ]; then
    echo "  MISSING $role"
    missing=$((missing + 1))
  else
    graph POST "/servicePrincipals/$GRAPH_SP_ID/appRoleAssignedTo" \
      --headers "Content-Type=application/json" \
      --body "{\"principalId\":\"$PRINCIPAL_ID\",\"resourceId\":\"$GRAPH_SP_ID\",\"appRoleId\":\"$role_id\"}" \
      --query id -o tsv >/dev/null
    echo "  GRANTED $role ($role_id)"
  fi
done

# Report anything beyond the list (e.g. Policy.ReadWrite.Authorization left from an earlier run).
for assigned_id in $ASSIGNED; do
  name="$(graph GET "/servicePrincipals/$GRAPH_SP_ID?\$select=appRoles" \
    --query "appRoles[?id=='$assigned_id'].value | [0]" -o tsv)"
  case " $ROLES " in
    *" $name "*) ;;
    *) echo "  EXTRA   $name is granted but not needed for this configuration; remove it in Entra ID > Enterprise applications > $IDENTITY_NAME > Permissions if unused" ;;
  esac
done

# Exchange Online: the app role on its service principal, then the directory role.
if [ "$EWS_ACCESS" != off ]; then
  EXO_SP_ID="$(graph GET "/servicePrincipals(appId='$EXCHANGE_APP_ID')?\$select=id" --query id -o tsv)"
  exo_role_id="$(graph GET "/servicePrincipals/$EXO_SP_ID?\$select=appRoles" \
    --query "appRoles[?value=='Exchange.ManageAsApp' && contains(allowedMemberTypes, 'Application')].id | [0]" -o tsv)"
  if graph GET "/servicePrincipals/$PRINCIPAL_ID/appRoleAssignments" \
    --query "value[?resourceId=='$EXO_SP_ID'].appRoleId" -o tsv | grep -qx "$exo_role_id"; then
    echo "  ok      Exchange.ManageAsApp (already granted)"
  elif [ "$CHECK_ONLY" = yes ]; then
    echo "  MISSING Exchange.ManageAsApp"
    missing=$((missing + 1))
  else
    graph POST "/servicePrincipals/$EXO_SP_ID/appRoleAssignedTo" \
      --headers "Content-Type=application/json" \
      --body "{\"principalId\":\"$PRINCIPAL_ID\",\"resourceId\":\"$EXO_SP_ID\",\"appRoleId\":\"$exo_role_id\"}" \
      --query id -o tsv >/dev/null
    echo "  GRANTED Exchange.ManageAsApp ($exo_role_id)"
  fi
  role_def_id="$(graph GET "/roleManagement/directory/roleDefinitions?\$filter=displayName eq '$DIRECTORY_ROLE'&\$select=id" --query "value[0].id" -o tsv)"
  if [ -z "$role_def_id" ]; then
    echo "  ERROR   no directory role named $DIRECTORY_ROLE" >&2
    exit 1
  fi
  if [ -n "$(graph GET "/roleManagement/directory/roleAssignments?\$filter=principalId eq '$PRINCIPAL_ID' and roleDefinitionId eq '$role_def_id'" --query "value[0].id" -o tsv)" ]; then
    echo "  ok      directory role $DIRECTORY_ROLE (already assigned)"
  elif [ "$CHECK_ONLY" = yes ]; then
    echo "  MISSING directory role $DIRECTORY_ROLE (EWS_ACCESS=$EWS_ACCESS)"
    missing=$((missing + 1))
  else
    graph POST "/roleManagement/directory/roleAssignments" \
      --headers "Content-Type=application/json" \
      --body "{\"principalId\":\"$PRINCIPAL_ID\",\"roleDefinitionId\":\"$role_def_id\",\"directoryScopeId\":\"/\"}" \
      --query id -o tsv >/dev/null
    echo "  GRANTED directory role $DIRECTORY_ROLE (EWS_ACCESS=$EWS_ACCESS)"
  fi
fi

if [ "$missing" -gt 0 ]; then
  exit 1
fi
echo "Microsoft Graph permissions are in place. A managed identity's tokens are cached for up to 24 hours,"
echo "so grant before the first onboarding; a token fetched earlier keeps its old permissions until it expires."
