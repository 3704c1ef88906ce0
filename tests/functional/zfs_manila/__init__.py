import os

# manila's integrated framework runs its WSGI API only under eventlet
os.environ.setdefault("OS_MANILA_DISABLE_EVENTLET_PATCHING", "false")
