"""Validate custom resources against the CRD schemas vendored in ``crds/``.

Run by the check tools' Python (``.venv-checks/bin/python``, which has jsonschema), not by
pytest: ``python crd_validate.py CRD_DIR MANIFEST...`` prints one JSON line, a list of
``{"file", "apiVersion", "kind", "name", "errors"}`` for every object whose kind a CRD in
CRD_DIR defines, and ``{"kind", "apiVersion", "name", "errors": null}`` for the others.

The CRD's ``openAPIV3Schema`` is applied as the API server applies it with strict field
validation (``kubectl apply --validate=strict``): an object schema that lists ``properties``
rejects any other field unless it says ``additionalProperties`` or
``x-kubernetes-preserve-unknown-fields``.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import yaml
from jsonschema import Draft7Validator


def _strict(schema: dict) -> dict:
    """A JSON Schema for ``schema`` (a structural OpenAPI v3 schema) with unknown fields refused."""
    schema = copy.deepcopy(schema)

    def walk(node: object) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
            return
        if not isinstance(node, dict):
            return
        if (node.get("type") == "object" and "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")):
            node["additionalProperties"] = False
        for key in ("properties",):
            for child in node.get(key, {}).values():
                walk(child)
        for key in ("items", "additionalProperties", "not"):
            walk(node.get(key))
        for key in ("anyOf", "allOf", "oneOf"):
            walk(node.get(key, []))

    walk(schema)
    return schema


def load_crds(folder: Path) -> dict[tuple[str, str], Draft7Validator]:
    """``(apiVersion, kind)`` -> a validator, for every served version of every CRD in ``folder``."""
    validators = {}
    for path in sorted(folder.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served", True):
                schema = _strict(version["schema"]["openAPIV3Schema"])
                Draft7Validator.check_schema(schema)
                validators[(f"{group}/{version['name']}", kind)] = Draft7Validator(schema)
    return validators


def main(argv: list[str]) -> int:
    validators = load_crds(Path(argv[1]))
    results = []
    for name in argv[2:]:
        for doc in yaml.safe_load_all(Path(name).read_text()):
            if not doc:
                continue
            key = (doc.get("apiVersion"), doc.get("kind"))
            entry = {"file": name, "apiVersion": key[0], "kind": key[1],
                     "name": (doc.get("metadata") or {}).get("name"), "errors": None}
            if key in validators:
                entry["errors"] = [
                    f"{'/'.join(str(p) for p in err.absolute_path) or '(root)'}: {err.message}"
                    for err in validators[key].iter_errors(doc)
                ]
            results.append(entry)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
