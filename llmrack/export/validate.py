"""Offline validation of the Kubernetes export, each file against the schema of the thing that reads it.

* built-in kinds: the Kubernetes OpenAPI schema of ``K8S_VERSION`` (``kubernetes-validate``, strict);
* KEDA ScaledObject and PrometheusRule: the ``openAPIV3Schema`` of their CRDs (copies in ``schemas/``);
* vllm-stack values: the chart's own ``values.schema.json``;
* GPU Operator values: the chart has no values schema, so every key set must exist in its default
  ``values.yaml`` with a value of the same type.

Versions and commits of the copies: ``schemas/SOURCES.md``.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import yaml

from llmrack.errors import LlmrackError

SCHEMAS = resources.files("llmrack.export") / "schemas"
CRDS = {
    ("keda.sh/v1alpha1", "ScaledObject"): "keda.sh_scaledobjects.yaml",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "monitoring.coreos.com_prometheusrules.yaml",
}
VALUES_SCHEMAS = {"vllm-stack-values.yaml": "vllm-stack.values.schema.json"}
VALUES_DEFAULTS = {"gpu-operator-values.yaml": "gpu-operator.values.yaml"}


def _needs_validators() -> tuple[Any, Any]:
    try:
        import jsonschema
        import kubernetes_validate
    except ImportError:
        raise LlmrackError("validating the export needs kubernetes-validate: pip install 'llmrack[k8s]'") from None
    return jsonschema, kubernetes_validate


@cache
def crd_schema(api_version: str, kind: str) -> dict[str, Any]:
    group, version = api_version.split("/")
    crd = yaml.safe_load((SCHEMAS / CRDS[(api_version, kind)]).read_text(encoding="utf-8"))
    assert crd["spec"]["group"] == group and crd["spec"]["names"]["kind"] == kind
    for v in crd["spec"]["versions"]:
        if v["name"] == version:
            return v["schema"]["openAPIV3Schema"]
    raise KeyError(api_version)


def _path(error: Any) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "(top level)"


def validate_manifest(doc: dict[str, Any], k8s_version: str) -> str:
    """Raise ``ValueError`` naming the field when ``doc`` breaks its schema; return what it was checked against."""
    jsonschema, kv = _needs_validators()
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key in CRDS:
        schema = crd_schema(*key)
        errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(doc), key=lambda e: list(e.absolute_path))
        if errors:
            raise ValueError(f"{_path(errors[0])}: {errors[0].message}")
        # the CRD schema leaves metadata open: check it as the ObjectMeta of a built-in kind
        try:
            kv.validate({"apiVersion": "v1", "kind": "ConfigMap", "metadata": doc.get("metadata")}, k8s_version,
                        strict=True)
        except kv.ValidationError as exc:
            raise ValueError(f"{_path(exc)}: {exc.message}") from None
        return f"CRD {CRDS[key]}"
    try:
        version = kv.validate(doc, k8s_version, strict=True)
    except kv.ValidationError as exc:
        raise ValueError(f"{_path(exc)}: {exc.message}") from None
    except kv.SchemaNotFoundError as exc:
        raise ValueError(str(exc)) from None
    return f"Kubernetes {version}"


def validate_values(name: str, values: dict[str, Any]) -> str:
    jsonschema, _ = _needs_validators()
    if name in VALUES_SCHEMAS:
        schema = json.loads((SCHEMAS / VALUES_SCHEMAS[name]).read_text(encoding="utf-8"))
        errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(values), key=lambda e: list(e.absolute_path))
        if errors:
            raise ValueError(f"{_path(errors[0])}: {errors[0].message}")
        _declared(values, schema, "")  # the schema leaves unknown keys open; a misspelt key would be ignored
        return VALUES_SCHEMAS[name]
    defaults = yaml.safe_load((SCHEMAS / VALUES_DEFAULTS[name]).read_text(encoding="utf-8"))
    _same_shape(values, defaults, "")
    return f"keys and types of {VALUES_DEFAULTS[name]}"


def _declared(value: Any, schema: dict[str, Any], at: str) -> None:
    """Every key set is one the schema declares (where it lists properties)."""
    if isinstance(value, dict) and "properties" in schema:
        for key, item in value.items():
            where = f"{at}.{key}" if at else key
            if key not in schema["properties"]:
                raise ValueError(f"{where}: not a value the chart declares")
            _declared(item, schema["properties"][key], where)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            _declared(item, schema["items"], f"{at}.{i}")


def _same_shape(ours: Any, theirs: Any, at: str) -> None:
    if isinstance(ours, dict):
        if not isinstance(theirs, dict):
            raise ValueError(f"{at or '(top level)'}: a mapping where the chart has {type(theirs).__name__}")
        for key, value in ours.items():
            where = f"{at}.{key}" if at else key
            if key not in theirs:
                raise ValueError(f"{where}: not a value of the chart")
            _same_shape(value, theirs[key], where)
    elif theirs is not None and type(ours) is not type(theirs):
        raise ValueError(f"{at}: {type(ours).__name__} where the chart has {type(theirs).__name__}")


def validate_export(export: Any, k8s_version: str) -> list[tuple[str, str]]:
    """Check every file of an export; bad output is a bug, raised as ``LlmrackError`` naming file and field."""
    checked: list[tuple[str, str]] = []
    for name, values in export.values.items():
        try:
            checked.append((name, validate_values(name, values)))
        except ValueError as exc:
            raise LlmrackError(f"does not match its chart's schema: {exc}", source=name) from None
    for name, docs in export.manifests.items():
        for i, doc in enumerate(docs):
            try:
                against = validate_manifest(doc, k8s_version)
            except ValueError as exc:
                raise LlmrackError(f"{doc.get('kind')} {doc['metadata'].get('name')}: {exc}",
                                   source=f"{name} (document {i + 1})") from None
            checked.append((f"{name}: {doc['kind']} {doc['metadata']['name']}", against))
    return checked
