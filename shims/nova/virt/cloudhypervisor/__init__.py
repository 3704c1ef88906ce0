"""``compute_driver = cloudhypervisor.CloudHypervisorDriver``: nova loads drivers from
nova.virt only."""
from nova_cloudhypervisor.driver import CloudHypervisorDriver  # noqa: F401
