"""All access is granted in rbac.bicep, with deterministic names, and the app's identity gets
exactly the data roles it needs on each resource."""

from __future__ import annotations

from typing import Any

from tests.infra import bicep

ROLE_ASSIGNMENT = "Microsoft.Authorization/roleAssignments"
BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
QUEUE_DATA_CONTRIBUTOR = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
TABLE_DATA_CONTRIBUTOR = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
MONITORING_METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"

# (scope resource type, role) the function app's identity must hold.
IDENTITY_NEEDS = {
    ("Microsoft.Storage/storageAccounts:runtimeStorage", BLOB_DATA_OWNER),
    ("Microsoft.Storage/storageAccounts:runtimeStorage", QUEUE_DATA_CONTRIBUTOR),
    # The host writes its diagnostic events to tables (as in the Flex Consumption samples).
    ("Microsoft.Storage/storageAccounts:runtimeStorage", TABLE_DATA_CONTRIBUTOR),
    ("Microsoft.Storage/storageAccounts:mediaStorage", BLOB_DATA_OWNER),
    ("Microsoft.Storage/storageAccounts:mediaStorage", QUEUE_DATA_CONTRIBUTOR),
    ("Microsoft.Storage/storageAccounts:mediaStorage", TABLE_DATA_CONTRIBUTOR),
    ("Microsoft.KeyVault/vaults:vault", KEY_VAULT_SECRETS_USER),
    ("Microsoft.Insights/components:applicationInsights", MONITORING_METRICS_PUBLISHER),
}


def rbac() -> bicep.Template:
    return bicep.load(bicep.INFRA / "app" / "rbac.bicep")


def resolve(template: bicep.Template, value: Any) -> Any:
    """Follow variable references (`roles.x`, `mediaStorageRoles`) to their literal values."""
    if not isinstance(value, bicep.Expr):
        return value
    head, _, rest = value.text.partition(".")
    if head not in template.variables:
        return value
    resolved = template.variables[head]
    for part in rest.split(".") if rest else []:
        resolved = resolved[part]
    if isinstance(resolved, list):
        return [resolve(template, item) for item in resolved]
    return resolve(template, resolved)


def grants(template: bicep.Template) -> set[tuple[str, str, str]]:
    """(principal, scope, role id) for every role assignment, loops expanded."""
    found = set()
    for assignment in template.resources_of(ROLE_ASSIGNMENT):
        scope = template.resource(assignment.body["scope"].text)
        principal = assignment.properties["principalId"].text
        role_ref = assignment.properties["roleDefinitionId"].args[1]
        if assignment.loop_over is not None:
            roles = resolve(template, assignment.loop_over)
            assert role_ref == bicep.Expr("roleId"), assignment.symbol
        else:
            roles = [resolve(template, role_ref)]
        for role in roles:
            found.add((principal, f"{scope.type}:{scope.symbol}", role))
    return found


def name_problems(template: bicep.Template) -> list[str]:
    problems = []
    for a in template.resources_of(ROLE_ASSIGNMENT):
        name = a.body.get("name")
        expected = (
            bicep.Expr(f"{a.body['scope'].text}.id"),
            a.properties["principalId"],
            a.properties["roleDefinitionId"].args[1],
        )
        if not (isinstance(name, bicep.Call) and name.name == "guid" and name.args == expected):
            problems.append(f"{a.symbol}: name is not guid(scope.id, principalId, roleId)")
    return problems


def test_every_role_assignment_lives_in_rbac_bicep() -> None:
    for path in bicep.bicep_files():
        template = bicep.load(path)
        if template.name != "app/rbac.bicep":
            assert template.resources_of(ROLE_ASSIGNMENT, include_existing=True) == [], (
                template.name
            )


def test_no_module_comes_from_a_registry_where_grants_could_hide() -> None:
    for path in bicep.bicep_files():
        for module_path, _ in bicep.load(path).modules.values():
            assert module_path.endswith(".bicep") and ":" not in module_path, module_path


def test_role_assignment_names_are_guid_of_scope_principal_and_role() -> None:
    assert rbac().resources_of(ROLE_ASSIGNMENT)
    assert name_problems(rbac()) == []


def test_name_check_catches_a_random_assignment_name() -> None:
    snippet = bicep.parse(
        b"""resource st 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: 'st'
}
resource a 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(st.id, 'other')
  scope: st
  properties: {
    principalId: p
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', r)
  }
}
"""
    )
    assert name_problems(snippet) == ["a: name is not guid(scope.id, principalId, roleId)"]


def test_identity_holds_every_role_the_app_needs() -> None:
    held = {
        (scope, role)
        for principal, scope, role in grants(rbac())
        if principal == "identityPrincipalId"
    }
    assert held >= IDENTITY_NEEDS, IDENTITY_NEEDS - held


def test_identity_holds_no_control_plane_role() -> None:
    roles = {role for principal, _, role in grants(rbac()) if principal == "identityPrincipalId"}
    assert roles <= {r for _, r in IDENTITY_NEEDS}


def test_identity_assignments_declare_a_service_principal() -> None:
    for a in rbac().resources_of(ROLE_ASSIGNMENT):
        if a.properties["principalId"] == bicep.Expr("identityPrincipalId"):
            assert a.properties["principalType"] == "ServicePrincipal", a.symbol


def test_user_grants_are_skipped_when_no_user_is_given() -> None:
    for a in rbac().resources_of(ROLE_ASSIGNMENT):
        if a.properties["principalId"] == bicep.Expr("userPrincipalId"):
            assert a.condition == bicep.Expr("grantUser"), a.symbol
    assert rbac().variables["grantUser"] == bicep.Expr("!empty(userPrincipalId)")
