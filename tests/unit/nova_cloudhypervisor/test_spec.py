"""The client against the official OpenAPI spec: every endpoint it calls exists with that
method and body schema, every model field, type and enum value is in the spec, and every
request body the driver builds validates against the spec's schemas (closed: a key the
spec does not have fails). Updating ``tests/common/specs/cloud-hypervisor.yaml`` to a
release that drops something the client uses makes this fail."""
import dataclasses
import typing

import jsonschema
from nova import objects
import openapi_schema_validator
from oslo_utils import uuidutils

from nova_cloudhypervisor import client
from nova_cloudhypervisor import models
from nova_cloudhypervisor import opts
from nova_cloudhypervisor import vmconfig
from nova_common import instance_dir
from tests.common import ch_spec
from tests.unit.nova_common import base

objects.register_all()
JSON_TYPES = {str: "string", int: "integer", bool: "boolean", dict: "object"}


def all_models():
    seen, todo = [], [e.request for e in client.ENDPOINTS.values() if e.request] + [
        e.response for e in client.ENDPOINTS.values()
        if e.response and e.response is not dict]
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.append(cls)
        for hint in typing.get_type_hints(cls).values():
            for arg in _flatten(hint):
                if isinstance(arg, type) and issubclass(arg, models.Model):
                    todo.append(arg)
    return seen


def _flatten(hint):
    yield hint
    for arg in typing.get_args(hint):
        yield from _flatten(arg)


def _resolve(schema):
    name = ch_spec.ref_name(schema)
    return ch_spec.schemas()[name] if name else schema


class TestEndpoints(base.TestCase):
    def test_every_endpoint_is_in_the_spec_with_its_method(self):
        for name, endpoint in client.ENDPOINTS.items():
            op = ch_spec.operation("/" + name, endpoint.method)
            self.assertIsNotNone(op, "%s %s is not in the spec" % (endpoint.method, name))

    def test_request_bodies_are_the_spec_schemas(self):
        for name, endpoint in client.ENDPOINTS.items():
            op = ch_spec.operation("/" + name, endpoint.method)
            body = op.get("requestBody")
            if endpoint.request is None:
                self.assertIsNone(body, "%s takes a body in the spec" % name)
                continue
            self.assertIsNotNone(body, "%s takes no body in the spec" % name)
            schema = body["content"]["application/json"]["schema"]
            self.assertEqual(endpoint.request.SCHEMA, ch_spec.ref_name(schema), name)

    def test_response_bodies_are_the_spec_schemas(self):
        for name, endpoint in client.ENDPOINTS.items():
            if endpoint.response is None:
                continue
            op = ch_spec.operation("/" + name, endpoint.method)
            refs = {ch_spec.ref_name(r.get("content", {}).get("application/json", {})
                                     .get("schema"))
                    for code, r in op["responses"].items() if code.startswith("2")}
            want = "VmCounters" if endpoint.response is dict else endpoint.response.SCHEMA
            self.assertIn(want, refs, name)


class TestModels(base.TestCase):
    def check_type(self, where, hint, schema):
        schema = _resolve(schema)
        hint = models._unwrap(hint)
        origin = typing.get_origin(hint)
        if origin is typing.Literal:
            self.assertEqual("string", schema.get("type"), where)
            missing = set(typing.get_args(hint)) - set(schema.get("enum", ()))
            self.assertFalse(missing, "%s: enum values not in the spec: %s"
                             % (where, missing))
        elif origin is list:
            self.assertEqual("array", schema.get("type"), where)
            self.check_type(where + "[]", typing.get_args(hint)[0], schema["items"])
        elif isinstance(hint, type) and issubclass(hint, models.Model):
            self.assertEqual("object", schema.get("type"), where)
        else:
            self.assertEqual(JSON_TYPES[hint], schema.get("type"), where)

    def test_fields_types_and_enums_are_in_the_spec(self):
        checked = 0
        for cls in all_models():
            if cls.SCHEMA is None:
                continue
            schema = ch_spec.schemas()[cls.SCHEMA]
            props = schema.get("properties", {})
            hints = typing.get_type_hints(cls)
            for field in dataclasses.fields(cls):
                where = "%s.%s" % (cls.SCHEMA, field.name)
                if field.name in cls.NOT_IN_SPEC:
                    self.assertNotIn(field.name, props,
                                     "%s is in the spec now: drop NOT_IN_SPEC" % where)
                    continue
                self.assertIn(field.name, props, "%s is not in the spec" % where)
                self.check_type(where, hints[field.name], props[field.name])
                checked += 1
            for required in schema.get("required", ()):
                self.assertIn(required, hints, "%s.%s (required) is not modelled"
                              % (cls.SCHEMA, required))
        self.assertGreater(checked, 40)

    def test_nested_models_are_the_referenced_schemas(self):
        for cls in all_models():
            if cls.SCHEMA is None:
                continue
            props = ch_spec.schemas()[cls.SCHEMA].get("properties", {})
            for fname, hint in typing.get_type_hints(cls).items():
                if fname in cls.NOT_IN_SPEC:
                    continue
                for arg in _flatten(hint):
                    if isinstance(arg, type) and issubclass(arg, models.Model):
                        prop = props[fname]
                        ref = ch_spec.ref_name(prop.get("items", prop))
                        self.assertEqual(arg.SCHEMA, ref, "%s.%s" % (cls.SCHEMA, fname))


class TestBuiltBodies(base.TestCase):
    """Every kind of body the driver sends, validated against the spec."""

    def setUp(self):
        super().setUp()
        opts.register(self.conf.conf)
        self.inst = objects.Instance(
            uuid=uuidutils.generate_uuid(), image_ref=uuidutils.generate_uuid(),
            flavor=objects.Flavor(vcpus=2, memory_mb=256, root_gb=1))
        self.idir = instance_dir.InstanceDir(self.inst.uuid)

    def validate(self, body):
        data = body.to_json()
        for extra in body.NOT_IN_SPEC:
            data.pop(extra, None)
        openapi_schema_validator.validate(
            data, ch_spec.strict_schema(body.SCHEMA),
            cls=openapi_schema_validator.OAS30Validator)

    def image(self, **props):
        return objects.ImageMeta.from_dict({"disk_format": "raw", "properties": props})

    def test_vm_configs(self):
        self.flags("cloudhypervisor", firmware="/usr/share/cloud-hypervisor/CLOUDHV.fd")
        vols = [(uuidutils.generate_uuid(), "/dev/sdb")]
        for kernel, image in ((True, self.image(os_command_line="ro")),
                              (False, self.image())):
            self.inst.kernel_id = "k" if kernel else ""
            self.inst.ramdisk_id = "r" if kernel else ""
            mode = vmconfig.boot_mode(self.conf.conf, self.inst, image)
            for kw in ({}, {"volumes": vols, "config_drive": True},
                       {"volumes": vols, "root_disk": False}):
                config = vmconfig.build(self.conf.conf, self.inst, image, self.idir,
                                        mode, **kw)
                self.validate(config)
                self.validate(vmconfig.rescue(self.conf.conf, config, self.idir))

    def test_device_and_action_bodies(self):
        vid = uuidutils.generate_uuid()
        for body in (
                vmconfig.net(vid, "tap0123", "fa:16:3e:00:00:01", mtu=1450),
                vmconfig.volume_disk(vid, "/dev/sdb"),
                models.VmResize(desired_vcpus=2, desired_ram=2 << 30),
                models.VmResizeDisk(id=vmconfig.volume_disk_id(vid), desired_size=1 << 30),
                models.VmRemoveDevice(id=vmconfig.net_id(vid)),
                models.VmSnapshotConfig(destination_url="file:///var/lib/nova/x"),
                models.RestoreConfig(source_url="file:///var/lib/nova/x", resume=False,
                                     net_fds=[models.RestoredNetConfig(id="a", num_fds=1)]),
        ):
            self.validate(body)

    def test_a_key_not_in_the_spec_fails(self):
        # the check itself: a body with a field the spec lacks does not validate
        bad = models.NetConfig(tap="tap0")
        bad.NOT_IN_SPEC = ()
        data = dict(bad.to_json(), fds=[3])
        self.assertRaises(
            jsonschema.ValidationError, openapi_schema_validator.validate, data,
            ch_spec.strict_schema("NetConfig"), cls=openapi_schema_validator.OAS30Validator)
