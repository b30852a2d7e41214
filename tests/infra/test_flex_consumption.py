"""The function app sets nothing that Flex Consumption rejects: newer regional stamps refuse a
deprecated site property with ARM error 51021 ("The following site configuration property ...
for Flex Consumption sites is invalid"), so one stray property stops `azd up`."""

from __future__ import annotations

from typing import Any

from tests.infra import bicep
from tests.infra.test_bicep_security import app_settings

# "App settings reference for Azure Functions", section "Flex Consumption plan deprecations"
# (https://learn.microsoft.com/azure/azure-functions/functions-app-settings#flex-consumption-plan-deprecations,
# page dated 2025-12-22), copied whole. The `properties.*` rows name site properties wherever
# they sit, `properties` or `properties.siteConfig` (ftpsState and alwaysOn live in siteConfig).
DEPRECATED_APP_SETTINGS = frozenset(
    {
        "ENABLE_ORYX_BUILD",
        "FUNCTIONS_EXTENSION_VERSION",
        "FUNCTIONS_WORKER_RUNTIME",
        "FUNCTIONS_WORKER_RUNTIME_VERSION",
        "FUNCTIONS_MAX_HTTP_CONCURRENCY",
        "FUNCTIONS_WORKER_PROCESS_COUNT",
        "FUNCTIONS_WORKER_DYNAMIC_CONCURRENCY_ENABLED",
        "SCM_DO_BUILD_DURING_DEPLOYMENT",
        "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
        "WEBSITE_CONTENTOVERVNET",
        "WEBSITE_CONTENTSHARE",
        "WEBSITE_DNS_SERVER",
        "WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT",
        "WEBSITE_NODE_DEFAULT_VERSION",
        "WEBSITE_RUN_FROM_PACKAGE",
        "WEBSITE_SKIP_CONTENTSHARE_VALIDATION",
        "WEBSITE_VNET_ROUTE_ALL",
    }
)
DEPRECATED_SITE_PROPERTIES = frozenset(
    {
        "alwaysOn",
        "containerSize",
        "dnsConfiguration",
        "ftpsState",
        "isReserved",
        "IsXenon",
        "javaVersion",
        "LinuxFxVersion",
        "netFrameworkVersion",
        "powerShellVersion",
        "functionAppScaleLimit",
        "preWarmedInstanceCount",
        "use32BitWorkerProcess",
        "vnetBackupRestoreEnabled",
        "vnetContentShareEnabled",
        "vnetImagePullEnabled",
        "vnetRouteAllEnabled",
        "windowsFxVersion",
    }
)
# The site properties the Flex Consumption samples set (Azure-Samples/azure-functions-flex-
# consumption-samples IaC/bicep and functions-quickstart-python-http-azd, through the AVM site
# module: serverFarmId, httpsOnly, keyVaultReferenceIdentity, functionAppConfig), and nothing
# else. Their `siteConfig: { alwaysOn: false }` is left out: the table above lists alwaysOn.
SAMPLE_SITE_PROPERTIES = frozenset(
    {"serverFarmId", "httpsOnly", "keyVaultReferenceIdentity", "functionAppConfig"}
)


def sites() -> list[tuple[str, bicep.Resource]]:
    return [
        (template.name, site)
        for template in (bicep.load(p) for p in bicep.bicep_files())
        for site in template.resources_of("Microsoft.Web/sites")
    ]


def deprecated_properties(site: bicep.Resource) -> list[str]:
    """Every key under the site's properties (siteConfig included, at any depth) that the
    deprecations table names; keys are compared without regard to case, as ARM does."""
    banned = {name.lower() for name in DEPRECATED_SITE_PROPERTIES}
    found: list[str] = []

    def visit(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key.lower() in banned:
                    found.append(f"{path}.{key}")
                # App settings inside siteConfig are checked by name, as settings.
                if key != "appSettings":
                    visit(item, f"{path}.{key}")

    visit(site.properties, "properties")
    return found


def deprecated_settings(names: list[str]) -> list[str]:
    banned = {name.upper() for name in DEPRECATED_APP_SETTINGS}
    return [name for name in names if name.upper() in banned]


def test_there_is_a_function_app_to_check() -> None:
    assert [name for name, _ in sites()] == ["app/function.bicep"]


def test_no_site_sets_a_property_flex_consumption_deprecates() -> None:
    for name, site in sites():
        assert deprecated_properties(site) == [], name


def test_site_sets_only_the_properties_the_flex_samples_set() -> None:
    for name, site in sites():
        assert set(site.properties) <= SAMPLE_SITE_PROPERTIES, (
            name,
            set(site.properties) - SAMPLE_SITE_PROPERTIES,
        )


def test_no_app_setting_is_one_flex_consumption_deprecates() -> None:
    assert deprecated_settings(list(app_settings())) == []


def test_check_catches_ftps_state_and_always_on_in_site_config() -> None:
    snippet = bicep.parse(
        b"""resource app 'Microsoft.Web/sites@2024-04-01' = {
  name: 'app'
  properties: {
    siteConfig: {
      ftpsState: 'Disabled'
      alwaysOn: false
      minTlsVersion: '1.2'
    }
    vnetRouteAllEnabled: true
  }
}
"""
    )
    (site,) = snippet.resources_of("Microsoft.Web/sites")
    assert deprecated_properties(site) == [
        "properties.siteConfig.ftpsState",
        "properties.siteConfig.alwaysOn",
        "properties.vnetRouteAllEnabled",
    ]


def test_check_catches_a_deprecated_setting_in_any_case() -> None:
    names = ["FUNCTIONS_WORKER_RUNTIME", "website_run_from_package", "SAS_POLICY_ID"]
    assert deprecated_settings(names) == names[:2]
