"""Conditions that ARM does not carry over on its own.

A resource's `if (...)` skips the resource, but ARM still evaluates the runtime functions in its
body ("Conditional deployment in Bicep": use the conditional expression `?:` so that reference()
and list*() run only when the resource is deployed); a call that cannot succeed yet fails the
whole deployment. And a secret written only under a condition must not be referenced without it:
App Service hands an unresolved `@Microsoft.KeyVault(...)` reference to the app as its literal
text ("Use Key Vault references", troubleshooting)."""

from __future__ import annotations

import re

from tree_sitter import Node

from tests.infra import bicep

RUNTIME_FUNCTION = re.compile(r"^(reference|list\w*)$")
KEY_VAULT_REFERENCE = "@Microsoft.KeyVault("
SECRET = "Microsoft.KeyVault/vaults/secrets"


def runtime_uses(template: bicep.Template, resource: Node) -> list[Node]:
    """reference() and list*() calls, and reads of a resource's runtime `properties` (which
    compile to reference()), inside one resource declaration."""
    symbols = {r.symbol for r in template.resources}
    found = []
    for node in _descendants(resource):
        if node.type == "call_expression":
            function = node.child_by_field_name("function")
            if function is not None and function.type == "member_expression":
                function = function.named_children[-1]
            if function is not None and RUNTIME_FUNCTION.match(bicep.text(function)):
                found.append(node)
        elif node.type == "member_expression":
            target, *_, member = node.named_children
            if (
                target.type == "identifier"
                and bicep.text(target) in symbols
                and bicep.text(member) == "properties"
            ):
                found.append(node)
    return found


def unguarded_runtime_uses(template: bicep.Template) -> list[str]:
    problems = []
    for node in bicep.nodes(template):
        if node.type != "resource_declaration":
            continue
        condition = bicep.resource_condition(node)
        if condition is None:
            continue
        symbol = bicep.text(node.named_children[0])
        for use in runtime_uses(template, node):
            if not bicep.guarded_by(use, condition, within=node):
                problems.append(
                    f"{template.name}:{symbol}: {bicep.text(use)} outside `{condition} ?`"
                )
    return problems


def key_vault_reference_problems(template: bicep.Template) -> list[str]:
    """Each Key Vault reference must name a secret the templates write, and sit under the very
    condition that secret is written with (so a reference to a conditional secret can only be
    built in the template that writes it)."""
    problems = []
    for node in bicep.nodes(template):
        if node.type != "string" or not bicep.text(node).startswith("'" + KEY_VAULT_REFERENCE):
            continue
        found = secret_referenced(template, node)
        where = f"{template.name}:{bicep.text(node)}"
        if found is None:
            problems.append(f"{where}: names no secret the templates write")
            continue
        owner, secret = found
        if secret.condition is None:
            continue
        condition = getattr(secret.condition, "text", str(secret.condition))
        if owner is not template or not bicep.guarded_by(
            node, condition, within=template.tree.root_node
        ):
            problems.append(f"{where}: {secret.symbol} is written only if ({condition})")
    return problems


def secret_referenced(
    template: bicep.Template, reference: Node
) -> tuple[bicep.Template, bicep.Resource] | None:
    """The secret resource a reference string points at, found in the same template or, through
    `module.outputs.name`, in the module that builds the URI."""
    parts = [
        bicep.text(child.named_children[0])
        for child in reference.named_children
        if child.type == "interpolation"
    ]
    text = bicep.text(reference)
    for part in parts:
        symbol, _, output = part.partition(".outputs.")
        if output and symbol in template.modules:
            path, _ = template.modules[symbol]
            source = bicep.load((template.path.parent / path).resolve())
            secret = secret_named(source, str(source.outputs.get(output, "")))
            if secret is not None:
                return source, secret
    secret = secret_named(template, text)
    return (template, secret) if secret is not None else None


def secret_named(template: bicep.Template, uri: str) -> bicep.Resource | None:
    for secret in template.resources_of(SECRET):
        name = secret.body.get("name")
        wanted = f"${{{name.text}}}" if isinstance(name, bicep.Expr) else f"secrets/{name}"
        if wanted in uri:
            return secret
    return None


def _descendants(node: Node) -> list[Node]:
    found = []
    for child in node.children:
        found.append(child)
        found.extend(_descendants(child))
    return found


def test_no_runtime_function_runs_in_a_skipped_resource() -> None:
    problems = [p for path in bicep.bicep_files() for p in unguarded_runtime_uses(bicep.load(path))]
    assert problems == []


def test_event_subscriptions_read_the_host_key_only_when_they_are_created() -> None:
    subscriptions = bicep.load(bicep.INFRA / "app" / "eventgrid.bicep").resources_of(
        "Microsoft.EventGrid/systemTopics/eventSubscriptions"
    )
    assert len(subscriptions) == 2  # optimize_media's and receive_upload's
    for subscription in subscriptions:
        endpoint = subscription.properties["destination"]["properties"]["endpointUrl"]
        assert endpoint == bicep.Conditional("createSubscription", endpoint.then, "")
        assert "listKeys(" in endpoint.then


def test_check_catches_list_keys_and_reference_in_a_conditional_resource() -> None:
    snippet = bicep.parse(
        b"""resource app 'Microsoft.Web/sites@2024-04-01' existing = {
  name: 'app'
}
resource sub 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = if (enabled) {
  name: 'sub'
  properties: {
    url: 'https://${app.properties.defaultHostName}/?code=${listKeys('${app.id}/host/default', '2024-04-01').k}'
    guarded: enabled ? listKeys('${app.id}/host/default', '2024-04-01').k : ''
    wrongGuard: other ? reference('x').y : ''
    elseBranch: enabled ? '' : app.listKeys().k
    name: app.name
  }
}
"""
    )
    problems = unguarded_runtime_uses(snippet)
    assert len(problems) == 4, problems
    assert all(p.startswith(":sub: ") for p in problems)


def test_check_covers_conditional_loops() -> None:
    snippet = bicep.parse(
        b"""resource st 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: 'st'
}
resource s 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = [
  for n in names: if (!empty(n)) {
    name: n
    properties: {
      value: st.listKeys().keys[0].value
    }
  }
]
"""
    )
    assert unguarded_runtime_uses(snippet) == [":s: st.listKeys() outside `!empty(n) ?`"]


def test_every_key_vault_reference_has_its_secret_under_the_same_condition() -> None:
    problems = [
        p for path in bicep.bicep_files() for p in key_vault_reference_problems(bicep.load(path))
    ]
    assert problems == []


def test_templates_reference_every_secret_they_write() -> None:
    keyvault = bicep.load(bicep.INFRA / "app" / "keyvault.bicep")
    referenced = set()
    for node in bicep.nodes(keyvault):
        if node.type == "string" and bicep.text(node).startswith("'" + KEY_VAULT_REFERENCE):
            found = secret_referenced(keyvault, node)
            assert found is not None
            referenced.add(found[1].symbol)
    assert referenced == {s.symbol for s in keyvault.resources_of(SECRET)}


def test_check_catches_references_to_secrets_that_may_not_exist() -> None:
    snippet = bicep.parse(
        b"""resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: 'kv'
}
resource always 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'always'
  properties: {
    value: v
  }
}
resource maybe 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (write) {
  parent: vault
  name: names.maybe
  properties: {
    value: v
  }
}
var ok = union({
  A: '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/always)'
}, write ? {
  B: '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/${names.maybe})'
} : {})
var unguarded = {
  C: '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/${names.maybe})'
}
var wrongGuard = other ? {
  D: '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/${names.maybe})'
} : {}
var nowhere = {
  E: '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/never-written)'
}
"""
    )
    problems = key_vault_reference_problems(snippet)
    assert [p.rsplit(": ", 1)[1] for p in problems] == [
        "maybe is written only if (write)",
        "maybe is written only if (write)",
        "names no secret the templates write",
    ]
