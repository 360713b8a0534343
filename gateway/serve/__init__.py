"""Running the gateway: the supervisor, its worker processes, the ``--dev`` capture hop.

``gateway serve`` starts :class:`~gateway.serve.supervisor.Supervisor`, which
spawns :func:`~gateway.serve.worker.worker_main` processes; each worker is the
composition root of the SMTP path (parser, policy, store, upstream pool,
pipeline, handler, server).
"""
