"""The official Cloud Hypervisor OpenAPI spec, loaded for the tests."""
import copy
import functools
import os

from openapi_spec_validator.readers import read_from_filename

from tests.common import paths

SPEC = os.environ.get("HCI_CH_SPEC") or os.path.join(
    paths.REPO, "tests", "common", "specs", "cloud-hypervisor.yaml")
REF = "#/components/schemas/"


@functools.cache
def load():
    """The spec as a dict with string keys (plain YAML loading makes the status codes
    ints, which OpenAPI tools refuse)."""
    spec, _url = read_from_filename(SPEC)
    return spec


def schemas():
    return load()["components"]["schemas"]


def strict_schema(name):
    """Schema ``name`` for jsonschema, with every object schema closed
    (``additionalProperties: false``): a body with a key the spec does not have fails."""
    components = copy.deepcopy(load()["components"])

    def close(node):
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                node.setdefault("additionalProperties", False)
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(components)
    return {"$ref": REF + name, "components": components}


def ref_name(schema):
    ref = (schema or {}).get("$ref", "")
    return ref[len(REF):] if ref.startswith(REF) else None


def operation(path, method):
    return load()["paths"].get(path, {}).get(method.lower())
