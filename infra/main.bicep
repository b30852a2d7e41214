// Media & MMS API: everything `azd up` needs in a fresh subscription. One resource group; one
// module per concern under app/; every role assignment in app/rbac.bicep.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; seeds the resource token and tags every resource.')
param environmentName string

@minLength(1)
@description('Region for all resources. It must offer Flex Consumption: `az functionapp list-flexconsumption-locations`.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Object id of whoever runs azd (azd sets it). Gets data access to the media account for the admin CLI and may manage secrets. Empty grants nothing.')
param principalId string = ''

@description('Principal type of principalId: User locally, ServicePrincipal in a pipeline.')
@allowed([
  'User'
  'ServicePrincipal'
])
param principalType string = 'User'

@description('Container stored access policy that SAS URLs are signed against. Change it to start a new policy; delete the old policy to revoke its URLs.')
@minLength(1)
@maxLength(64)
param sasPolicyId string = 'media-read-v1'

@description('Which media account key signs SAS URLs (key1 or key2); switched during key rotation.')
@allowed([
  'key1'
  'key2'
])
param mediaSigningKeyName string = 'key1'

@description('Base URL of the carrier gateway that delivers messages. Empty: the app\'s default.')
param carrierGatewayUrl string = ''

@description('Secret the app presents to the carrier gateway; stored in Key Vault. Empty keeps the stored value.')
@secure()
param carrierGatewaySecret string = ''

@description('HMAC secret the carrier signs inbound webhooks with; stored in Key Vault. Empty keeps the stored value.')
@secure()
param carrierWebhookSecret string = ''

@description('External https origin of this app (e.g. https://api.example.com): carrier callback URLs and Twilio signatures are built from it.')
param publicBaseUrl string = ''

@description('Carrier of numbers provisioned without --carrier.')
@allowed([
  'sandbox'
  'generic'
  'twilio'
  'telnyx'
  'bandwidth'
])
param defaultCarrier string = 'sandbox'

@description('Twilio account SID (AC...). Empty: Twilio not configured.')
param twilioAccountSid string = ''

@description('Telnyx webhook public key (base64 Ed25519; not a secret).')
param telnyxPublicKey string = ''

@description('Telnyx messaging profile id (optional).')
param telnyxMessagingProfileId string = ''

@description('Bandwidth account id.')
param bandwidthAccountId string = ''

@description('Bandwidth messaging application id.')
param bandwidthApplicationId string = ''

@description('Bandwidth OAuth2 client id.')
param bandwidthClientId string = ''

@description('User name Bandwidth presents on its callbacks.')
param bandwidthCallbackUsername string = ''

@description('Twilio auth token (it signs the Twilio webhooks and authenticates sends). Stored in Key Vault; empty keeps the stored value.')
@secure()
param twilioAuthToken string = ''

@description('Telnyx API v2 key. Stored in Key Vault; empty keeps the stored value.')
@secure()
param telnyxApiKey string = ''

@description('Bandwidth OAuth2 client secret. Stored in Key Vault; empty keeps the stored value.')
@secure()
param bandwidthClientSecret string = ''

@description('Password Bandwidth presents on its callbacks (HTTP Basic). Stored in Key Vault; empty keeps the stored value.')
@secure()
param bandwidthCallbackPassword string = ''

@description('Create the Event Grid subscriptions that drive optimize_media and receive_upload. The post-deploy hook turns them on once the functions are deployed.')
param blobEventSubscriptionEnabled bool = false

@description('Blob containers of the media account.')
param mediaContainers array = [
  'attachments'
  'originals'
  'uploads'
]

@description('Tables of the media account.')
param mediaTables array = [
  'tenants'
  'users'
  'numbers'
  'tenantnumbers'
  'media'
  'messages'
  'idempotency'
  'inbound'
  'deliveries'
  'uploadsessions'
]

@description('Queues of the media account.')
param mediaQueues array = [
  'deliveries'
  'inbound-events'
  'webhooks'
]

var abbrs = loadJsonContent('abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var functionAppName = '${abbrs.webSitesFunctions}api-${resourceToken}'
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}-${take(resourceToken, 7)}'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
}

module identity 'app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: '${abbrs.managedIdentityUserAssignedIdentities}api-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    applicationInsightsName: '${abbrs.insightsComponents}${resourceToken}'
    location: location
    tags: tags
  }
}

module runtimeStorage 'app/storage-runtime.bicep' = {
  name: 'storage-runtime'
  scope: rg
  params: {
    name: '${abbrs.storageStorageAccounts}${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
  }
}

module mediaStorage 'app/storage-media.bicep' = {
  name: 'storage-media'
  scope: rg
  params: {
    name: '${abbrs.storageStorageAccounts}media${resourceToken}'
    location: location
    tags: tags
    containerNames: mediaContainers
    stagingContainerName: 'uploads'
    tableNames: mediaTables
    queueNames: mediaQueues
  }
}

module keyVault 'app/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: '${abbrs.keyVaultVaults}${resourceToken}'
    location: location
    tags: tags
    mediaStorageAccountName: mediaStorage.outputs.name
    mediaSigningKeyName: mediaSigningKeyName
    carrierGatewaySecret: carrierGatewaySecret
    carrierWebhookSecret: carrierWebhookSecret
    twilioAuthToken: twilioAuthToken
    telnyxApiKey: telnyxApiKey
    bandwidthClientSecret: bandwidthClientSecret
    bandwidthCallbackPassword: bandwidthCallbackPassword
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    identityPrincipalId: identity.outputs.principalId
    userPrincipalId: principalId
    userPrincipalType: principalType
    runtimeStorageAccountName: runtimeStorage.outputs.name
    mediaStorageAccountName: mediaStorage.outputs.name
    keyVaultName: keyVault.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
  }
}

// Carrier settings (docs/carriers.md); an empty one is left out, so the app sees it unset.
var carrierSettings = union(
  {
    DEFAULT_CARRIER: defaultCarrier
  },
  empty(publicBaseUrl) ? {} : {
    PUBLIC_BASE_URL: publicBaseUrl
  },
  empty(twilioAccountSid) ? {} : {
    TWILIO_ACCOUNT_SID: twilioAccountSid
  },
  empty(telnyxPublicKey) ? {} : {
    TELNYX_PUBLIC_KEY: telnyxPublicKey
  },
  empty(telnyxMessagingProfileId) ? {} : {
    TELNYX_MESSAGING_PROFILE_ID: telnyxMessagingProfileId
  },
  empty(bandwidthAccountId) ? {} : {
    BANDWIDTH_ACCOUNT_ID: bandwidthAccountId
  },
  empty(bandwidthApplicationId) ? {} : {
    BANDWIDTH_APPLICATION_ID: bandwidthApplicationId
  },
  empty(bandwidthClientId) ? {} : {
    BANDWIDTH_CLIENT_ID: bandwidthClientId
  },
  empty(bandwidthCallbackUsername) ? {} : {
    BANDWIDTH_CALLBACK_USERNAME: bandwidthCallbackUsername
  }
)

// What the app reads (shared/settings.py). Secrets are Key Vault references resolved by the
// platform with the app's identity, built by keyvault.bicep for exactly the secrets it writes
// (an empty carrier secret leaves its setting out); the rest are plain names and ids.
var apiSettings = union(keyVault.outputs.keyVaultReferences, carrierSettings, {
  MEDIA_STORAGE_ACCOUNT_NAME: mediaStorage.outputs.name
  MEDIA_STORAGE_BLOB_ENDPOINT: mediaStorage.outputs.blobEndpoint
  MANAGED_IDENTITY_CLIENT_ID: identity.outputs.clientId
  SAS_POLICY_ID: sasPolicyId
  CARRIER_GATEWAY_URL: carrierGatewayUrl
  // Identity-based connection "MediaStorage" for the Event Grid blob trigger of optimize_media.
  MediaStorage__blobServiceUri: mediaStorage.outputs.blobEndpoint
  MediaStorage__queueServiceUri: mediaStorage.outputs.queueEndpoint
  MediaStorage__credential: 'managedidentity'
  MediaStorage__clientId: identity.outputs.clientId
})

module api 'app/function.bicep' = {
  name: 'function'
  scope: rg
  params: {
    name: functionAppName
    planName: '${abbrs.webServerFarms}${resourceToken}'
    location: location
    tags: tags
    serviceName: 'api'
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    runtimeStorageAccountName: runtimeStorage.outputs.name
    deploymentContainerName: deploymentContainerName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    pythonVersion: '3.12'
    appSettings: apiSettings
  }
  // The host starts as soon as the app exists; let it find its roles already granted.
  dependsOn: [
    rbac
  ]
}

module eventGrid 'app/eventgrid.bicep' = {
  name: 'eventgrid'
  scope: rg
  params: {
    systemTopicName: '${abbrs.eventGridSystemTopics}media-${resourceToken}'
    location: location
    tags: tags
    mediaStorageAccountName: mediaStorage.outputs.name
    functionAppName: api.outputs.name
    functionName: 'optimize_media'
    stagingFunctionName: 'receive_upload'
    stagingContainerName: 'uploads'
    createSubscription: blobEventSubscriptionEnabled
  }
}

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = api.outputs.name
output SERVICE_API_NAME string = api.outputs.name
output SERVICE_API_URI string = api.outputs.uri
output AZURE_USER_ASSIGNED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_KEY_VAULT_ENDPOINT string = keyVault.outputs.uri
output AZURE_STORAGE_ACCOUNT_NAME string = runtimeStorage.outputs.name
output MEDIA_STORAGE_ACCOUNT_NAME string = mediaStorage.outputs.name
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.applicationInsightsName
output EVENTGRID_SYSTEM_TOPIC_NAME string = eventGrid.outputs.systemTopicName
