"""Nova compute driver for Cloud Hypervisor, driven over its REST API socket."""
