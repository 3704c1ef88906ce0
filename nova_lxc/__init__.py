"""Nova compute driver for native LXC containers through the liblxc Python binding."""
