"""The ``zkq`` command line: services, submission, inspection and the local cluster."""
