#!/bin/sh
# azd postdeploy hook: subscribe the Key Vault's SecretNearExpiry/SecretExpired events to the app's
# Event Grid function, now that the code (and so the function) exists. Event Grid validates an
# AzureFunction endpoint when the subscription is created, so this cannot be part of the first
# `azd provision`. Idempotent: it redeploys infra/app/keyvault-events.bicep with the same name.
# Then it reports whether the one-time Graph permission step has been done, and whether the provisioner
# for sites of other Microsoft 365 tenants (infra/provisioner.sh) is as that script makes it.
#
# azd exports the environment's values (main.bicep outputs) to hooks; run by hand with
#   eval "$(azd env get-values)" && ./infra/hooks/postdeploy.sh
set -eu

: "${AZURE_RESOURCE_GROUP:?run through azd, or eval \"\$(azd env get-values)\" first}"
: "${AZURE_FUNCTION_APP_NAME:?}"
: "${EVENT_GRID_SYSTEM_TOPIC_NAME:?}"
FUNCTION_NAME="${KEYVAULT_EVENT_FUNCTION_NAME:-keyVaultSecretNearExpiry}"
HERE="$(cd "$(dirname "$0")" && pwd)"

echo "Waiting for function '$FUNCTION_NAME' on $AZURE_FUNCTION_APP_NAME (Flex Consumption indexes functions after a deployment)..."
found=""
i=0
while [ $i -lt 30 ]; do
  if az functionapp function show -g "$AZURE_RESOURCE_GROUP" -n "$AZURE_FUNCTION_APP_NAME" \
      --function-name "$FUNCTION_NAME" --query name -o tsv >/dev/null 2>&1; then
    found=yes
    break
  fi
  i=$((i + 1))
  sleep 10
done
if [ -z "$found" ]; then
  echo "Function '$FUNCTION_NAME' not found on $AZURE_FUNCTION_APP_NAME. Functions it has:" >&2
  az functionapp function list -g "$AZURE_RESOURCE_GROUP" -n "$AZURE_FUNCTION_APP_NAME" --query "[].name" -o tsv >&2 || true
  echo "If the app registers its Event Grid function under another name: azd env set KEYVAULT_EVENT_FUNCTION_NAME <name> && azd hooks run postdeploy" >&2
  exit 1
fi

echo "Subscribing Key Vault events (SecretNearExpiry, SecretExpired) of $EVENT_GRID_SYSTEM_TOPIC_NAME to $FUNCTION_NAME..."
az deployment group create \
  --resource-group "$AZURE_RESOURCE_GROUP" \
  --name keyvault-events \
  --template-file "$HERE/../app/keyvault-events.bicep" \
  --parameters systemTopicName="$EVENT_GRID_SYSTEM_TOPIC_NAME" \
               functionAppName="$AZURE_FUNCTION_APP_NAME" \
               functionName="$FUNCTION_NAME" \
  --query "properties.provisioningState" -o tsv

# Report (never change) the Graph permissions: granting them needs an administrator.
if [ -n "${AZURE_IDENTITY_PRINCIPAL_ID:-}" ]; then
  "$HERE/../grant-graph-permissions.sh" --principal-id "$AZURE_IDENTITY_PRINCIPAL_ID" --check || {
    echo ""
    echo "One-time step left: an administrator (Privileged Role Administrator or Global Administrator) runs"
    echo "  ./infra/grant-graph-permissions.sh --principal-id $AZURE_IDENTITY_PRINCIPAL_ID"
    echo "Onboarding fails with 403 from Microsoft Graph until then, and every site's mail.ews says unknown"
    echo "until the identity holds Exchange.ManageAsApp and its directory role (EWS_ACCESS=${EWS_ACCESS:-check})."
  }
fi

# Report (never change) the provisioner that serves sites of other Microsoft 365 tenants, once there is one
# (README, "Serving several Microsoft 365 tenants").
if [ -n "${PROVISIONER_CLIENT_ID:-}" ] && [ -n "${AZURE_IDENTITY_PRINCIPAL_ID:-}" ]; then
  "$HERE/../provisioner.sh" --check || {
    echo ""
    echo "The provisioner for other tenants' sites is not as infra/provisioner.sh makes it (see above); run"
    echo "  ./infra/provisioner.sh"
  }
else
  echo "Sites whose Microsoft 365 is another Entra tenant need the provisioner app once: ./infra/provisioner.sh"
  echo "(README, \"Serving several Microsoft 365 tenants\")."
fi
