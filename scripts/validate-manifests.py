#!/usr/bin/env python3
"""Validates rendered Kubernetes manifests offline, like kubeconform.

Built-in kinds are checked in strict mode (unknown fields are errors) against the Kubernetes
JSON schemas that the PyPI package kubernetes-validate ships, for every Kubernetes version
given with -k. Custom resources are checked, also strictly, against the openAPIV3Schema of
their CustomResourceDefinition, read from --crds directories and from the manifests themselves.
Kinds named with --skip-kind are counted but not checked (their content is checked by
another tool, e.g. PrometheusRule by promtool).

Prints one line per invalid document (file, kind/name, the path of the bad field and why)
and a summary; exits 1 when any document is invalid or has no schema.

    scripts/validate-manifests.py -k 1.30 -k 1.33 --crds charts/careline/crds rendered.yaml
"""

import argparse
import functools
import glob
import os
import sys

import jsonschema
import kubernetes_validate.utils as kv
import yaml

# kubernetes-validate reads and parses the schema files (the definitions are megabytes) for
# every document; they never change during a run.
kv.schema_contents = functools.lru_cache(maxsize=None)(kv.schema_contents)


def load_documents(path):
    """Yields every non-empty YAML document of a file."""
    with open(path, encoding="utf-8") as stream:
        for document in yaml.safe_load_all(stream):
            if document:
                yield document


def strict(schema):
    """Forbids fields a CRD schema does not list, as the API server's strict field validation
    does (kubeconform -strict alike): objects with properties get additionalProperties false,
    unless they preserve unknown fields."""
    if isinstance(schema, dict):
        if ("properties" in schema and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema = dict(schema, additionalProperties=False)
        return {key: strict(value) for key, value in schema.items()}
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


def crd_schemas(documents):
    """Maps (apiVersion, kind) to the strict openAPIV3Schema of every served CRD version."""
    schemas = {}
    for document in documents:
        if document.get("kind") != "CustomResourceDefinition":
            continue
        spec = document["spec"]
        for version in spec.get("versions", []):
            schema = version.get("schema", {}).get("openAPIV3Schema")
            if schema and version.get("served", True):
                api_version = "%s/%s" % (spec["group"], version["name"])
                # The API server adds these to every custom resource's schema.
                implicit = {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                            "metadata": {"type": "object"}}
                schema = dict(schema, properties=dict(implicit, **schema.get("properties", {})))
                schemas[(api_version, spec["names"]["kind"])] = strict(schema)
    return schemas


def location(error):
    """The path of the offending field, e.g. spec.template.spec.containers[0].image."""
    path = ""
    for part in error.absolute_path:
        path += "[%d]" % part if isinstance(part, int) else (".%s" % part if path else part)
    return path or "(root)"


def describe(document):
    metadata = document.get("metadata") or {}
    return "%s/%s" % (document.get("kind", "?"), metadata.get("name", "?"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", "--kubernetes-version", action="append", required=True,
                        help="Kubernetes version to validate against (repeatable)")
    parser.add_argument("--crds", action="append", default=[],
                        help="directory of CustomResourceDefinition YAML files (repeatable)")
    parser.add_argument("--skip-kind", action="append", default=[],
                        help="kind checked by another tool (repeatable)")
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()

    documents = [(path, doc) for path in args.files for doc in load_documents(path)]
    crd_documents = [doc for directory in args.crds
                     for path in sorted(glob.glob(os.path.join(directory, "*.yaml")))
                     for doc in load_documents(path)]
    custom = crd_schemas(crd_documents + [doc for _, doc in documents])

    checked = skipped = failures = 0
    for path, document in documents:
        key = (document.get("apiVersion"), document.get("kind"))
        if document.get("kind") in args.skip_kind:
            skipped += 1
            continue
        errors = []
        if key in custom:
            validator = jsonschema.Draft7Validator(custom[key])
            errors = ["%s: %s" % (location(e), e.message) for e in validator.iter_errors(document)]
        else:
            for version in args.kubernetes_version:
                try:
                    kv.validate(document, version, strict=True)
                except kv.ValidationError as e:
                    errors.append("k8s %s: %s: %s" % (version, location(e), e.message))
                except kv.SchemaNotFoundError as e:
                    errors.append(e.message + " (and no CustomResourceDefinition defines it)")
                    break
        checked += 1
        if errors:
            failures += 1
            for message in errors:
                print("INVALID %s %s: %s" % (path, describe(document), message))
    print("validated %d documents against Kubernetes %s and %d CRD schemas: %d invalid, %d skipped (%s)"
          % (checked, ", ".join(args.kubernetes_version), len(custom), failures, skipped,
             ", ".join(args.skip_kind) or "none"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
