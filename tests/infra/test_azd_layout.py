"""The azd contract: azure.yaml, the subscription-scoped main.bicep with its parameters file, the
naming token, tags, outputs, the Flex Consumption app and the Event Grid blob subscription."""

from __future__ import annotations

import json
import os
from typing import Any

import yaml
from packaging.requirements import Requirement

from tests.infra import bicep

ROOT = bicep.INFRA.parent


def main() -> bicep.Template:
    return bicep.load(bicep.INFRA / "main.bicep")


def module(name: str) -> bicep.Template:
    return bicep.load(bicep.INFRA / "app" / name)


def module_params(symbol: str) -> dict[str, Any]:
    _, body = main().modules[symbol]
    params = body["params"]
    assert isinstance(params, dict)
    return params


def azure_yaml() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "azure.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_azure_yaml_deploys_the_project_root_as_a_python_function_app() -> None:
    api = azure_yaml()["services"]["api"]
    assert api["host"] == "function"
    assert api["language"] == "python"
    assert api["project"] in (".", "./")


def test_azure_yaml_hooks_point_at_executable_scripts() -> None:
    hook = azure_yaml()["hooks"]["postdeploy"]
    posix = ROOT / hook["posix"]["run"]
    assert posix.is_file() and os.access(posix, os.X_OK)
    assert (ROOT / hook["windows"]["run"]).is_file()


def test_main_targets_the_subscription_and_creates_the_resource_group() -> None:
    assert main().target_scope == "subscription"
    (rg,) = main().resources_of("Microsoft.Resources/resourceGroups")
    assert rg.body["tags"] == bicep.Expr("tags")
    assert main().variables["tags"] == {"azd-env-name": bicep.Expr("environmentName")}
    for symbol, (_, body) in main().modules.items():
        assert body["scope"] == bicep.Expr("rg"), symbol


def test_resource_token_is_unique_per_subscription_environment_and_region() -> None:
    token = main().variables["resourceToken"]
    assert token.text == "toLower(uniqueString(subscription().id, environmentName, location))"


def test_names_use_abbreviations_that_exist() -> None:
    abbreviations = json.loads((bicep.INFRA / "abbreviations.json").read_text())
    used = set()
    for path in bicep.bicep_files():
        text = path.read_text()
        used |= {part.split("}")[0] for part in text.split("abbrs.")[1:]}
    assert used and used <= set(abbreviations), used - set(abbreviations)


def test_every_module_path_exists_and_every_module_is_used() -> None:
    used = {(bicep.INFRA / path).resolve() for path, _ in main().modules.values()}
    assert all(p.is_file() for p in used)
    assert used == set((bicep.INFRA / "app").glob("*.bicep"))


def test_module_params_are_declared_by_the_module() -> None:
    for symbol, (path, body) in main().modules.items():
        declared = bicep.load((bicep.INFRA / path).resolve()).params
        given = set(body["params"])
        assert given <= set(declared), f"{symbol}: unknown {given - set(declared)}"
        required = {n for n, p in declared.items() if not p.has_default}
        assert required <= given, f"{symbol}: missing {required - given}"


def test_parameters_file_feeds_main_from_the_azd_environment() -> None:
    parameters = json.loads((bicep.INFRA / "main.parameters.json").read_text())["parameters"]
    assert parameters["environmentName"]["value"] == "${AZURE_ENV_NAME}"
    assert parameters["location"]["value"] == "${AZURE_LOCATION}"
    assert parameters["principalId"]["value"] == "${AZURE_PRINCIPAL_ID}"
    declared = main().params
    assert set(parameters) <= set(declared), set(parameters) - set(declared)
    required = {n for n, p in declared.items() if not p.has_default}
    assert required <= set(parameters)


def test_outputs_follow_the_azd_conventions() -> None:
    outputs = main().outputs
    for name in (
        "AZURE_LOCATION",
        "AZURE_TENANT_ID",
        "AZURE_RESOURCE_GROUP",
        "AZURE_FUNCTION_APP_NAME",
        "AZURE_KEY_VAULT_NAME",
        "MEDIA_STORAGE_ACCOUNT_NAME",
        "SERVICE_API_URI",
    ):
        assert name in outputs, name
    assert outputs["AZURE_TENANT_ID"] == bicep.Expr("tenant().tenantId")


def test_function_app_runs_python_3_12_on_flex_consumption() -> None:
    """3.12 is the newest Python the Flex Consumption plan lists (learn.microsoft.com,
    azure-functions/flex-consumption-plan, "Supported language stack versions")."""
    template = module("function.bicep")
    (plan,) = template.resources_of("Microsoft.Web/serverfarms")
    assert plan.body["sku"] == {"tier": "FlexConsumption", "name": "FC1"}
    assert plan.properties["reserved"] is True
    site = template.resource("functionApp")
    assert site.body["kind"] == "functionapp,linux"
    runtime = site.properties["functionAppConfig"]["runtime"]
    assert runtime == {"name": "python", "version": bicep.Expr("pythonVersion")}
    assert module_params("api")["pythonVersion"] == "3.12"


def test_requirements_install_on_the_deployed_python() -> None:
    """azure-functions 2.x and the runtime package need 3.13; the deployed Python gets 1.x."""
    version = module_params("api")["pythonVersion"]
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    wanted = [
        Requirement(line)
        for line in lines
        if line.strip() and not line.startswith("#")
        if (req := Requirement(line)).marker is None
        or req.marker.evaluate({"python_version": version})
    ]
    names = [r.name for r in wanted]
    assert names.count("azure-functions") == 1
    assert "azure-functions-runtime-v1" not in names
    [functions] = [r for r in wanted if r.name == "azure-functions"]
    assert str(functions.specifier).startswith("==1.")


def test_deployment_package_is_fetched_with_the_identity() -> None:
    site = module("function.bicep").resource("functionApp")
    storage = site.properties["functionAppConfig"]["deployment"]["storage"]
    assert storage["authentication"]["type"] == "UserAssignedIdentity"


def test_function_app_is_tagged_for_azd_as_service_api() -> None:
    template = module("function.bicep")
    tags = template.resource("functionApp").body["tags"]
    assert tags.name == "union" and tags.args[1] == {"azd-service-name": bicep.Expr("serviceName")}
    assert module_params("api")["serviceName"] == "api"


def test_event_grid_sends_new_attachments_to_optimize_media() -> None:
    template = module("eventgrid.bicep")
    (topic,) = template.resources_of("Microsoft.EventGrid/systemTopics")
    assert topic.properties["topicType"] == "Microsoft.Storage.StorageAccounts"
    assert topic.properties["source"] == bicep.Expr("mediaStorage.id")
    subscription = template.resource("optimizeMedia")
    event_filter = subscription.properties["filter"]
    assert "Microsoft.Storage.BlobCreated" in event_filter["includedEventTypes"]
    assert event_filter["subjectBeginsWith"] == "/blobServices/default/containers/attachments/"
    endpoint = subscription.properties["destination"]["properties"]["endpointUrl"]
    assert (
        "/runtime/webhooks/blobs?functionName=Host.Functions.${functionName}&code=" in endpoint.then
    )
    params = module_params("eventGrid")
    assert params["functionName"] == "optimize_media"
    assert params["mediaStorageAccountName"] == bicep.Expr("mediaStorage.outputs.name")


def test_staged_uploads_reach_receive_upload_and_nothing_else_does() -> None:
    template = module("eventgrid.bicep")
    subscription = template.resource("receiveUploads")
    event_filter = subscription.properties["filter"]
    assert event_filter["includedEventTypes"] == ["Microsoft.Storage.BlobCreated"]
    # The module's parameter, which main.bicep sets to the container below.
    assert event_filter["subjectBeginsWith"] == (
        "/blobServices/default/containers/${stagingContainerName}/"
    )
    endpoint = subscription.properties["destination"]["properties"]["endpointUrl"]
    assert "functionName=Host.Functions.${stagingFunctionName}&code=" in endpoint.then
    params = module_params("eventGrid")
    assert params["stagingFunctionName"] == "receive_upload"
    assert params["stagingContainerName"] == "uploads"
    staging = json.loads((ROOT / "receive_upload" / "function.json").read_text())["bindings"][0]
    assert staging["type"] == "blobTrigger" and staging["source"] == "EventGrid"
    assert staging["path"] == "uploads/{name}"
    from shared.settings import Settings

    assert Settings.model_fields["staging_container"].default == "uploads"


def test_event_subscriptions_wait_for_the_deployed_functions() -> None:
    subscriptions = module("eventgrid.bicep").resources_of(
        "Microsoft.EventGrid/systemTopics/eventSubscriptions"
    )
    assert {s.symbol for s in subscriptions} == {"optimizeMedia", "receiveUploads"}
    for subscription in subscriptions:
        assert subscription.condition == bicep.Expr("createSubscription")
    assert module_params("eventGrid")["createSubscription"] == bicep.Expr(
        "blobEventSubscriptionEnabled"
    )


def test_media_lists_are_parameters_of_main() -> None:
    params = module_params("mediaStorage")
    defaults = {
        "containerNames": "mediaContainers",
        "tableNames": "mediaTables",
        "queueNames": "mediaQueues",
    }
    for name, main_param in defaults.items():
        assert params[name] == bicep.Expr(main_param)
    assert {"attachments", "originals"} <= set(main().params["mediaContainers"].default)


def test_workflow_builds_the_templates_and_previews_provisioning() -> None:
    workflow = (ROOT / ".github" / "workflows" / "infra.yml").read_text()
    assert "az bicep build --file infra/main.bicep" in workflow
    assert "azd provision --preview" in workflow
    assert "id-token: write" in workflow


def test_per_instance_http_concurrency_matches_host_json_and_the_pool_setting() -> None:
    """The storage clients' pools are sized from MAX_CONCURRENT_REQUESTS: an instance that ran
    more requests at once would queue them on the pools ("Connection pool is full")."""
    from shared.settings import Settings

    site = module("function.bicep").resource("functionApp")
    scale = site.properties["functionAppConfig"]["scaleAndConcurrency"]
    per_instance = scale["triggers"]["http"]["perInstanceConcurrency"]
    host = json.loads((ROOT / "host.json").read_text())
    assert per_instance == host["extensions"]["http"]["maxConcurrentRequests"]
    assert per_instance == Settings.model_fields["max_concurrent_requests"].default
