# azd postdeploy hook (Windows): create the Event Grid subscription that feeds optimize_media.
# Same steps and reasons as postdeploy.sh beside this file.
$ErrorActionPreference = 'Stop'

if ($env:BLOB_EVENT_SUBSCRIPTION_ENABLED -eq 'true') { exit 0 }
if (-not (Test-Path 'optimize_media/function.json')) {
    Write-Host 'postdeploy: no optimize_media function in this project yet; Event Grid subscription not created.'
    exit 0
}

Write-Host "postdeploy: waiting for the blobs_extension key of $env:AZURE_FUNCTION_APP_NAME..."
$key = ''
for ($attempt = 1; $attempt -le 30; $attempt++) {
    # Any request starts an idle Flex instance, which loads the blob extension and creates the key.
    try { Invoke-WebRequest -Uri "$env:SERVICE_API_URI/api/health" -TimeoutSec 30 -UseBasicParsing | Out-Null } catch { }
    $key = az functionapp keys list --resource-group $env:AZURE_RESOURCE_GROUP --name $env:AZURE_FUNCTION_APP_NAME `
        --query 'systemKeys.blobs_extension' --output tsv 2>$null
    if ($key) { break }
    Start-Sleep -Seconds 10
}
if (-not $key) {
    Write-Error 'postdeploy: the host has not created its blobs_extension key after 5 minutes. Check the app logs, then run: azd env set BLOB_EVENT_SUBSCRIPTION_ENABLED true; azd provision'
}

azd env set BLOB_EVENT_SUBSCRIPTION_ENABLED true
azd provision --no-prompt
