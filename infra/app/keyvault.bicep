// Key Vault (RBAC mode) and the app's secrets. This is the documented exception to "no keys in
// templates": the media account key is the one credential managed identity cannot replace,
// because it signs the long-lived SAS URLs. It is read here with listKeys() and written straight
// into the vault; it never appears in an app setting, an output or the deployment history.

@description('Name of the Key Vault (3-24 characters).')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region for the vault.')
param location string

@description('Tags applied to the vault.')
param tags object = {}

@description('Media storage account whose key signs SAS URLs.')
param mediaStorageAccountName string

@description('Which account key signs SAS URLs; switch during rotation (see docs/deploy.md).')
@allowed([
  'key1'
  'key2'
])
param mediaSigningKeyName string = 'key1'

@description('Shared secret for the carrier gateway. Empty leaves the stored secret untouched.')
@secure()
param carrierGatewaySecret string = ''

@description('HMAC secret the carrier signs inbound webhooks with. Empty leaves the stored secret untouched.')
@secure()
param carrierWebhookSecret string = ''

@description('Twilio auth token (it signs the Twilio webhooks and authenticates sends). Empty leaves the stored secret untouched.')
@secure()
param twilioAuthToken string = ''

@description('Telnyx API v2 key. Empty leaves the stored secret untouched.')
@secure()
param telnyxApiKey string = ''

@description('Bandwidth OAuth2 client secret. Empty leaves the stored secret untouched.')
@secure()
param bandwidthClientSecret string = ''

@description('Password Bandwidth presents on its callbacks (HTTP Basic). Empty leaves the stored secret untouched.')
@secure()
param bandwidthCallbackPassword string = ''

@description('Days a deleted vault or secret can be recovered.')
@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int = 90

@description('Turn on purge protection (cannot be turned off again; blocks `azd down --purge`).')
param enablePurgeProtection bool = false

// A carrier secret is written only when its parameter is set; an empty one leaves the vault alone.
var createCarrierGatewaySecret = !empty(carrierGatewaySecret)
var createCarrierWebhookSecret = !empty(carrierWebhookSecret)
var createTwilioAuthToken = !empty(twilioAuthToken)
var createTelnyxApiKey = !empty(telnyxApiKey)
var createBandwidthClientSecret = !empty(bandwidthClientSecret)
var createBandwidthCallbackPassword = !empty(bandwidthCallbackPassword)

var secretNames = {
  mediaStorageAccountKey: 'media-storage-account-key'
  carrierGatewaySecret: 'carrier-gateway-secret'
  carrierWebhookSecret: 'carrier-webhook-secret'
  twilioAuthToken: 'twilio-auth-token'
  telnyxApiKey: 'telnyx-api-key'
  bandwidthClientSecret: 'bandwidth-client-secret'
  bandwidthCallbackPassword: 'bandwidth-callback-password'
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    // Purge protection can only be set to true or left out; false is rejected.
    enablePurgeProtection: enablePurgeProtection ? true : null
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource mediaStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: mediaStorageAccountName
}

resource mediaStorageAccountKey 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: secretNames.mediaStorageAccountKey
  properties: {
    contentType: 'Storage account key (${mediaSigningKeyName}) that signs media SAS URLs'
    value: mediaStorage.listKeys().keys[mediaSigningKeyName == 'key1' ? 0 : 1].value
  }
}

resource carrierGateway 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (createCarrierGatewaySecret) {
  parent: vault
  name: secretNames.carrierGatewaySecret
  properties: {
    value: carrierGatewaySecret
  }
}

resource carrierWebhook 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (createCarrierWebhookSecret) {
  parent: vault
  name: secretNames.carrierWebhookSecret
  properties: {
    value: carrierWebhookSecret
  }
}

resource twilioAuthTokenSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (createTwilioAuthToken) {
  parent: vault
  name: secretNames.twilioAuthToken
  properties: {
    value: twilioAuthToken
  }
}

resource telnyxApiKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (createTelnyxApiKey) {
  parent: vault
  name: secretNames.telnyxApiKey
  properties: {
    value: telnyxApiKey
  }
}

resource bandwidthClientSecretSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (createBandwidthClientSecret) {
  parent: vault
  name: secretNames.bandwidthClientSecret
  properties: {
    value: bandwidthClientSecret
  }
}

resource bandwidthCallbackPasswordSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (createBandwidthCallbackPassword) {
  parent: vault
  name: secretNames.bandwidthCallbackPassword
  properties: {
    value: bandwidthCallbackPassword
  }
}

output name string = vault.name
output id string = vault.id
output uri string = vault.properties.vaultUri
// The app settings that reference the secrets above, each under the condition its secret is
// written with: App Service hands a reference to a missing secret to the app as its literal
// text, so a setting is left out rather than pointed at nothing. Versionless secret URIs: the
// app picks up a new secret version without a redeploy.
output keyVaultReferences object = union(
  {
    MEDIA_STORAGE_ACCOUNT_KEY: '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/${secretNames.mediaStorageAccountKey})'
  },
  createCarrierGatewaySecret ? {
    CARRIER_GATEWAY_SECRET: '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/${secretNames.carrierGatewaySecret})'
  } : {},
  createCarrierWebhookSecret ? {
    CARRIER_WEBHOOK_SECRET: '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/${secretNames.carrierWebhookSecret})'
  } : {},
  createTwilioAuthToken ? {
    TWILIO_AUTH_TOKEN: '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/${secretNames.twilioAuthToken})'
  } : {},
  createTelnyxApiKey ? {
    TELNYX_API_KEY: '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/${secretNames.telnyxApiKey})'
  } : {},
  createBandwidthClientSecret ? {
    BANDWIDTH_CLIENT_SECRET: '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/${secretNames.bandwidthClientSecret})'
  } : {},
  createBandwidthCallbackPassword ? {
    BANDWIDTH_CALLBACK_PASSWORD: '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/${secretNames.bandwidthCallbackPassword})'
  } : {}
)
