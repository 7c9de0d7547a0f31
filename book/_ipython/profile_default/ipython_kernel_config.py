# The kernel that executes the book's pages (make book sets IPYTHONDIR to this folder's parent).
# ipykernel logs a warning at every start when its sockets use TCP without CurveZMQ keys; the
# pages run locally and offline, so its log is kept to errors.
c = get_config()  # noqa: F821
c.IPKernelApp.log_level = "ERROR"
