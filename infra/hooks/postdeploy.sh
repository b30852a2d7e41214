#!/bin/sh
# azd postdeploy hook: create the Event Grid subscription that feeds optimize_media.
#
# Event Grid validates a webhook when the subscription is created, and the Functions host creates
# its blobs_extension system key only after a blob trigger with source EventGrid is deployed. So
# the first `azd up` provisions without the subscription, deploys the code, and then this hook
# waits for the key, turns BLOB_EVENT_SUBSCRIPTION_ENABLED on and provisions again. Later runs
# find the flag set and do nothing.
set -eu

if [ "${BLOB_EVENT_SUBSCRIPTION_ENABLED:-false}" = "true" ]; then
  exit 0
fi
if [ ! -f optimize_media/function.json ]; then
  echo "postdeploy: no optimize_media function in this project yet; Event Grid subscription not created."
  exit 0
fi

echo "postdeploy: waiting for the blobs_extension key of ${AZURE_FUNCTION_APP_NAME}..."
attempt=0
while :; do
  # Any request starts an idle Flex instance, which loads the blob extension and creates the key.
  if [ -n "${SERVICE_API_URI:-}" ]; then
    curl --silent --output /dev/null --max-time 30 "${SERVICE_API_URI}/api/health" || true
  fi
  key=$(az functionapp keys list \
    --resource-group "${AZURE_RESOURCE_GROUP}" \
    --name "${AZURE_FUNCTION_APP_NAME}" \
    --query "systemKeys.blobs_extension" --output tsv 2>/dev/null || true)
  if [ -n "${key}" ]; then
    break
  fi
  attempt=$((attempt + 1))
  if [ "${attempt}" -ge 30 ]; then
    echo "postdeploy: the host has not created its blobs_extension key after 5 minutes." >&2
    echo "postdeploy: check the app's logs, then run: azd env set BLOB_EVENT_SUBSCRIPTION_ENABLED true && azd provision" >&2
    exit 1
  fi
  sleep 10
done

azd env set BLOB_EVENT_SUBSCRIPTION_ENABLED true
azd provision --no-prompt
