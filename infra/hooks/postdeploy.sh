#!/bin/sh
# azd postdeploy hook: create the Event Grid subscription that feeds optimize_media, then make
# App Service resolve its Key Vault references again now that the roles exist.
#
# Event Grid validates a webhook when the subscription is created, and the Functions host creates
# its blobs_extension system key only after a blob trigger with source EventGrid is deployed. So
# the first `azd up` provisions without the subscription, deploys the code, and then this hook
# waits for the key, turns BLOB_EVENT_SUBSCRIPTION_ENABLED on and provisions again. Later runs
# find the flag set and skip that part.
#
# The Key Vault Secrets User role is granted in the same deployment as the app, and a reference
# resolved before the role propagates stays unresolved until the next refresh (24 hours or a
# configuration change). So every run ends by asking for a refresh until every reference resolves.
#
# Runs `az` with the account of `az login`, against azd's subscription. The attempts and the
# pause between them can be shortened for tests (POSTDEPLOY_ATTEMPTS, POSTDEPLOY_INTERVAL).
set -eu

attempts="${POSTDEPLOY_ATTEMPTS:-30}"
interval="${POSTDEPLOY_INTERVAL:-10}"

if ! command -v az >/dev/null 2>&1; then
  echo "postdeploy: the Azure CLI (az) is not installed or not on PATH; this hook needs it." >&2
  echo "postdeploy: install it (https://aka.ms/azcli), run 'az login' with the account azd uses, then run: azd hooks run postdeploy" >&2
  exit 1
fi
if [ -z "${AZURE_SUBSCRIPTION_ID:-}" ]; then
  echo "postdeploy: AZURE_SUBSCRIPTION_ID is not set; run this hook through azd (azd hooks run postdeploy)." >&2
  exit 1
fi
if ! az account show --subscription "${AZURE_SUBSCRIPTION_ID}" --output none; then
  echo "postdeploy: az cannot use subscription ${AZURE_SUBSCRIPTION_ID} (see its error above)." >&2
  echo "postdeploy: run 'az login' with the account azd uses (azd auth login), then run: azd hooks run postdeploy" >&2
  exit 1
fi

errors=$(mktemp)
trap 'rm -f "${errors}"' EXIT

site_id="/subscriptions/${AZURE_SUBSCRIPTION_ID}/resourceGroups/${AZURE_RESOURCE_GROUP}/providers/Microsoft.Web/sites/${AZURE_FUNCTION_APP_NAME}"
references="https://management.azure.com${site_id}/config/configreferences/appsettings"

create_event_subscription() {
  echo "postdeploy: waiting for the blobs_extension key of ${AZURE_FUNCTION_APP_NAME}..."
  attempt=1
  while :; do
    # Any request starts an idle Flex instance, which loads the blob extension and creates the key.
    if [ -n "${SERVICE_API_URI:-}" ]; then
      curl --silent --output /dev/null --max-time 30 "${SERVICE_API_URI}/api/health" || true
    fi
    key=$(az functionapp keys list \
      --subscription "${AZURE_SUBSCRIPTION_ID}" \
      --resource-group "${AZURE_RESOURCE_GROUP}" \
      --name "${AZURE_FUNCTION_APP_NAME}" \
      --query "systemKeys.blobs_extension" --output tsv 2>"${errors}" || true)
    if [ -n "${key}" ]; then
      break
    fi
    if [ "${attempt}" -ge "${attempts}" ]; then
      cat "${errors}" >&2
      echo "postdeploy: the host has not created its blobs_extension key after ${attempts} attempts." >&2
      echo "postdeploy: check the app's logs, then run: azd env set BLOB_EVENT_SUBSCRIPTION_ENABLED true && azd provision" >&2
      exit 1
    fi
    attempt=$((attempt + 1))
    sleep "${interval}"
  done

  azd env set BLOB_EVENT_SUBSCRIPTION_ENABLED true
  azd provision --no-prompt
}

# The documented way to force resolution ("Use Key Vault references as app settings", rotation):
# POST .../config/configreferences/appsettings/refresh. The GET beside it lists each reference
# with its status; anything but Resolved reaches the app as the literal reference text.
refresh_key_vault_references() {
  echo "postdeploy: refreshing the Key Vault references of ${AZURE_FUNCTION_APP_NAME}..."
  attempt=1
  while :; do
    unresolved=""
    if az rest --method post --url "${references}/refresh?api-version=2022-03-01" \
      --output none 2>"${errors}"; then
      unresolved=$(az rest --method get --url "${references}?api-version=2022-03-01" \
        --query "value[?properties.status!='Resolved'].[name, properties.status, properties.details]" \
        --output tsv 2>"${errors}") || unresolved="(status unavailable)"
      if [ -z "${unresolved}" ]; then
        echo "postdeploy: every Key Vault reference is resolved."
        return 0
      fi
    else
      unresolved="(refresh failed)"
    fi
    if [ "${attempt}" -ge "${attempts}" ]; then
      cat "${errors}" >&2
      echo "postdeploy: Key Vault references still unresolved after ${attempts} attempts:" >&2
      echo "${unresolved}" >&2
      echo "postdeploy: check with: az rest --method get --url '${references}?api-version=2022-03-01'" >&2
      exit 1
    fi
    attempt=$((attempt + 1))
    sleep "${interval}"
  done
}

if [ "${BLOB_EVENT_SUBSCRIPTION_ENABLED:-false}" != "true" ]; then
  if [ -f optimize_media/function.json ]; then
    create_event_subscription
  else
    echo "postdeploy: no optimize_media function in this project yet; Event Grid subscription not created."
  fi
fi
refresh_key_vault_references
