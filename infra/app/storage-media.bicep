// The account behind the API: media blobs, the tables that hold tenants, numbers, media and
// messages, and the work queues. The app reaches it by managed identity; shared key access stays
// on only because the account key signs the long-lived (99-year) SAS URLs, which a user
// delegation SAS (7 days at most, no stored access policy) cannot replace. The key itself is
// copied into Key Vault by keyvault.bicep and nowhere else.

@description('Name of the media storage account (3-24 lowercase letters and digits).')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region for the account.')
param location string

@description('Tags applied to the account.')
param tags object = {}

@description('Blob containers to create; none is publicly readable (access is by SAS only).')
param containerNames array = [
  'attachments'
  'originals'
  'uploads'
]

@description('The staging container of upload sessions (one of containerNames): clients PUT files there with a short-lived create-only SAS; the app moves each checked file to attachments.')
param stagingContainerName string = 'uploads'

@description('Days after which anything left in the staging container is deleted (the storage sweep removes unused sessions\' blobs within the hour; this is the backstop).')
@minValue(1)
param stagingRetentionDays int = 1

@description('Tables to create; the app also creates any it needs on first use.')
param tableNames array = [
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

@description('Queues to create; the app also creates any it needs on first use.')
param queueNames array = [
  'deliveries'
  'inbound-events'
  'webhooks'
]

@description('Days a deleted blob can be restored.')
@minValue(1)
@maxValue(365)
param blobSoftDeleteDays int = 14

@description('Days a deleted container can be restored.')
@minValue(1)
@maxValue(365)
param containerSoftDeleteDays int = 14

@description('Days previous blob versions are kept before lifecycle management deletes them.')
@minValue(1)
param previousVersionRetentionDays int = 30

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    // Required: the account key signs the SAS URLs the API hands out (see the header comment).
    allowSharedKeyAccess: true
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }

  resource blobService 'blobServices' = {
    name: 'default'
    properties: {
      isVersioningEnabled: true
      deleteRetentionPolicy: {
        enabled: true
        days: blobSoftDeleteDays
      }
      containerDeleteRetentionPolicy: {
        enabled: true
        days: containerSoftDeleteDays
      }
    }
  }

  resource tableService 'tableServices' = {
    name: 'default'
  }

  resource queueService 'queueServices' = {
    name: 'default'
  }

  // The optimiser rewrites attachments in place, so versioning would otherwise keep every
  // pre-optimisation copy forever; the original already lives in the 'originals' container.
  resource lifecycle 'managementPolicies' = {
    name: 'default'
    properties: {
      policy: {
        rules: [
          {
            name: 'expire-previous-versions'
            enabled: true
            type: 'Lifecycle'
            definition: {
              filters: {
                blobTypes: [
                  'blockBlob'
                ]
              }
              actions: {
                version: {
                  delete: {
                    daysAfterCreationGreaterThan: previousVersionRetentionDays
                  }
                }
              }
            }
          }
          {
            // Upload sessions last 15 minutes and the app deletes every staging blob it checks
            // or whose session expired unused; whatever a failure left is gone after a day, with
            // its versions and snapshots.
            name: 'expire-staged-uploads'
            enabled: true
            type: 'Lifecycle'
            definition: {
              filters: {
                blobTypes: [
                  'blockBlob'
                ]
                prefixMatch: [
                  '${stagingContainerName}/'
                ]
              }
              actions: {
                baseBlob: {
                  delete: {
                    daysAfterCreationGreaterThan: stagingRetentionDays
                  }
                }
                snapshot: {
                  delete: {
                    daysAfterCreationGreaterThan: stagingRetentionDays
                  }
                }
                version: {
                  delete: {
                    daysAfterCreationGreaterThan: stagingRetentionDays
                  }
                }
              }
            }
          }
        ]
      }
    }
  }
}

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [
  for containerName in containerNames: {
    parent: storage::blobService
    name: containerName
    properties: {
      publicAccess: 'None'
    }
  }
]

resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [
  for tableName in tableNames: {
    parent: storage::tableService
    name: tableName
  }
]

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [
  for queueName in queueNames: {
    parent: storage::queueService
    name: queueName
  }
]

output name string = storage.name
output id string = storage.id
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output queueEndpoint string = storage.properties.primaryEndpoints.queue
output tableEndpoint string = storage.properties.primaryEndpoints.table
