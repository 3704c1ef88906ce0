"""Deployment tests: services as unprivileged users, privsep daemons started for real
through sudo and the service's rootwrap with the filters and sudoers rules this project
ships (tests/common/deployment.py). The tests run as root to set the machine up; the
service itself runs in a child process as its user."""
