# azd postdeploy hook (Windows): create the Event Grid subscription that feeds optimize_media, then
# refresh the app's Key Vault references. Same steps and reasons as postdeploy.sh beside this file.
$ErrorActionPreference = 'Stop'

$attempts = if ($env:POSTDEPLOY_ATTEMPTS) { [int]$env:POSTDEPLOY_ATTEMPTS } else { 30 }
$interval = if ($env:POSTDEPLOY_INTERVAL) { [int]$env:POSTDEPLOY_INTERVAL } else { 10 }

function Stop-Hook([string[]]$Lines) {
    foreach ($line in $Lines) { [Console]::Error.WriteLine("postdeploy: $line") }
    exit 1
}

if (-not (Get-Command az -ErrorAction SilentlyContinue)) {
    Stop-Hook @(
        'the Azure CLI (az) is not installed or not on PATH; this hook needs it.',
        "install it (https://aka.ms/azcli), run 'az login' with the account azd uses, then run: azd hooks run postdeploy"
    )
}
if (-not $env:AZURE_SUBSCRIPTION_ID) {
    Stop-Hook @('AZURE_SUBSCRIPTION_ID is not set; run this hook through azd (azd hooks run postdeploy).')
}
az account show --subscription $env:AZURE_SUBSCRIPTION_ID --output none
if ($LASTEXITCODE -ne 0) {
    Stop-Hook @(
        "az cannot use subscription $env:AZURE_SUBSCRIPTION_ID (see its error above).",
        "run 'az login' with the account azd uses (azd auth login), then run: azd hooks run postdeploy"
    )
}

$errors = New-TemporaryFile
$siteId = "/subscriptions/$env:AZURE_SUBSCRIPTION_ID/resourceGroups/$env:AZURE_RESOURCE_GROUP/providers/Microsoft.Web/sites/$env:AZURE_FUNCTION_APP_NAME"
$references = "https://management.azure.com$siteId/config/configreferences/appsettings"

function Write-AzError {
    $text = Get-Content -Raw $errors
    if ($text) { [Console]::Error.WriteLine($text.TrimEnd()) }
}

if ($env:BLOB_EVENT_SUBSCRIPTION_ENABLED -ne 'true') {
    if (-not (Test-Path 'optimize_media/function.json')) {
        Write-Host 'postdeploy: no optimize_media function in this project yet; Event Grid subscription not created.'
    }
    else {
        Write-Host "postdeploy: waiting for the blobs_extension key of $env:AZURE_FUNCTION_APP_NAME..."
        $key = ''
        for ($attempt = 1; $attempt -le $attempts; $attempt++) {
            # Any request starts an idle Flex instance, which loads the blob extension and creates the key.
            if ($env:SERVICE_API_URI) {
                try { Invoke-WebRequest -Uri "$env:SERVICE_API_URI/api/health" -TimeoutSec 30 -UseBasicParsing | Out-Null } catch { }
            }
            $key = az functionapp keys list --subscription $env:AZURE_SUBSCRIPTION_ID `
                --resource-group $env:AZURE_RESOURCE_GROUP --name $env:AZURE_FUNCTION_APP_NAME `
                --query 'systemKeys.blobs_extension' --output tsv 2> $errors
            if ($key) { break }
            if ($attempt -lt $attempts) { Start-Sleep -Seconds $interval }
        }
        if (-not $key) {
            Write-AzError
            Stop-Hook @(
                "the host has not created its blobs_extension key after $attempts attempts.",
                "check the app's logs, then run: azd env set BLOB_EVENT_SUBSCRIPTION_ENABLED true; azd provision"
            )
        }
        azd env set BLOB_EVENT_SUBSCRIPTION_ENABLED true
        if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
        azd provision --no-prompt
        if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
    }
}

# The documented way to force resolution: POST .../config/configreferences/appsettings/refresh;
# the GET beside it lists each reference with its status.
Write-Host "postdeploy: refreshing the Key Vault references of $env:AZURE_FUNCTION_APP_NAME..."
for ($attempt = 1; $attempt -le $attempts; $attempt++) {
    $unresolved = '(refresh failed)'
    az rest --method post --url "$references/refresh?api-version=2022-03-01" --output none 2> $errors
    if ($LASTEXITCODE -eq 0) {
        $unresolved = az rest --method get --url "$references`?api-version=2022-03-01" `
            --query "value[?properties.status!='Resolved'].[name, properties.status, properties.details]" `
            --output tsv 2> $errors
        if ($LASTEXITCODE -ne 0) { $unresolved = '(status unavailable)' }
        elseif (-not $unresolved) {
            Write-Host 'postdeploy: every Key Vault reference is resolved.'
            exit 0
        }
    }
    if ($attempt -lt $attempts) { Start-Sleep -Seconds $interval }
}
Write-AzError
Stop-Hook @(
    "Key Vault references still unresolved after $attempts attempts:",
    ($unresolved -join "`n"),
    "check with: az rest --method get --url '$references`?api-version=2022-03-01'"
)
