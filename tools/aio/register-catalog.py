"""Service users, services and endpoints of the all-in-one cloud in keystone (idempotent).

Run with the admin credentials in the environment (the cloud's openrc); ports from
HCI_AIO_PORT_BASE as tools/aio/aio.sh numbers them.
"""
import os

import openstack

BASE = int(os.environ.get("HCI_AIO_PORT_BASE", "42000"))
PASSWORD = os.environ["HCI_AIO_SERVICE_PASS"]
URL = "http://127.0.0.1:%d"
# user: [(service type, service name, port offset, path)]
CATALOG = {
    "placement": [("placement", "placement", 1, "")],
    "glance": [("image", "glance", 2, "")],
    "nova": [("compute", "nova", 3, "/v2.1")],
    "cinder": [("block-storage", "cinder", 4, "/v3"), ("volumev3", "cinderv3", 4, "/v3")],
    "neutron": [("network", "neutron", 5, "")],
    # manila-tempest-plugin looks up 'shared-file-system', the clients 'sharev2'
    "manila": [("sharev2", "manilav2", 6, "/v2"),
               ("shared-file-system", "manila", 6, "/v2")],
}


def main():
    conn = openstack.connect()
    ident = conn.identity
    domain = ident.find_domain("Default")
    project = ident.find_project("service", domain_id=domain.id) or ident.create_project(
        name="service", domain_id=domain.id, description="Service project")
    roles = {r.name: r for r in ident.roles()}
    if "service" not in roles:
        roles["service"] = ident.create_role(name="service")
    services = {s.type: s for s in ident.services()}
    for user_name, entries in CATALOG.items():
        user = ident.find_user(user_name, domain_id=domain.id) or ident.create_user(
            name=user_name, password=PASSWORD, domain_id=domain.id,
            default_project_id=project.id)
        for role in ("admin", "service"):
            ident.assign_project_role_to_user(project, user, roles[role])
        for stype, sname, offset, path in entries:
            service = services.get(stype) or ident.create_service(name=sname, type=stype)
            have = {e.interface for e in ident.endpoints(service_id=service.id)}
            for interface in ("public", "internal", "admin"):
                if interface not in have:
                    ident.create_endpoint(service_id=service.id, interface=interface,
                                          url=URL % (BASE + offset) + path,
                                          region_id="RegionOne")
        print("registered", user_name)


if __name__ == "__main__":
    main()
