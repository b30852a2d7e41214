// Every role assignment of the deployment, in one place. Names are guid(scope, principal, role),
// so re-provisioning is idempotent and a reviewer can audit all access by reading this file.

@description('Principal (object) id of the function app\'s user-assigned identity.')
param identityPrincipalId string

@description('Object id of the person or pipeline running azd; empty grants nothing. Lets the admin CLI seed tenants and an operator rotate secrets.')
param userPrincipalId string = ''

@description('Principal type of userPrincipalId.')
@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
param userPrincipalType string = 'User'

@description('Runtime storage account (AzureWebJobsStorage and the deployment package).')
param runtimeStorageAccountName string

@description('Media storage account (blobs, tables, queues of the API).')
param mediaStorageAccountName string

@description('Key Vault holding the app\'s secrets.')
param keyVaultName string

@description('Application Insights component the app sends telemetry to.')
param applicationInsightsName string

// Built-in role definition ids.
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

// The host reads and writes its own blobs (leases, keys, the deployment package), queues and
// tables (its diagnostic events); the Flex Consumption samples grant the same three roles.
var runtimeStorageRoles = [
  roles.storageBlobDataOwner
  roles.storageQueueDataContributor
  roles.storageTableDataContributor
]

// The app stores media and sets container access policies (Blob Data Owner), keeps records in
// tables, and moves work through queues; the Event Grid blob triggers need blob + queue too.
// Account scope on purpose: receive_upload reads and deletes in the 'uploads' staging container
// what optimize_media and the API read and write in 'attachments' and 'originals'. Clients get
// no role at all: an upload session's create-only SAS for one blob is all they hold.
var mediaStorageRoles = [
  roles.storageBlobDataOwner
  roles.storageQueueDataContributor
  roles.storageTableDataContributor
]

// An operator seeds tenants with the admin CLI (tables) and may inspect blobs and queues.
var userMediaStorageRoles = [
  roles.storageBlobDataContributor
  roles.storageQueueDataContributor
  roles.storageTableDataContributor
]

var grantUser = !empty(userPrincipalId)

resource runtimeStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: runtimeStorageAccountName
}

resource mediaStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: mediaStorageAccountName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource identityOnRuntimeStorage 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for roleId in runtimeStorageRoles: {
    name: guid(runtimeStorage.id, identityPrincipalId, roleId)
    scope: runtimeStorage
    properties: {
      principalId: identityPrincipalId
      principalType: 'ServicePrincipal'
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
    }
  }
]

resource identityOnMediaStorage 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for roleId in mediaStorageRoles: {
    name: guid(mediaStorage.id, identityPrincipalId, roleId)
    scope: mediaStorage
    properties: {
      principalId: identityPrincipalId
      principalType: 'ServicePrincipal'
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
    }
  }
]

resource identityOnVault 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, identityPrincipalId, roles.keyVaultSecretsUser)
  scope: vault
  properties: {
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
  }
}

resource identityOnApplicationInsights 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, identityPrincipalId, roles.monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
  }
}

resource userOnMediaStorage 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for roleId in userMediaStorageRoles: if (grantUser) {
    name: guid(mediaStorage.id, userPrincipalId, roleId)
    scope: mediaStorage
    properties: {
      principalId: userPrincipalId
      principalType: userPrincipalType
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
    }
  }
]

resource userOnVault 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (grantUser) {
  name: guid(vault.id, userPrincipalId, roles.keyVaultSecretsOfficer)
  scope: vault
  properties: {
    principalId: userPrincipalId
    principalType: userPrincipalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
  }
}
