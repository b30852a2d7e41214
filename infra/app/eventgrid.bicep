// New blobs in the media account's 'attachments' container reach the optimize_media function,
// and files PUT to an upload session's URL (the private 'uploads' staging container) reach
// receive_upload, through Event Grid (Flex Consumption supports only the Event Grid source for
// blob triggers). Each subscription filters on its own container, so neither sees the other's.
//
// The subscription's webhook is the Functions host's blob extension endpoint. Event Grid
// validates it on creation, and the host creates its 'blobs_extension' system key only once a
// blob trigger with source EventGrid is deployed, so the subscription is added after the first
// code deployment (infra/hooks/postdeploy.sh sets createSubscription and provisions again).

@description('Name of the Event Grid system topic on the media storage account.')
param systemTopicName string

@description('Azure region for the system topic (that of the storage account).')
param location string

@description('Tags applied to the system topic.')
param tags object = {}

@description('Media storage account whose blob events are published.')
param mediaStorageAccountName string

@description('Function app that hosts the blob-triggered function.')
param functionAppName string

@description('Function (folder) name of the Event Grid blob trigger.')
param functionName string = 'optimize_media'

@description('Function (folder) name of the Event Grid blob trigger on the staging container.')
param stagingFunctionName string = 'receive_upload'

@description('The staging container upload sessions write to (STAGING_CONTAINER).')
param stagingContainerName string = 'uploads'

@description('Create the event subscriptions; needs the functions deployed first (see above).')
param createSubscription bool = false

resource mediaStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: mediaStorageAccountName
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource systemTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: systemTopicName
  location: location
  tags: tags
  properties: {
    source: mediaStorage.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

resource optimizeMedia 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = if (createSubscription) {
  parent: systemTopic
  name: 'optimize-media'
  properties: {
    destination: {
      endpointType: 'WebHook'
      properties: {
        // The standard blob-trigger webhook: the host's system key authenticates Event Grid. It
        // is read at deployment time and kept only in the subscription (Event Grid never
        // returns it). ARM evaluates listKeys() and reference() in a resource even when its
        // condition is false, and before the first deployment the key does not exist: only the
        // conditional expression keeps the call from running then.
        endpointUrl: createSubscription ? 'https://${functionApp.properties.defaultHostName}/runtime/webhooks/blobs?functionName=Host.Functions.${functionName}&code=${listKeys('${functionApp.id}/host/default', '2024-04-01').systemKeys.blobs_extension}' : ''
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [
        'Microsoft.Storage.BlobCreated'
      ]
      // Only the container the API writes uploads to; 'originals' must not re-trigger.
      subjectBeginsWith: '/blobServices/default/containers/attachments/'
    }
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
  }
}

resource receiveUploads 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = if (createSubscription) {
  parent: systemTopic
  name: 'receive-uploads'
  properties: {
    destination: {
      endpointType: 'WebHook'
      properties: {
        // As for optimize-media above: the host's system key, read only when created.
        endpointUrl: createSubscription ? 'https://${functionApp.properties.defaultHostName}/runtime/webhooks/blobs?functionName=Host.Functions.${stagingFunctionName}&code=${listKeys('${functionApp.id}/host/default', '2024-04-01').systemKeys.blobs_extension}' : ''
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [
        'Microsoft.Storage.BlobCreated'
      ]
      // Only the staging container: the checked file moves to 'attachments' (optimize_media's).
      subjectBeginsWith: '/blobServices/default/containers/${stagingContainerName}/'
    }
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
  }
}

output systemTopicName string = systemTopic.name
output subscriptionCreated bool = createSubscription
