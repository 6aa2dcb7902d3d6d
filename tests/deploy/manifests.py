"""Reading the files under deploy/ for the tests: YAML documents, Kubernetes objects by kind, compose values."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.support import DEPLOY

__all__ = ["K8S", "compose", "compose_value", "container", "k8s_object", "k8s_objects", "yaml_documents", "yaml_files"]

K8S = DEPLOY / "k8s"
_COMPOSE_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def yaml_files() -> list[Path]:
    return sorted(path for pattern in ("*.yaml", "*.yml") for path in DEPLOY.rglob(pattern))


def yaml_documents(path: Path) -> list[Any]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document is not None]


def k8s_objects() -> list[tuple[str, dict[str, Any]]]:
    """(file name, object) for every document under deploy/k8s."""
    return [(path.name, document) for path in sorted(K8S.glob("*.yaml")) for document in yaml_documents(path)]


def k8s_object(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [
        obj
        for _, obj in k8s_objects()
        if obj["kind"] == kind and (name is None or obj.get("metadata", {}).get("name") == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''} under deploy/k8s, found {len(found)}"
    return found[0]


def container() -> dict[str, Any]:
    (only,) = k8s_object("Deployment")["spec"]["template"]["spec"]["containers"]
    result: dict[str, Any] = only
    return result


def compose() -> dict[str, Any]:
    (document,) = yaml_documents(DEPLOY / "compose.yaml")
    result: dict[str, Any] = document
    return result


def compose_value(text: str) -> str:
    """A compose value with its ${...} interpolated as when none of those variables is set.

    `${X:-default}` gives the default; `${X:?message}` (required) stands for a set value, "set";
    `${X}` and `${X:-}` give "".
    """

    def interpolate(match: re.Match[str]) -> str:
        op, arg = match["op"], match["arg"] or ""
        if op in (":-", "-"):
            return arg
        if op in (":?", "?"):
            return "set"
        return ""

    return _COMPOSE_VARIABLE.sub(interpolate, text)
