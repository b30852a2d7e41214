"""Conditions that ARM does not honour on their own. A resource's `if (...)` skips the resource,
but ARM still evaluates the runtime functions in its body ("Conditional deployment in Bicep":
use the conditional expression `?:` so that reference() and list*() run only when the resource
is deployed); a call that cannot succeed yet fails the whole deployment."""

from __future__ import annotations

import re

from tree_sitter import Node

from tests.infra import bicep

RUNTIME_FUNCTION = re.compile(r"^(reference|list\w*)$")


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


def _descendants(node: Node) -> list[Node]:
    found = []
    for child in node.children:
        found.append(child)
        found.extend(_descendants(child))
    return found


def test_no_runtime_function_runs_in_a_skipped_resource() -> None:
    problems = [p for path in bicep.bicep_files() for p in unguarded_runtime_uses(bicep.load(path))]
    assert problems == []


def test_event_subscription_reads_the_host_key_only_when_it_is_created() -> None:
    (subscription,) = bicep.load(bicep.INFRA / "app" / "eventgrid.bicep").resources_of(
        "Microsoft.EventGrid/systemTopics/eventSubscriptions"
    )
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
