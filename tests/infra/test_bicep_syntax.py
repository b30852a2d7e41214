"""Every template parses cleanly, and the parser really does report broken Bicep (so a clean
result means something). The Bicep CLI itself runs in .github/workflows/infra.yml."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.infra import bicep

EXPECTED_FILES = {
    "main.bicep",
    "app/eventgrid.bicep",
    "app/function.bicep",
    "app/identity.bicep",
    "app/keyvault.bicep",
    "app/monitoring.bicep",
    "app/rbac.bicep",
    "app/storage-media.bicep",
    "app/storage-runtime.bicep",
}


def test_infra_holds_main_and_one_module_per_concern() -> None:
    found = {p.relative_to(bicep.INFRA).as_posix() for p in bicep.bicep_files()}
    assert found == EXPECTED_FILES


@pytest.mark.parametrize("path", bicep.bicep_files(), ids=lambda p: p.name)
def test_template_parses_without_error_or_missing_nodes(path: Path) -> None:
    assert bicep.syntax_problems(path.read_bytes()) == []


BROKEN = {
    "unclosed object": b"resource st 'Microsoft.Storage/storageAccounts@2023-05-01' = {\n",
    "property without value": b"var settings = {\n  minimumTlsVersion:\n}\n",
    "missing colon": b"var settings = {\n  a: 1\n  b 2\n}\n",
    "unterminated string": b"param name string = 'unterminated\n",
    "two values for one property": b"var x = {\n  name: 'a' 'b'\n}\n",
}


@pytest.mark.parametrize("source", BROKEN.values(), ids=BROKEN.keys())
def test_parser_reports_broken_bicep(source: bytes) -> None:
    problems = bicep.syntax_problems(source)
    assert problems, "the parser accepted broken Bicep"
    assert all(p.line >= 1 for p in problems)


def test_reader_refuses_a_broken_template() -> None:
    with pytest.raises(ValueError, match="snippet"):
        bicep.parse(BROKEN["unclosed object"])


def test_parser_accepts_the_constructs_the_templates_use() -> None:
    source = b"""targetScope = 'subscription'
@description('d')
param names array = ['a']
resource st 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: 'x'
  resource blobs 'blobServices' existing = {
    name: 'default'
  }
}
resource c 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [
  for n in names: if (!empty(n)) {
    parent: st::blobs
    name: n
  }
]
output key string = st.listKeys().keys[n == 'key1' ? 0 : 1].value
"""
    assert bicep.syntax_problems(source) == []
    template = bicep.parse(source)
    loop = template.resource("c")
    assert loop.loop_over == bicep.Expr("names")
    assert loop.condition == bicep.Expr("!empty(n)")
    assert template.resource("blobs").type == "Microsoft.Storage/storageAccounts/blobServices"
