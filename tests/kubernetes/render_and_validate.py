"""Renders a kustomization (resources and namespace, the parts deploy/kubernetes
uses) and validates every core Kubernetes object, strictly (unknown fields are
errors), with kubernetes-validate's schemas. Writes every rendered object as
JSON for the prometheus-operator check (validate_crds.mjs).

Usage: python render_and_validate.py KUSTOMIZATION_DIR KUBERNETES_VERSION OUT.json
Exit 1 with one line per problem ("FILE: KIND/NAME: message") when any fails.
"""

import json
import sys
from pathlib import Path

import kubernetes_validate
import yaml

CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PriorityClass"}


def render(directory: Path, problems: list) -> list:
    kustomization = directory / "kustomization.yaml"
    spec = yaml.safe_load(kustomization.read_text())
    known = {"apiVersion", "kind", "resources", "namespace"}
    for key in sorted(set(spec) - known):
        problems.append(f"{kustomization}: field {key!r} is not rendered by this test; use resources/namespace only")
    rendered = []
    for resource in spec.get("resources", []):
        path = (directory / resource).resolve()
        if path.is_dir():
            rendered.extend(render(path, problems))
            continue
        if not path.is_file():
            problems.append(f"{kustomization}: resource {resource!r} does not exist")
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                rendered.append({"file": str(path), "doc": doc})
    namespace = spec.get("namespace")
    if namespace:
        for item in rendered:
            if item["doc"].get("kind") not in CLUSTER_SCOPED:
                item["doc"].setdefault("metadata", {})["namespace"] = namespace
    return rendered


def main() -> int:
    directory, version, out = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    problems = []
    rendered = render(directory, problems)
    for item in rendered:
        doc = item["doc"]
        name = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        if str(doc.get("apiVersion", "")).startswith("monitoring.coreos.com/"):
            continue  # prometheus-operator objects: validate_crds.mjs
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            problems.append(
                f"{item['file']}: {name}: no Kubernetes {version} schema for apiVersion "
                f"{doc.get('apiVersion')!r} kind {doc.get('kind')!r} (wrong kind or apiVersion)"
            )
        except kubernetes_validate.ValidationError as error:
            where = ".".join(str(p) for p in error.path)
            problems.append(f"{item['file']}: {name}: at {where or '(top)'}: {error.message}")
        except kubernetes_validate.InvalidSchemaError as error:
            problems.append(f"{item['file']}: {name}: {error}")
    out.write_text(json.dumps(rendered))
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
